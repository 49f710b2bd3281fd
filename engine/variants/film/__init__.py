"""V4: residual FiLM micro-γ,β (prompt-conditioned modulation of the residual stream)."""
