"""The online loop's checkpoint: everything a killed worker's retry needs to go on.

One safetensors file per stream (seed): the weight slots (deployed, serving, shadow,
last-good) and the Fisher as tensors, the rest of the `LoopState` (stream position, which
weights serve, the canary window, the drift monitor's feed, the record so far) as JSON in the
file's metadata. safetensors holds tensors only, so loading a checkpoint runs no code, unlike
a pickle. It is written to a temporary file and renamed over the old one after every live
batch, so a kill at any moment leaves the previous complete checkpoint.

A checkpoint that cannot be read, or that was written for other conditions (its `key`, the
hash of the plan, the variant config and the seed, differs) is not resumed from: the stream
starts over and the job's log says why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import torch

from engine.protocols.online.loop import (
    CanaryRow,
    LoopRecord,
    LoopState,
    StreamEvent,
    TimelinePoint,
)
from engine.protocols.online.regularizers import Params
from engine.tasks.base import TaskExample

FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    state: LoopState
    fisher: Params | None
    runs: dict[str, int]  # role -> the run that held this stream when it was written


def save_checkpoint(
    path: Path, key: str, state: LoopState, fisher: Params | None, runs: dict[str, int]
) -> None:
    from safetensors.torch import save_file

    tensors = {
        f"{slot}/{name}": t.detach().cpu().clone()  # slots may share tensors: copies
        for slot, params in state.weights.items()
        for name, t in params.items()
    }
    for name, t in (fisher or {}).items():
        tensors[f"fisher/{name}"] = t.detach().cpu().clone()
    meta = {
        "format": FORMAT,
        "key": key,
        "runs": runs,
        "serving_source": state.serving_source,
        "last_good_source": state.last_good_source,
        "next_batch": state.next_batch,
        "canary": [[ex.id, ex.prompt, list(ex.references), ex.features] for ex in state.canary],
        "monitor_feed": state.monitor_feed,
        "record": dataclasses.asdict(state.record),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"bemctl_online": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path, key: str, device: torch.device) -> Checkpoint | str:
    """The checkpoint at `path`, or why there is none to resume from."""
    from safetensors import safe_open

    if not path.is_file():
        return "no checkpoint"
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})["bemctl_online"])
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except Exception as exc:  # a damaged file is a reason to start over, not to crash
        return f"checkpoint {path.name} unreadable ({type(exc).__name__})"
    if meta.get("format") != FORMAT or meta.get("key") != key:
        return f"checkpoint {path.name} was written for other conditions"
    slots: dict[str, Params] = {}
    for full, t in tensors.items():
        slot, name = full.split("/", 1)
        slots.setdefault(slot, {})[name] = t.to(device)
    fisher = slots.pop("fisher", None)
    r = meta["record"]
    record = LoopRecord(
        serving_scores=r["serving_scores"],
        deployed_scores=r["deployed_scores"],
        timeline=[TimelinePoint(**p) for p in r["timeline"]],
        events=[StreamEvent(**e) for e in r["events"]],
        canaries=[CanaryRow(**c) for c in r["canaries"]],
        trained_on=r["trained_on"],
    )
    state = LoopState(
        weights=slots,
        serving_source=meta["serving_source"],
        last_good_source=meta["last_good_source"],
        next_batch=meta["next_batch"],
        canary=[TaskExample(i, p, tuple(refs), feats) for i, p, refs, feats in meta["canary"]],
        monitor_feed=meta["monitor_feed"],
        record=record,
    )
    return Checkpoint(state, fisher, {k: int(v) for k, v in meta["runs"].items()})
