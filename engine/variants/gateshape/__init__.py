"""V2: PT1 + gate shaping (re-ranked evidence drives per-head-group attention gates)."""
