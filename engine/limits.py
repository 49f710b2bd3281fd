"""Upper bounds on what a spec, bemctl.toml or a data file may ask for.

They keep bad input from hurting the machine: a spec file that expands into gigabytes, a
size that makes a worker allocate without bound, a batch the size of the dataset. Each is
far above anything a run on this project's scale needs, and each error names the limit.
"""

from __future__ import annotations

# -- spec files (YAML) --------------------------------------------------------------------
SPEC_FILE_BYTES = 1 << 20  # 1 MiB; a spec is a few hundred bytes
SPEC_NODES = 10_000  # YAML nodes after expanding aliases (a spec has ~60)
SPEC_DEPTH = 64  # nesting levels (a spec has 3)
SPEC_PROBLEMS = 10  # error lines reported per spec file

# -- data ---------------------------------------------------------------------------------
# Examples are held in memory (text, token ids, per-example scores): ~5 KiB each for the
# longest synthetic prompts, so 200,000 training examples stay around 1 GiB.
TRAIN_EXAMPLES = 200_000
EVAL_EXAMPLES = 100_000
# Examples drawn over a training run (steps x batch size): the batch order is materialised.
TRAIN_DRAWS = 10_000_000
BATCH_SIZE = 1024
TRAIN_STEPS = 1_000_000
EPOCHS = 1000
BOOTSTRAP_SAMPLES = 1_000_000
LATENCY_ROUNDS = 10_000
MEASURE_NEW_TOKENS = 4_096  # decode steps per latency probe
SEEDS = 100  # seeds per spec: one baseline + variant training each
PRETRAIN_CORPUS_DOCS = 100_000
DATA_FILE_BYTES = 128 << 20  # a JSONL data file (read whole into memory)
DATA_PREVIEW_BYTES = 64 << 10  # what validation reads of a data file to check its lines
DATA_PREVIEW_LINES = 5
MODEL_CONFIG_BYTES = 1 << 20  # config.json / tokenizer_config.json of a model directory


def count(n: int) -> str:
    """10000 -> '10,000' for messages."""
    return f"{n:,}"
