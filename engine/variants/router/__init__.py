"""AR0/AR1: a macro-policy routes expert LoRA adapters per chunk (see model.py)."""
