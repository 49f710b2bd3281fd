"""Action space: round trips between Action, head indices, flat ids, tensors and one-hots."""

import pytest
import torch

from engine.router.actions import HEADS, Action, ActionSpace, active_rank

SPACE = ActionSpace(n_experts=3)


def all_actions(space: ActionSpace) -> list[Action]:
    return [space.decode(i) for i in range(space.n_actions)]


def test_head_sizes_and_joint_size():
    assert SPACE.head_sizes == (3, 4, 3, 3)
    assert SPACE.n_actions == 3 * 4 * 3 * 3
    assert len(HEADS) == len(SPACE.head_sizes)


def test_encode_decode_is_a_bijection():
    actions = all_actions(SPACE)
    assert len(set(actions)) == SPACE.n_actions
    assert [SPACE.encode(a) for a in actions] == list(range(SPACE.n_actions))
    assert SPACE.decode(0) == Action(expert=0, span=1, rank_budget=0, bias_scale=0)
    assert SPACE.decode(SPACE.n_actions - 1) == Action(2, 4, 2, 2)


def test_tensor_round_trip_uses_span_index():
    actions = [Action(1, 3, 0, 2), Action(2, 1, 2, 0)]
    tensor = SPACE.to_tensor(actions)
    assert tensor.dtype == torch.long
    assert tensor.tolist() == [[1, 2, 0, 2], [2, 0, 2, 0]]  # span 3 is index 2 of (1, 2, 3, 4)
    assert SPACE.from_tensor(tensor) == actions
    assert SPACE.to_tensor([]).shape == (0, 4)


def test_one_hot_marks_one_class_per_head_and_start_slot():
    start = SPACE.one_hot(None)
    assert start.shape == (SPACE.one_hot_dim,) == (3 + 4 + 3 + 3 + 1,)
    assert start.tolist() == [0.0] * (SPACE.one_hot_dim - 1) + [1.0]
    vec = SPACE.one_hot(Action(2, 4, 1, 0))
    assert vec.sum() == 4 and vec[-1] == 0
    assert torch.nonzero(vec).flatten().tolist() == [2, 3 + 3, 7 + 1, 10 + 0]


def test_values_of_an_action():
    action = Action(0, 2, 1, 2)
    assert SPACE.rank_fraction(action) == 0.5
    assert SPACE.bias_value(action) == 1.5


@pytest.mark.parametrize(
    "action",
    [
        Action(3, 1, 0, 0),
        Action(-1, 1, 0, 0),
        Action(0, 5, 0, 0),
        Action(0, 1, 3, 0),
        Action(0, 1, 0, -1),
    ],
)
def test_out_of_space_actions_are_rejected(action):
    with pytest.raises(ValueError):
        SPACE.encode(action)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_experts": 0},
        {"n_experts": 2, "spans": ()},
        {"n_experts": 2, "spans": (0, 1)},
        {"n_experts": 2, "spans": (1, 1)},
        {"n_experts": 2, "rank_budgets": (0.0, 1.0)},
        {"n_experts": 2, "rank_budgets": (1.5,)},
        {"n_experts": 2, "bias_scales": (0.0,)},
    ],
)
def test_invalid_spaces_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ActionSpace(**kwargs)


def test_decode_range_checked():
    with pytest.raises(ValueError):
        SPACE.decode(SPACE.n_actions)


@pytest.mark.parametrize(
    ("rank", "budget", "expected"),
    [(8, 0.25, 2), (8, 0.5, 4), (8, 1.0, 8), (10, 0.3, 3), (3, 0.25, 1), (1, 0.25, 1), (6, 0.5, 3)],
)
def test_active_rank_is_ceiling_of_budget(rank, budget, expected):
    assert active_rank(rank, budget) == expected


def test_same_setting_ignores_span():
    assert Action(1, 1, 2, 0).same_setting(Action(1, 4, 2, 0))
    assert not Action(1, 1, 2, 0).same_setting(Action(1, 1, 1, 0))
    assert not Action(1, 1, 2, 0).same_setting(None)
