# frozen_string_literal: true

# Run once by `mastodon-fetcher --create-token` (selfhost.mastodon.mastodon_ops) with
# `bin/rails runner`, as the application user: the owner's access token for mastodon-fetcher,
# from an application of its own, with only the scopes it needs. The token goes to stdout, a
# pipe read by mastodon-fetcher (root), which writes it to a root-only file; nothing else
# prints it. Inputs from the environment: MASTODON_OPS_FETCHER_OWNER, MASTODON_OPS_FETCHER_SCOPES.
APP_NAME = 'mastodon-fetcher (selfhost.mastodon)'
username = ENV.fetch('MASTODON_OPS_FETCHER_OWNER')
scopes = ENV.fetch('MASTODON_OPS_FETCHER_SCOPES')

account = Account.find_local(username)
abort("no local account #{username}") if account.nil?
user = User.find_by(account_id: account.id)
abort("the account #{username} has no user") if user.nil?

app = Doorkeeper::Application.find_by(name: APP_NAME)
if app.nil?
  app = Doorkeeper::Application.create!(name: APP_NAME, redirect_uri: 'urn:ietf:wg:oauth:2.0:oob', scopes: scopes)
elsif app.scopes.to_s != scopes
  app.update!(scopes: scopes)
end

# A token file lost on the host: the earlier tokens of this application stop working.
while (old = Doorkeeper::AccessToken.find_by(application_id: app.id, resource_owner_id: user.id, revoked_at: nil))
  old.revoke
end
token = Doorkeeper::AccessToken.create!(application_id: app.id, resource_owner_id: user.id, scopes: scopes)
$stdout.puts "mastodon-fetcher-token: #{token.token}"
