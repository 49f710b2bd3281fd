"""Chunked draws of bootstrap indices and random sign vectors.

A B x n matrix at B = 10,000 and n = 10,000 is 800 MB of int64 before the gathered copy;
drawing it a few rows at a time keeps the working set at a few MiB (and inside the CPU cache,
which is also why this is faster than one big draw). Index rows are drawn with
`rng.integers(0, n, (rows, n))`, the same call scipy.stats.bootstrap makes, and numpy's
Generator yields the same stream whether a matrix is drawn in one call or row-chunk by
row-chunk, so a seeded Generator reproduces scipy's resamples exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Elements per chunk: 2**18 int64 indices (2 MiB) plus their gathered float64 copy (2 MiB).
CHUNK_ELEMENTS = 1 << 18


def chunk_rows(n: int) -> int:
    """Resamples per chunk for samples of size `n` (at least one row)."""
    return max(1, CHUNK_ELEMENTS // max(1, n))


def index_chunks(
    rng: np.random.Generator, n: int, n_resamples: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (rows slice, index matrix) covering `n_resamples` bootstrap resamples of size n."""
    rows = chunk_rows(n)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        yield slice(start, stop), rng.integers(0, n, (stop - start, n))


def bit_chunks(
    rng: np.random.Generator, n: int, n_draws: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (rows slice, float 0/1 matrix) of fair coin flips, 8 per random byte.

    Unpacking random bytes is several times faster than `integers(0, 2)` per element; the
    float dtype lets the caller apply a whole chunk as one BLAS matrix product.
    """
    rows = chunk_rows(n)
    n_bytes = (n + 7) // 8
    for start in range(0, n_draws, rows):
        stop = min(start + rows, n_draws)
        packed = rng.integers(0, 256, (stop - start, n_bytes), dtype=np.uint8)
        bits = np.unpackbits(packed, axis=1, count=n)
        yield slice(start, stop), bits.astype(np.float64)


def counts_from_indices(idx: np.ndarray, n: int) -> np.ndarray:
    """Multinomial counts (rows, n): how often each example appears in each resample."""
    rows = idx.shape[0]
    flat = (idx + (np.arange(rows) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
