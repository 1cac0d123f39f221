"""The layer objective: mean square of activations, weighted per layer, channel subsets;
and device choice (a GPU cannot be had here, so its presence is faked where needed)."""

from __future__ import annotations

import pytest
import torch
from deepdream import devices
from deepdream.engine.objectives import layer_l2, layers_l2, mean_square


def features() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"a": torch.randn(1, 8, 5, 5, generator=g), "b": torch.randn(1, 4, 3, 3, generator=g)}


def test_layer_l2_is_the_mean_square_of_the_layer() -> None:
    f = features()
    assert torch.allclose(layer_l2("a")(f), f["a"].square().mean())
    assert layer_l2("a").layers == {"a"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_mean_square_gradient_is_autograds_to_the_bit(dtype: torch.dtype,
                                                      layout: torch.memory_format) -> None:
    # mean_square's hand-written backward must not change a single dream pixel
    act = torch.randn(1, 16, 12, 10).to(dtype).contiguous(memory_format=layout)
    act.requires_grad_(True)
    for pick in (lambda a: a, lambda a: a[:, [2, 7, 11]]):
        want = torch.autograd.grad(3 * pick(act).float().square().mean(), act)[0]
        loss = 3 * mean_square(pick(act))
        assert torch.equal(loss, 3 * pick(act).float().square().mean())
        assert loss.dtype == torch.float32
        got = torch.autograd.grad(loss, act)[0]
        assert got.dtype == dtype and torch.equal(got, want)
    assert torch.autograd.grad(mean_square(act), act)[0].is_contiguous(memory_format=layout)


def test_channel_subsets_only_see_those_channels() -> None:
    f = features()
    objective = layer_l2("a", [1, 6])
    assert torch.allclose(objective(f), f["a"][:, [1, 6]].square().mean())
    x = f["a"].clone().requires_grad_(True)
    objective({"a": x}).backward()
    touched = (x.grad.abs().sum(dim=(0, 2, 3)) > 0).nonzero().flatten().tolist()
    assert touched == [1, 6]


def test_several_layers_are_weighted_and_summed() -> None:
    f = features()
    objective = layers_l2([("a", 1.0), ("b", 0.5)])
    assert objective.layers == {"a", "b"}
    expected = f["a"].square().mean() + 0.5 * f["b"].square().mean()
    assert torch.allclose(objective(f), expected)
    assert torch.allclose(layers_l2([("a", -2.0)])(f), -2 * f["a"].square().mean())


def test_cpu_is_always_there_and_unknown_devices_are_refused() -> None:
    assert devices.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(devices.DeviceError, match="unknown device 'gpu0'"):
        devices.pick_device("gpu0")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert devices.pick_device("auto").type == "cpu"
    with pytest.raises(devices.DeviceError, match="no CUDA GPU is usable; use --device cpu"):
        devices.pick_device("cuda")
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.pick_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.pick_device(None).type == "cuda"


def test_device_autocast_types(monkeypatch: pytest.MonkeyPatch) -> None:
    assert devices.autocast_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.autocast_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert devices.autocast_dtype(torch.device("cuda")) == torch.float16
    assert devices.autocast_dtype(torch.device("mps")) == torch.float16
