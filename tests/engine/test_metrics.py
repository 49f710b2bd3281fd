import pytest

from engine.tasks.metrics import METRICS, exact_match, normalize_answer, token_f1


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a  cat,  an   apple and THE dog. ", "cat apple and dog"),
        ("theater anatomy", "theater anatomy"),  # articles only as whole words
        ("U.S.-led", "usled"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm


def test_exact_match() -> None:
    assert exact_match("the Eiffel Tower!", ["Eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel tower"]) == 0.0
    assert exact_match("Paris", ["London", "paris."]) == 1.0
    assert exact_match("", [""]) == 1.0


def test_token_f1_partial() -> None:
    assert token_f1("a big red dog", ["red dog"]) == pytest.approx(0.8)
    # pred {big, red, dog} vs ref {red, dog}: p = 2/3, r = 1
    assert token_f1("red dog", ["a big red dog"]) == pytest.approx(0.8)
    assert token_f1("otter", ["plum"]) == 0.0
    assert token_f1("The Eiffel Tower", ["eiffel tower"]) == 1.0


def test_token_f1_counts_repeated_tokens() -> None:
    # Counter intersection: only one "red" matches. p = 1/2, r = 1 -> 2/3
    assert token_f1("red red", ["red"]) == pytest.approx(2 / 3)


def test_token_f1_empty_cases() -> None:
    assert token_f1("", [""]) == 1.0
    assert token_f1("the", ["a"]) == 1.0  # both normalise to empty
    assert token_f1("", ["red"]) == 0.0
    assert token_f1("red", [""]) == 0.0


def test_max_over_references() -> None:
    refs = ["dog", "a big red dog", "cat"]
    assert token_f1("big red dog", refs) == 1.0
    assert token_f1("red dog", refs) == pytest.approx(0.8)
    assert exact_match("cat", refs) == 1.0


def test_reference_validation() -> None:
    with pytest.raises(ValueError):
        exact_match("x", [])
    with pytest.raises(ValueError):
        token_f1("x", [])
    with pytest.raises(TypeError):
        token_f1("red", "red")  # type: ignore[arg-type]


def test_registry() -> None:
    assert METRICS == {"exact_match": exact_match, "f1": token_f1}
