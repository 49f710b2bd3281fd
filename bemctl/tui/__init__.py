"""`bemctl tui`: a live Textual console over the store (queue, runs, results, experiments).

It only ever reads through a read-only store, re-read on a timer, so it shows what any
worker process writes; the few writes it makes (enqueue, cancel, retry) each open their
own short-lived write store, exactly as the CLI commands do.
"""
