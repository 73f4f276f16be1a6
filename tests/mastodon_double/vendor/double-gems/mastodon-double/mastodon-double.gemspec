# frozen_string_literal: true

# TEST DOUBLE: stands in for the puma and sidekiq gems of the Mastodon bundle.
Gem::Specification.new do |s|
  s.name = 'mastodon-double'
  s.version = '0.1.0'
  s.summary = 'TEST DOUBLE of the Mastodon application processes (not Mastodon)'
  s.authors = ['selfhost.mastodon contributors']
  s.license = 'GPL-3.0-or-later'
  s.files = Dir['exe/*']
  s.bindir = 'exe'
  s.executables = %w[puma sidekiq]
  s.required_ruby_version = '>= 3.1.0'
end
