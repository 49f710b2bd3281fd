"""The NaN-poisoning hook the kernel tests rely on to prove every element is written."""

import torch

from triton_ops._buffers import new_buffer, poisoned


def test_buffers_are_nan_inside_poisoned_and_restored_after() -> None:
    with poisoned():
        with poisoned():
            assert new_buffer((3, 5), torch.float16, torch.device("cpu")).isnan().all()
        assert new_buffer((4,), torch.float32, torch.device("cpu")).isnan().all()  # still on
    plain = new_buffer((2, 2), torch.float32, torch.device("cpu"))
    assert plain.shape == (2, 2) and plain.dtype == torch.float32
    from triton_ops import _buffers

    assert _buffers._poison is False
