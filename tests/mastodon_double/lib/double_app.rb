# frozen_string_literal: true

# STAND-INS for the Mastodon TEST DOUBLE's `bin/rails runner` (not Mastodon, not Rails).
#
# `bin/rails runner FILE` evaluates FILE itself, so what the role ships is what runs in the
# tests. This file gives that code the small part of a Mastodon application it touches, and
# nothing more: the models Relay and Setting, a few ActiveRecord-like calls, ActiveSupport's
# Enumerable#index_with and ActionMailer::Base.mail(...).deliver_now. Names and meanings follow
# Mastodon's app/models/relay.rb and app/models/setting.rb (written for this double, not taken
# from them). Whatever a script calls that is not here raises NameError/NoMethodError: a script
# that needs more of Mastodon fails loudly in the tests instead of passing silently.
#
# Records live in the tables `bin/rails db:setup` of the double creates in the real PostgreSQL
# (relays: id, inbox_url, state; settings: id, var, value), read and written through psql.
require 'json'
require 'yaml'
require_relative 'double'

# The two exceptions of ActiveRecord the stand-ins raise, with ActiveRecord's names.
module ActiveRecord
  class RecordInvalid < StandardError; end
  class RecordNotFound < StandardError; end
end

module MastodonDouble
  # STAND-IN for ActiveRecord::Base, reduced to the calls the role's scripts make:
  # find_each, find_by, find_or_initialize_by, create!, update!, save!, destroy!, persisted?,
  # attribute readers and record[:column]. One psql call a query; no transactions, no caching.
  class StandInRecord
    class << self
      attr_reader :table_name, :column_names

      def stand_in_table(name, columns, timestamps: false)
        @table_name = name
        @column_names = columns
        @timestamps = timestamps
        columns.each { |column| define_method(column) { self[column] } unless method_defined?(column) }
      end

      def timestamps?
        @timestamps
      end

      # Every record, in primary key order (ActiveRecord reads in batches of 1000; the double's
      # tables are small, one query does).
      def find_each(&block)
        return enum_for(:find_each) unless block

        rows.each { |row| block.call(instantiate(row)) }
        nil
      end

      def find_by(**conditions)
        raise ArgumentError, "#{name}.find_by (TEST DOUBLE stand-in) needs conditions" if conditions.empty?

        where_sql, variables = conditions_sql(conditions)
        row = rows(where_sql, variables, limit: 1).first
        row && instantiate(row)
      end

      def find_or_initialize_by(**attributes)
        find_by(**attributes) || new(**attributes)
      end

      def create!(**attributes)
        new(**attributes).tap(&:save!)
      end

      def instantiate(row)
        record = allocate
        record.instance_variable_set(:@attributes, row)
        record
      end

      def psql(sql, variables = {})
        MastodonDouble.psql(sql, variables: variables)
      end

      private

      def rows(where = nil, variables = {}, limit: nil)
        sql = "SELECT row_to_json(r) FROM (SELECT #{column_names.join(', ')} FROM #{table_name}"
        sql += " WHERE #{where}" if where
        sql += ' ORDER BY id'
        sql += " LIMIT #{Integer(limit)}" if limit
        psql("#{sql}) r", variables).split("\n").reject(&:empty?).map { |line| JSON.parse(line) }
      end

      def conditions_sql(conditions)
        variables = {}
        parts = conditions.each_with_index.map do |(column, value), index|
          column = column.to_s
          unless column_names.include?(column)
            raise ArgumentError, "#{name} (TEST DOUBLE stand-in) has no column #{column}"
          end
          next "#{column} IS NULL" if value.nil?

          variables["c#{index}"] = allocate.send(:cast, column, value).to_s
          "#{column} = :'c#{index}'"
        end
        [parts.join(' AND '), variables]
      end
    end

    def initialize(**attributes)
      @attributes = {}
      assign(attributes)
    end

    def [](column)
      column = column.to_s
      raise ArgumentError, "#{self.class.name} (TEST DOUBLE stand-in) has no column #{column}" unless
        self.class.column_names.include?(column)

      @attributes[column]
    end

    def []=(column, value)
      column = column.to_s
      raise ArgumentError, "#{self.class.name} (TEST DOUBLE stand-in) has no column #{column}" unless
        self.class.column_names.include?(column) && column != 'id'

      @attributes[column] = cast(column, value)
    end

    def persisted?
      !@attributes['id'].nil? && !@destroyed
    end

    def update!(**attributes)
      assign(attributes)
      save!
    end

    def save!
      raise ActiveRecord::RecordNotFound, "#{self.class.name} was destroyed" if @destroyed

      problems = validation_problems
      raise ActiveRecord::RecordInvalid, "Validation failed: #{problems.join(', ')}" unless problems.empty?

      table = self.class.table_name
      columns = self.class.column_names - ['id']
      if persisted?
        variables = { 'id' => @attributes['id'].to_s }
        sets = columns.each_with_index.map do |column, index|
          next "#{column} = NULL" if @attributes[column].nil?

          variables["v#{index}"] = @attributes[column].to_s
          "#{column} = :'v#{index}'"
        end
        sets << 'updated_at = now()' if self.class.timestamps?
        self.class.psql("UPDATE #{table} SET #{sets.join(', ')} WHERE id = :'id'", variables)
      else
        # Columns left unset get the table's defaults, as a new ActiveRecord record does.
        set = columns.reject { |column| @attributes[column].nil? }
        variables = set.each_with_index.to_h { |column, index| ["v#{index}", @attributes[column].to_s] }
        values = set.each_index.map { |index| ":'v#{index}'" }
        into = set.empty? ? 'DEFAULT VALUES' : "(#{set.join(', ')}) VALUES (#{values.join(', ')})"
        row = self.class.psql("INSERT INTO #{table} AS r #{into} RETURNING row_to_json(r)", variables)
        @attributes = JSON.parse(row.strip).slice(*self.class.column_names)
      end
      true
    end

    def destroy!
      before_destroy
      self.class.psql("DELETE FROM #{self.class.table_name} WHERE id = :'id'", 'id' => @attributes.fetch('id').to_s)
      @destroyed = true
      freeze
    end

    private

    def assign(attributes)
      attributes.each { |column, value| self[column] = value }
    end

    def cast(_column, value)
      value
    end

    def validation_problems
      []
    end

    def before_destroy; end
  end
