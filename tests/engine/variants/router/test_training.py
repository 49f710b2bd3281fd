"""The router's training stages on a tiny GPT-2: experts, oracle traces, AR0 (BC), AR1 (PG).

One module-scoped pipeline (experts -> oracle -> BC) is shared by the tests that read it;
16-token chunks keep the tiny model's traces many and the test fast. (The instruction line
opens every prompt, so at the spec's 64-token chunks it also lies before the answer chunk.)
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from engine.models.tokenizer import ByteTokenizer
from engine.router.actions import Action
from engine.router.policy import FactorisedCategorical
from engine.router.trust_region import mean_kl
from engine.tasks.base import TaskExample
from engine.tasks.mixed import MixedDomainTask
from engine.training import TrainPlan
from engine.variants.router.config import RouterPGConfig
from engine.variants.router.data import full_action
from engine.variants.router.experts import domain_expert, expert_losses, orthogonality_penalty
from engine.variants.router.model import DecisionRecord, RouterModel
from engine.variants.router.oracle import OracleTraces
from engine.variants.router.pg import Rollout, collect_rollouts, pg_update
from engine.variants.router.training import oracle_traces, train_bc, train_experts, train_pg
from tests.engine.variants.helpers import VOCAB
from tests.tolerance import assert_close_scaled

CPU = torch.device("cpu")
MAX_LENGTH = 256
CHUNK = 16
TOKENIZER = ByteTokenizer()
TASK = MixedDomainTask()


def tiny_router(seed: int = 0, **overrides) -> RouterModel:
    """2-layer d=32 GPT-2 with room for the mixed task's 81-147 tokens (helpers' has 128)."""
    torch.manual_seed(seed)
    base = GPT2LMHeadModel(
        GPT2Config(
            n_layer=2,
            n_embd=32,
            n_head=2,
            vocab_size=VOCAB,
            n_positions=MAX_LENGTH,
            bos_token_id=257,
            eos_token_id=258,
        )
    ).eval()
    torch.manual_seed(seed)
    config = RouterPGConfig(rank_dimension=4, chunk_size=CHUNK, **overrides)
    return RouterModel(base, config)


def train_plan(steps: int) -> TrainPlan:
    return TrainPlan(
        steps=steps,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=5,
        gradient_clip=1.0,
        weight_decay=0.0,
        seed=0,
        max_length=MAX_LENGTH,
    )


@dataclass
class Pipeline:
    model: RouterModel
    train: list[TaskExample]
    heldout: list[TaskExample]
    traces: OracleTraces
    bc_accuracy: dict[str, float]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    train, heldout = TASK.make_splits(60, 30, seed=0)
    model = tiny_router()
    train_experts(model, TOKENIZER, TASK, train, train_plan(100), CPU, orthogonality_weight=0.1)
    traces = oracle_traces(model, TOKENIZER, TASK, train, CPU, MAX_LENGTH)
    torch.manual_seed(0)
    bc = train_bc(model, traces.states, traces.actions, steps=1000, lr=1e-2, seed=0)
    return Pipeline(model, train, heldout, traces, bc.accuracy)


def test_each_expert_is_best_on_its_own_domain(pipeline: Pipeline) -> None:
    losses = expert_losses(pipeline.model, TOKENIZER, TASK, pipeline.heldout, CPU, MAX_LENGTH)
    domains = torch.tensor([domain_expert(ex) for ex in pipeline.heldout])
    for k in range(3):
        per_expert = losses[domains == k].mean(0)  # (K,) mean loss on domain k
        others = torch.cat([per_expert[:k], per_expert[k + 1 :]])
        assert float(per_expert[k]) + 0.05 < float(others.min()), (k, per_expert.tolist())


def test_teacher_forcing_leaves_policy_and_value_untouched_and_trainable() -> None:
    model = tiny_router(seed=1)
    before = copy.deepcopy({**model.policy.state_dict(), **model.value.state_dict()})
    u_before = next(iter(model.lora_layers.values())).lora_u.detach().clone()
    train, _ = TASK.make_splits(6, 1, seed=1)
    train_experts(model, TOKENIZER, TASK, train, train_plan(3), CPU)
    after = {**model.policy.state_dict(), **model.value.state_dict()}
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(p.requires_grad for p in (*model.policy.parameters(), *model.value.parameters()))
    assert model.forced_plans is None
    assert not torch.equal(u_before, next(iter(model.lora_layers.values())).lora_u)


def test_orthogonality_penalty_reduces_expert_overlap() -> None:
    train, _ = TASK.make_splits(30, 1, seed=0)
    overlap, penalty = {}, {}
    for weight in (0.0, 1.0):
        model = tiny_router()
        result = train_experts(
            model, TOKENIZER, TASK, train, train_plan(25), CPU, orthogonality_weight=weight
        )
        overlap[weight] = result.mean_off_diagonal_overlap
        penalty[weight] = float(orthogonality_penalty(model).detach())
    assert overlap[1.0] < 0.5 * overlap[0.0], overlap
    assert penalty[1.0] < penalty[0.0], penalty


def test_orthogonality_penalty_is_the_off_diagonal_gram_norm() -> None:
    model = tiny_router()
    with torch.no_grad():
        for layer in model.lora_layers.values():
            layer.lora_u.normal_()
    expected = 0.0
    for layer in model.lora_layers.values():
        blocks = [layer.lora_u[:, model.expert_columns(e)] for e in range(3)]
        expected += sum(
            float((blocks[i].t() @ blocks[j]).pow(2).sum().detach())
            for i in range(3)
            for j in range(3)
            if i != j
        )
    assert math.isclose(float(orthogonality_penalty(model).detach()), expected, rel_tol=1e-4)


def test_oracle_picks_the_domain_expert_for_the_answer(pipeline: Pipeline) -> None:
    traces = pipeline.traces
    agree = []
    for i, example in enumerate(pipeline.train):
        rows = ((traces.example_index == i) & traces.scored).nonzero().flatten()
        answer = rows[0]  # the chunk that predicts the first target token
        agree.append(int(traces.actions[answer, 0]) == domain_expert(example))
    assert sum(agree) / len(agree) >= 0.7, sum(agree) / len(agree)


def test_oracle_rows_are_full_rank_span_one_and_lead_in_chunks_take_the_answer_label(
    pipeline: Pipeline,
) -> None:
    traces, model = pipeline.traces, pipeline.model
    full = model.space.indices(full_action(model.space, 0))
    assert torch.equal(traces.actions[:, 1:], torch.tensor(full[1:]).expand(len(traces.actions), 3))
    assert bool((traces.losses[~traces.scored] == 0).all())
    for i in range(len(pipeline.train)):
        rows = (traces.example_index == i).nonzero().flatten()
        first_scored = rows[traces.scored[rows]][0]
        experts = traces.actions[rows, 0]
        # every chunk up to the first scored one carries its label: no switch before it
        assert bool((experts[: int(first_scored - rows[0]) + 1] == experts[0]).all())
    # one row per chunk of prompt + target + EOS
    for i, example in enumerate(pipeline.train[:5]):
        n_tokens = len(example.prompt) + len(TASK.target(example)) + 1
        assert int((traces.example_index == i).sum()) == math.ceil(n_tokens / CHUNK)


def test_bc_clones_the_oracle_expert_head(pipeline: Pipeline) -> None:
    assert pipeline.bc_accuracy["expert"] >= 0.9, pipeline.bc_accuracy


class _Replay(torch.nn.Module):
    """A policy that proposes a fixed sequence of actions, one per call, with certainty."""

    def __init__(self, model: RouterModel, actions: list[Action]) -> None:
        super().__init__()
        self.space, self.actions, self.calls = model.space, actions, 0

    def forward(self, state: torch.Tensor) -> FactorisedCategorical:
        indices = self.space.indices(self.actions[self.calls])
        self.calls += 1
        logits = [torch.full((1, n), -50.0) for n in self.space.head_sizes]
        for logit, index in zip(logits, indices, strict=True):
            logit[0, index] = 50.0
        return FactorisedCategorical(logits)


def test_oracle_states_equal_the_states_plan_builds(pipeline: Pipeline) -> None:
    traces = pipeline.traces
    model = copy.deepcopy(pipeline.model)
    model.config = model.config.model_copy(update={"max_plan_length": 100})
    for i in (0, 1, 2):  # one example per domain
        example = pipeline.train[i]
        ids = TOKENIZER.encode(example.prompt + TASK.target(example)) + [TOKENIZER.eos_token_id]
        prompt = torch.tensor([len(TOKENIZER.encode(example.prompt))])
        previous, evidence = model.chunk_states(torch.tensor([ids]), prompt)
        model.policy = _Replay(model, traces.plans[i])
        record: list[DecisionRecord] = []
        plan = model.plan(previous[0], evidence[0], record=record)
        assert list(plan.chunk_actions) == traces.plans[i]
        rows = (traces.example_index == i).nonzero().flatten()
        assert [r.chunk for r in record] == traces.chunk[rows].tolist()
        assert_close_scaled(torch.stack([r.state for r in record]), traces.states[rows])


def test_the_first_decision_sees_the_prompt(pipeline: Pipeline) -> None:
    """What BC trains on is what prefill routes with: chunk 0's state is the prompt's own
    content (its instruction line names the domain), not the zeros of a blind guess, and it
    is exactly the state `plan` builds from the prompt alone (no answer token in it)."""
    traces, model = pipeline.traces, pipeline.model
    first = traces.chunk == 0
    prefix = model.state_dim - model.space.one_hot_dim
    states = traces.states[first][:, :prefix]
    assert bool((states.abs().sum(1) > 0).all())
    assert len({tuple(row.tolist()) for row in states[:3]}) == 3  # one domain each
    for i in (0, 1, 2):
        example = pipeline.train[i]
        ids = torch.tensor([TOKENIZER.encode(example.prompt)])
        previous, evidence = model.chunk_states(ids, torch.tensor([ids.shape[1]]))
        state = model.state(previous[0, 0], evidence[0, 0], None)[0]
        row = ((traces.example_index == i) & first).nonzero().flatten()
        assert_close_scaled(state, traces.states[row[0]])


def _rollout(pipeline: Pipeline, model: RouterModel, rewards: list[float] | None) -> Rollout:
    """A real rollout on 6 held-out prompts; `rewards` overrides the episodes' rewards (the
    tiny untrained GPT-2 answers nothing right, so its own rewards are all 0)."""
    generator = torch.Generator().manual_seed(0)
    rollout = collect_rollouts(
        model,
        TOKENIZER,
        TASK,
        pipeline.heldout[:6],
        CPU,
        generator,
        max_new_tokens=30,
        max_length=MAX_LENGTH,
    )
    assert rollout.mask.any() and len(rollout.predictions) == 6
    assert bool((rollout.log_probs[rollout.mask] <= 0).all())
    # the first decision of an episode sees the prompt, as prefill routing does at inference
    ids = torch.tensor([TOKENIZER.encode(pipeline.heldout[0].prompt)])
    previous, evidence = model.chunk_states(ids, torch.tensor([ids.shape[1]]))
    assert_close_scaled(rollout.states[0, 0], model.state(previous[0, 0], evidence[0, 0], None)[0])
    if rewards is None:
        return rollout
    last = rollout.mask.sum(1) - 1
    tensor = torch.zeros_like(rollout.rewards)
    tensor[torch.arange(6), last] = torch.tensor(rewards)
    return dataclasses.replace(rollout, rewards=tensor, episode_rewards=rewards)


def _policy_state(model: RouterModel) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.policy.state_dict())


def _identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_one_ar1_round_respects_the_kl_bound(pipeline: Pipeline) -> None:
    model = copy.deepcopy(pipeline.model)
    rollout = _rollout(pipeline, model, [0.0, 2.0, 1.0, 0.0, 2.0, 1.0])
    bound = 0.01
    states = rollout.states[rollout.mask]
    old = model.policy(states).detach()
    before = _policy_state(model)
    optimizer = torch.optim.Adam(model.value.parameters(), lr=1e-2)
    result, _ = pg_update(model, rollout, optimizer, kl_bound=bound, lr=1.0)
    measured = float(mean_kl(old, model.policy(states).detach()))
    assert result.accepted, result  # lr=1 overshoots; backtracking must find a step inside
    assert result.n_backtracks > 0
    assert measured <= bound and math.isclose(measured, result.kl, rel_tol=1e-4)
    assert not _identical(before, _policy_state(model))


def test_a_rejected_ar1_update_leaves_the_policy_bit_identical(pipeline: Pipeline) -> None:
    model = copy.deepcopy(pipeline.model)
    rollout = _rollout(pipeline, model, [0.0, 2.0, 1.0, 0.0, 2.0, 1.0])
    before = _policy_state(model)
    optimizer = torch.optim.Adam(model.value.parameters(), lr=1e-2)
    result, _ = pg_update(model, rollout, optimizer, kl_bound=1e-9, lr=10.0, max_backtracks=0)
    assert not result.accepted and result.reason == "kl_bound" and result.kl > 1e-9
    assert _identical(before, _policy_state(model))


def test_equal_rewards_skip_the_policy_step_but_train_the_value(pipeline: Pipeline) -> None:
    model = copy.deepcopy(pipeline.model)
    rollout = _rollout(pipeline, model, [1.0] * 6)
    before = _policy_state(model)
    value_before = copy.deepcopy(model.value.state_dict())
    optimizer = torch.optim.Adam(model.value.parameters(), lr=1e-2)
    result, _ = pg_update(model, rollout, optimizer, kl_bound=0.01, lr=1.0)
    assert not result.accepted and result.reason == "no_reward_signal"
    assert _identical(before, _policy_state(model))
    assert not all(torch.equal(value_before[n], t) for n, t in model.value.state_dict().items())


def test_train_pg_rounds_are_seeded_and_within_the_gates(pipeline: Pipeline) -> None:
    runs = []
    for _ in range(2):
        model = copy.deepcopy(pipeline.model)
        seen = []
        stats = train_pg(
            model,
            TOKENIZER,
            TASK,
            pipeline.heldout,
            CPU,
            rounds=2,
            kl_bound=0.01,
            lr=0.5,
            seed=3,
            max_new_tokens=30,
            max_length=MAX_LENGTH,
            batch_size=4,
            on_round=seen.append,
        )
        assert seen == stats
        runs.append(stats)
    assert runs[0] == runs[1]
    for row in runs[0]:
        assert 0.0 <= row.mean_reward <= 2.0
        assert row.kl <= 0.01 or not row.accepted
        assert row.plan_length <= 3 and row.n_decisions >= 4


def test_bc_rows_repeat_later_decisions_with_every_previous_expert(pipeline: Pipeline) -> None:
    from engine.variants.router.oracle import with_any_previous_action

    traces, model = pipeline.traces, pipeline.model
    states, actions = with_any_previous_action(model, traces)
    later = traces.chunk >= 1
    k, n_later = model.config.n_experts, int(later.sum())
    assert states.shape[0] == len(traces.states) + k * n_later
    assert torch.equal(states[: len(traces.states)], traces.states)
    prefix = model.state_dim - model.space.one_hot_dim
    for e in range(k):
        block = slice(len(traces.states) + e * n_later, len(traces.states) + (e + 1) * n_later)
        assert torch.equal(states[block, :prefix], traces.states[later, :prefix])
        assert torch.equal(actions[block], traces.actions[later])  # same label
        expected = model.space.one_hot(full_action(model.space, e))
        assert bool((states[block, prefix:] == expected).all())
