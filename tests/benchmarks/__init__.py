"""Request-count benchmarks against the Cloudflare emulator (a test stand-in)."""
