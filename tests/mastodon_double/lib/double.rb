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
end
