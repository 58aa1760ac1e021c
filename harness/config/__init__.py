"""Profile and config: gateway profiles, cassettes, JSON Schemas, secret scrubbing."""
