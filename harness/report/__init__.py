"""Reports: run.json is the source of truth; HTML, Markdown and JUnit render from it."""
