"""V1: PT1 + dynamic rank mask (k-hot over rank components, chunk-sticky, straight-through)."""
