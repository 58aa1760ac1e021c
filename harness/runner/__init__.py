"""Running: scenarios once, judgements per check, through pytest, in process or offline."""
