"""bemctl: run adapter experiments and decide, with statistics, if a variant beats its baseline."""

__version__ = "0.1.0"
