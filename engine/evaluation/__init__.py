"""Evaluation: greedy generation and scoring, latency, memory and FLOP measurements."""
