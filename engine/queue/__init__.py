"""Running queued jobs: the worker loop, its heartbeat, and what one job does."""
