"""Scenarios: the traffic programs a run drives, and what they record."""
