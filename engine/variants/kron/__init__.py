"""V3: Kronecker @ W_down (a sum of Kronecker products on the MLP down projection)."""