end

# STAND-IN for Mastodon's Relay model: a relay's inbox URL and its state, the enum
# idle (0), pending (1), accepted (2), rejected (3) in Mastodon's order. enable! asks the relay
# to deliver (state pending until the relay accepts) and disable! stops it (state idle), as in
# Mastodon; the Follow and Undo activities Mastodon sends to the relay with them are not
# modelled (the double federates with nobody: the relay simulator reads the state instead).
# Destroying an accepted relay disables it first, as Mastodon's before_destroy does.
class Relay < MastodonDouble::StandInRecord
  STATES = %w[idle pending accepted rejected].freeze

  stand_in_table 'relays', %w[id inbox_url state]

  STATES.each { |name| define_method(:"#{name}?") { state == name } }

  def state
    STATES.fetch(self[:state] || 0)
  end

  def enabled?
    accepted?
  end

  def enable!
    update!(state: :pending)
  end

  def disable!
    update!(state: :idle)
  end

  private

  def cast(column, value)
    return value unless column == 'state'
    return value if value.is_a?(Integer) && value.between?(0, STATES.size - 1)

    STATES.index(value.to_s) or raise ArgumentError, "'#{value}' is not a valid state"
  end

  def validation_problems
    url = self[:inbox_url].to_s
    problems = []
    problems << "Inbox url can't be blank" if url.strip.empty?
    problems << 'Inbox url is invalid' unless url.strip.empty? || url.match?(%r{\Ahttps?://[^\s/]+}i)
    other = Relay.find_by(inbox_url: url) unless url.strip.empty?
    problems << 'Inbox url has already been taken' if other && other.id != self[:id]
    problems
  end

  def before_destroy
    disable! if enabled?
  end
end

# STAND-IN for Mastodon's Setting model: one row a setting (var), its value stored as YAML
# (Setting[var] = 7 writes "--- 7\n"; reading decodes it). Setting[var] of a setting without a
# row is its default from config/settings.yml, which the double does not ship: nil. Rails'
# cache in front of it is not modelled (every read goes to the table).
class Setting < MastodonDouble::StandInRecord
  stand_in_table 'settings', %w[id var value], timestamps: true

  class << self
    def [](key)
      record = find_by(var: key.to_s)
      record&.value
    end

    def []=(key, value)
      record = find_or_initialize_by(var: key.to_s)
      record.value = value
      record.save!
    end
  end

  def value
    raw = self[:value]
    YAML.safe_load(raw, permitted_classes: [Symbol]) unless raw.nil? || raw.strip.empty?
  end

  def value=(new_value)
    self[:value] = new_value.to_yaml
  end
end

# STAND-IN for ActiveSupport's Enumerable#index_with (each element => the block's value).
module Enumerable
  def index_with(default = nil)
    return to_h { |element| [element, yield(element)] } if block_given?

    to_h { |element| [element, default] }
  end
end

# STAND-IN for ActionMailer::Base.mail(to:, subject:, body:).deliver_now: one plain-text mail
# through the SMTP relay of .env.production, as Mastodon's mailer sends it (lib/double.rb).
module ActionMailer
  class Base
    Message = Struct.new(:to, :subject, :body) do
      def deliver_now
        MastodonDouble.deliver_mail(to: to, subject: subject, body: body)
        self
      end
    end

    def self.mail(to:, subject:, body:)
      Message.new(to, subject, body)
    end
  end
end

# STAND-INS for Mastodon's Account and User models, reduced to what a script finds an owner
# with: Account.find_local(username) (a local account: domain NULL; Mastodon compares the
# username without case, as here) and User.find_by(account_id:).
class Account < MastodonDouble::StandInRecord
  stand_in_table 'accounts', %w[id username domain]

  def self.find_local(username)
    row = psql("SELECT row_to_json(r) FROM (SELECT id, username, domain FROM accounts " \
               "WHERE lower(username) = lower(:'u') AND domain IS NULL ORDER BY id LIMIT 1) r", 'u' => username.to_s)
    row.strip.empty? ? nil : instantiate(JSON.parse(row.strip))
  end
end

class User < MastodonDouble::StandInRecord
  stand_in_table 'users', %w[id account_id email]
end

# STAND-INS for Doorkeeper's OAuth models as Mastodon uses them (tables oauth_applications and
# oauth_access_tokens): an application gets a generated uid and secret, an access token a
# generated token (Doorkeeper writes it on create; Mastodon keeps tokens as they are);
# AccessToken#revoke sets revoked_at. The double's web process (exe/puma) checks tokens and
# their scopes against these tables.
module Doorkeeper
  class Application < MastodonDouble::StandInRecord
    stand_in_table 'oauth_applications', %w[id name uid secret redirect_uri scopes]

    def save!
      require 'securerandom'
      self[:uid] ||= SecureRandom.urlsafe_base64(32)
      self[:secret] ||= SecureRandom.urlsafe_base64(32)
      super
    end

    private

    def validation_problems
      problems = []
      problems << "Name can't be blank" if self[:name].to_s.strip.empty?
      problems << "Redirect URI can't be blank" if self[:redirect_uri].to_s.strip.empty?
      problems
    end
  end

  class AccessToken < MastodonDouble::StandInRecord
    stand_in_table 'oauth_access_tokens', %w[id token application_id resource_owner_id scopes revoked_at]

    def save!
      require 'securerandom'
      self[:token] ||= SecureRandom.urlsafe_base64(32)
      super
    end

    def revoke
      update!(revoked_at: Time.now.utc.strftime('%Y-%m-%d %H:%M:%S'))
    end
  end
end
