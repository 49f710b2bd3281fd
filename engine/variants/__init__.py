"""Adapter variants, one folder per method, chosen by name (`engine.variants.registry`)."""
