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

  # Send one mail the way Mastodon's mailer does: ActionMailer's :smtp delivery (the mail gem on
  # Net::SMTP) with the smtp_settings Mastodon's config/environments/production.rb builds from
  # SMTP_SERVER, SMTP_PORT, SMTP_LOGIN, SMTP_PASSWORD, SMTP_AUTH_METHOD, SMTP_ENABLE_STARTTLS,
  # SMTP_OPENSSL_VERIFY_MODE, SMTP_CA_FILE, SMTP_DOMAIN/LOCAL_DOMAIN and SMTP_FROM_ADDRESS.
  def deliver_mail(to:, subject:, body:)
    require 'net/smtp'
    require 'openssl'
    require 'securerandom'
    e = env
    present = ->(name) { e[name].to_s.empty? ? nil : e[name] }
    domain = present.call('SMTP_DOMAIN') || e['LOCAL_DOMAIN']
    auth = e['SMTP_AUTH_METHOD'] == 'none' ? nil : (present.call('SMTP_AUTH_METHOD') || 'plain').to_sym
    context = OpenSSL::SSL::SSLContext.new
    context.set_params(
      verify_mode: e['SMTP_OPENSSL_VERIFY_MODE'] == 'none' ? OpenSSL::SSL::VERIFY_NONE : OpenSSL::SSL::VERIFY_PEER,
      ca_file: present.call('SMTP_CA_FILE') || '/etc/ssl/certs/ca-certificates.crt'
    )
    smtp = Net::SMTP.new(e.fetch('SMTP_SERVER'), Integer(e.fetch('SMTP_PORT', '587')))
    case e.fetch('SMTP_ENABLE_STARTTLS', 'auto')
    when 'always' then smtp.enable_starttls(context)
    when 'never' then smtp.disable_starttls
    else smtp.enable_starttls_auto(context)
    end
    from = e.fetch('SMTP_FROM_ADDRESS')
    message = "From: #{from}\r\nTo: #{to}\r\nSubject: #{subject}\r\n" \
              "Date: #{Time.now.rfc2822}\r\nMessage-ID: <#{SecureRandom.uuid}@#{domain}>\r\n" \
              "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n#{body}\r\n"
    smtp.start(domain, present.call('SMTP_LOGIN'), present.call('SMTP_PASSWORD'), auth) do |session|
      session.send_message(message, from[/<([^>]+)>/, 1] || from, [to])
    end
  end

  # How long the double's clean-up commands take: {"boot_seconds": Rails' boot, "seconds_per_file":
  # the work per deleted file}, from the JSON file at MASTODON_DOUBLE_TOOTCTL_CONFIG or
  # /etc/mastodon-double/tootctl.json (the flood guard runs tootctl with a clean environment,
  # so a test sets the file). Missing: half a second to boot, a millisecond a file (a real
  # Rails boot takes several seconds; the double is kept quick where no test asks for more).
  TOOTCTL_TIMING_DEFAULTS = { 'boot_seconds' => 0.5, 'seconds_per_file' => 0.001 }.freeze

  def tootctl_timing
    path = ENV.fetch('MASTODON_DOUBLE_TOOTCTL_CONFIG', '/etc/mastodon-double/tootctl.json')
    settings = File.exist?(path) ? JSON.parse(File.read(path)) : {}
    TOOTCTL_TIMING_DEFAULTS.to_h { |key, value| [key, Float(settings.fetch(key, value))] }
  end

  def release
    File.read(File.join(ROOT, 'db', 'double_release')).strip
  end

  # One JSON line a call; `extra` adds fields (bin/rails runner: the file it ran and its SHA-256).
  def log_invocation(program, argv, extra = {})
    Dir.mkdir(File.dirname(LOG)) unless Dir.exist?(File.dirname(LOG))
    entry = {
      'time' => Time.now.utc.iso8601,
      'program' => program,
      'argv' => argv,
      'rails_env' => ENV.fetch('RAILS_ENV', nil),
      'skip_post_deployment_migrations' => ENV.fetch('SKIP_POST_DEPLOYMENT_MIGRATIONS', nil),
      # The database port the command connects to (.env.production, unless the environment's
      # DB_PORT wins, as with dotenv): PostgreSQL itself or PgBouncer.
      'db_port' => env.fetch('DB_PORT', nil),
      'user' => Etc.getpwuid(Process.uid).name,
      'release' => release,
    }.merge(extra)
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
