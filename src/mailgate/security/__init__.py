"""API-key hashing, secret encryption at rest, and per-key rate limits."""
