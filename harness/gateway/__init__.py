"""Talking to the gateway under test: starting it, and being its client."""
