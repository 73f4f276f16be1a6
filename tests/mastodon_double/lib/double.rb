# frozen_string_literal: true

# Shared helpers of the Mastodon TEST DOUBLE's bin/rails and bin/tootctl (not Mastodon):
# read .env.production like dotenv does, log every invocation, talk to the real PostgreSQL.
require 'json'
require 'open3'
require 'time'
require 'etc'

module MastodonDouble
  ROOT = File.expand_path('..', __dir__)
  LOG = File.join(ROOT, 'log', 'double-invocations.log')

  module_function

  def env
    @env ||= begin
      values = {}
      path = File.join(ROOT, ".env.#{ENV.fetch('RAILS_ENV', 'development')}")
      if File.exist?(path)
        File.readlines(path).each do |line|
          next unless (m = line.match(/\A\s*([A-Z][A-Z0-9_]*)=(.*?)\s*\z/))

          values[m[1]] = m[2].sub(/\A(['"])(.*)\1\z/, '\2')
        end
      end
      values.merge(ENV.to_h)
    end
  end

  def release
    File.read(File.join(ROOT, 'db', 'double_release')).strip
  end

  def log_invocation(program, argv)
    Dir.mkdir(File.dirname(LOG)) unless Dir.exist?(File.dirname(LOG))
    entry = {
      'time' => Time.now.utc.iso8601,
      'program' => program,
      'argv' => argv,
      'rails_env' => ENV.fetch('RAILS_ENV', nil),
      'skip_post_deployment_migrations' => ENV.fetch('SKIP_POST_DEPLOYMENT_MIGRATIONS', nil),
      'user' => Etc.getpwuid(Process.uid).name,
      'release' => release,
    }
    File.open(LOG, 'a') { |f| f.puts(JSON.generate(entry)) }
  end

  def psql(sql, database: env.fetch('DB_NAME', 'mastodon_production'), variables: {})
    args = ['psql', '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', database]
    args += ['-h', env['DB_HOST']] unless env.fetch('DB_HOST', '').empty?
    args += ['-p', env['DB_PORT']] unless env.fetch('DB_PORT', '').empty?
    args += ['-U', env['DB_USER']] unless env.fetch('DB_USER', '').empty?
    variables.each { |name, value| args += ['-v', "#{name}=#{value}"] }
    out, err, status = Open3.capture3(*args, stdin_data: sql)
    abort("TEST DOUBLE: psql failed: #{err}") unless status.success?
    out
  end

  def database_exists?
    psql("SELECT 1 FROM pg_database WHERE datname = :'name'",
         database: 'postgres', variables: { 'name' => env.fetch('DB_NAME') }).strip == '1'
  end

  # Relay states as Mastodon's Relay model numbers them.
  RELAY_IDLE = 0
  RELAY_PENDING = 1

  # `bin/rails runner mastodon_stack_relays.rb`: the role's relay script against the relays
  # table (Relay#enable! sends a Follow: state pending; Relay#disable!: state idle).
  def relays_runner
    changes = Hash.new { |h, k| h[k] = [] }
    rows = psql("SELECT inbox_url, state FROM relays", variables: {}).split("\n").map { |l| l.strip.split('|') }
    current = rows.to_h { |url, state| [url, state.to_i] }
    set_state = lambda do |url, state|
      psql("UPDATE relays SET state = :'s' WHERE inbox_url = :'u'", variables: { 'u' => url, 's' => state })
    end
    case ENV.fetch('MASTODON_STACK_RELAYS_ACTION', 'sync')
    when 'disable-all'
      current.each do |url, state|
        next if state == RELAY_IDLE

        set_state.call(url, RELAY_IDLE)
        changes['disabled'] << url
      end
    when 'sync'
      desired = JSON.parse(ENV.fetch('MASTODON_STACK_RELAYS'))
      hold = ENV.fetch('MASTODON_STACK_RELAYS_HOLD', 'false') == 'true'
      (current.keys - desired).each do |url|
        psql("DELETE FROM relays WHERE inbox_url = :'u'", variables: { 'u' => url })
        changes['removed'] << url
      end
      desired.each do |url|
        unless current.key?(url)
          psql("INSERT INTO relays (inbox_url, state) VALUES (:'u', 0)", variables: { 'u' => url })
          changes['added'] << url
          current[url] = RELAY_IDLE
        end
        if hold && current[url] != RELAY_IDLE
          set_state.call(url, RELAY_IDLE)
          changes['disabled'] << url
        elsif !hold && current[url] == RELAY_IDLE
          set_state.call(url, RELAY_PENDING)
          changes['enabled'] << url
        end
      end
    else
      abort('rails (TEST DOUBLE): unknown MASTODON_STACK_RELAYS_ACTION')
    end
    puts JSON.generate(changes)
  end

  # `bin/rails runner mastodon_stack_settings.rb`: Setting[key] = value on the settings table,
  # values stored as YAML scalars like rails-settings do ("--- 7\n").
  def settings_runner
    desired = JSON.parse(ENV.fetch('MASTODON_STACK_SETTINGS'))
    check = ENV.fetch('MASTODON_STACK_SETTINGS_CHECK', 'false') == 'true'
    before = {}
    desired.each do |key, value|
      raw = psql("SELECT value FROM settings WHERE var = :'k'", variables: { 'k' => key })
      before[key] = raw.strip.empty? ? nil : raw.sub(/\A---\s*/, '').strip.delete("'\"")
      next if before[key] == value.to_s || check

      psql(<<~SQL, variables: { 'k' => key, 'v' => "--- #{value}\n" })
        INSERT INTO settings (var, value) VALUES (:'k', :'v')
        ON CONFLICT (var) DO UPDATE SET value = EXCLUDED.value, updated_at = now();
      SQL
    end
    puts JSON.generate('before' => before, 'after' => desired.transform_values(&:to_s))
  end
end
