"""Records: the plain data every layer shares (captures, exchanges, recordings, outcomes)."""
