"""Experiment protocols: how a spec becomes paired evidence (see `engine.protocols.base`)."""
