# frozen_string_literal: true

# TEST DOUBLE: the real config/puma.rb configures Puma; the double's puma reads BIND and PORT
# from the environment and ignores this file apart from checking that it exists.
