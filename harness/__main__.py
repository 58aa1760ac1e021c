"""`python -m harness`: the same command line as `gwconf`."""

from harness.cli import main

main()
