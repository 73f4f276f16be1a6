# frozen_string_literal: true

# Shared helpers of the Mastodon TEST DOUBLE's bin/rails and bin/tootctl (not Mastodon):
# read .env.production with dotenv's rules, log every invocation, talk to the real PostgreSQL.
require 'json'
require 'open3'
require 'time'
require 'etc'

module MastodonDouble
  ROOT = File.expand_path('..', __dir__)
  LOG = File.join(ROOT, 'log', 'double-invocations.log')

  module_function

  # .env.production read with the rules of the dotenv gem 3.x that Mastodon uses (written for
  # this double from those rules, not the gem): single-quoted values literal; double-quoted
  # values keep \n as backslash-n and drop other backslash escapes except before $; unquoted
  # and double-quoted values get ${VAR}/$VAR substituted and $(cmd) left as a marker (never run)
  # unless escaped with a backslash; comments after unquoted values are dropped.
  DOTENV_LINE = /
    (?:^|\A)\s*(?:export\s+)?([\w.]+)(?:\s*=\s*?|:\s+?)
    (\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^\#\r\n]+)?
    \s*(?:\#.*)?(?:$|\z)
  /x
  DOTENV_VARIABLE = /(\\)?(\$)(?!\()\{?([A-Z0-9_]+)?\}?/i
  DOTENV_COMMAND = /(\\)?\$(\((?:[^()]|\([^()]*\))+\))/

  def parse_dotenv(text)
    values = {}
    text.gsub(/\r\n?/, "\n").scan(DOTENV_LINE).each do |key, raw|
      value = (raw || '').strip
      quote = nil
      if (m = value.match(/\A(['"])(.*)\1\z/m))
        quote = m[1]
        value = m[2]
      end
      value = value.gsub('\n') { '\\\\n' }.gsub('\r') { '\\\\r' } if quote == '"'
      if quote != "'"
        value = value.gsub(/\\([^$])/, '\1')
        value = value.gsub(DOTENV_VARIABLE) do |whole|
          md = Regexp.last_match
          if md[1] then whole[1..]
          elsif md[3] then values.fetch(md[3]) { ENV.fetch(md[3], '') }
          else whole
          end
        end
        value = value.gsub(DOTENV_COMMAND) { |whole| Regexp.last_match(1) ? whole[1..] : "<command #{whole}>" }
      end
      values[key] = value
    end
    values
  end

  def env
    @env ||= begin
      path = File.join(ROOT, ".env.#{ENV.fetch('RAILS_ENV', 'development')}")
      values = File.exist?(path) ? parse_dotenv(File.read(path)) : {}
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
end
