"""Suites run under gwconf's pytest plugin: `gwconf run`, or `pytest -p harness.plugin suites/`."""
