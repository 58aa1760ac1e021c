"""Small gateways the project's tests start as subprocesses (their runtime reads the environment)."""
