"""Reports built from the store: one record per experiment (its latest comparison)."""
