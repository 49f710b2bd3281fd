"""Which path an op call takes, and the one-line errors for what cannot run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from store.errors import BemctlError
from tests.triton_ops.helpers import ran_through
from triton_ops import KernelConfigError, dispatch
from triton_ops.film import film
from triton_ops.kron_delta import kron_delta
from triton_ops.masked_lora import masked_lora

BOUNDS = ((0.5, 2.0), (-0.5, 0.5))


@pytest.fixture(autouse=True)
def _restore_backend() -> Iterator[None]:
    before = dispatch.backend()
    yield
    dispatch.configure(before)


def _calls() -> dict[str, tuple[torch.Tensor, str]]:
    """One small call of every op (outputs require grad) with the kernel's autograd node."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, generator=g, requires_grad=True)
    v, u = torch.randn(8, 2, generator=g), torch.randn(5, 2, generator=g)
    return {
        "masked_lora": (
            masked_lora(x, torch.randn(8, 5, generator=g), None, v, u, None, 0.5),
            "MaskedLoraBackward",
        ),
        "kron_delta": (
            kron_delta(x, torch.randn(2, 2, generator=g), torch.randn(3, 4, generator=g)),
            "KronDeltaBackward",
        ),
        "film": (film(x, torch.ones(8), torch.zeros(8), BOUNDS), "FilmBackward"),
    }


def test_auto_keeps_cpu_tensors_on_torch_even_when_interpreting() -> None:
    """What keeps the rest of the suite fast although TRITON_INTERPRET=1 is set here."""
    assert dispatch.interpret_requested()
    dispatch.configure("auto")
    for name, (y, node) in _calls().items():
        assert y.grad_fn is not None and not ran_through(y, node), name


def test_torch_backend_never_launches_a_kernel() -> None:
    dispatch.configure("torch")
    assert not any(ran_through(y, node) for y, node in _calls().values())


def test_triton_backend_runs_every_op_interpreted_on_cpu() -> None:
    dispatch.configure("triton")
    for name, (y, node) in _calls().items():
        assert ran_through(y, node), name


def test_unknown_backend_is_a_one_line_error_naming_the_setting() -> None:
    with pytest.raises(KernelConfigError, match="kernels = 'cuda': expected one of auto, triton"):
        dispatch.configure("cuda")


def test_triton_without_gpu_or_interpreter_is_refused_up_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRITON_INTERPRET")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        KernelConfigError, match='kernels = "triton" cannot run here: no CUDA device'
    ):
        dispatch.configure("triton")
    assert dispatch.kernel_path("triton", cuda=False) == "torch"


def test_triton_missing_means_torch_path_and_a_clear_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "triton_version", lambda: None)
    with pytest.raises(KernelConfigError, match="triton is not installed"):
        dispatch.configure("triton")
    assert dispatch.kernel_path("auto", cuda=True) == "torch"
    dispatch.configure("auto")
    assert not dispatch.use_triton("film", torch.zeros(2))


def test_explicit_triton_refuses_unsupported_dtypes_instead_of_falling_back() -> None:
    dispatch.configure("triton")
    x = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(KernelConfigError, match='kernels = "triton": film got float64 inputs'):
        film(x, x, x, BOUNDS)
    dispatch.configure("auto")
    assert film(x, x + 1, x, BOUNDS).dtype == torch.float64  # auto: the reference takes it


@pytest.mark.parametrize(
    "kernels, cuda, interpret, expected",
    [
        ("auto", False, True, "torch"),
        ("auto", True, False, "native"),
        ("auto", True, True, "interpreted"),
        ("triton", False, True, "interpreted"),
        ("triton", True, False, "native"),
        ("torch", True, False, "torch"),
    ],
)
def test_kernel_path_reported_by_doctor(
    monkeypatch: pytest.MonkeyPatch, kernels: str, cuda: bool, interpret: bool, expected: str
) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1" if interpret else "0")
    assert dispatch.kernel_path(kernels, cuda=cuda) == expected


def test_cpu_tensors_under_triton_without_interpreter_fail_at_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CUDA machine with device = "cpu": configure passes, the call says why it cannot."""
    dispatch.configure("triton")
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(KernelConfigError, match="cannot run film on CPU tensors: TRITON_INTERPRET"):
        film(torch.zeros(3), torch.ones(3), torch.zeros(3), BOUNDS)


def test_a_runner_configures_the_kernels_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the engine starts: "triton" that cannot run stops the run before any work."""
    from engine.runner import ExperimentRunner
    from engine.settings import Settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ExperimentRunner(Settings(kernels="torch", device="cpu"), store=None, options=None)
    assert dispatch.backend() == "torch"
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(BemctlError, match='kernels = "triton" cannot run here'):  # one line
        ExperimentRunner(Settings(kernels="triton", device="cpu"), store=None, options=None)
