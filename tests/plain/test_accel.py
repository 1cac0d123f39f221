"""accel.prepare keeps what a model computes (within the stated tolerances) while making it
faster: BatchNorm folded into convolutions, channels_last, threads, the CPU compute dtype."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from deepdream import accel
from deepdream.engine import DreamSettings, dream, fastpath
from deepdream.engine.objectives import layer_l2, layers_l2
from deepdream.engine.tiling import gradient
from deepdream.models import registry
from deepdream.precision import PrecisionError
from torch import nn

from tests.support import TINY_MODELS

MODELS = str(TINY_MODELS)


def _random_bn_stats(model: nn.Module, seed: int = 3) -> None:
    """Freshly built nets have mean 0 / var 1 / gamma 1 / beta 0, which a wrong fold would
    pass; give every BatchNorm statistics that matter."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def _googlenet() -> nn.Module:
    model = registry.load("tiny", "cpu", MODELS, accelerate=False)
    _random_bn_stats(model)
    return model


def _input_gradient(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    loss = model(x, [layer])[layer].float().square().mean()
    return torch.autograd.grad(loss, x)[0]


def test_fold_removes_every_batchnorm_and_keeps_the_layer_output() -> None:
    model, reference = _googlenet(), _googlenet()
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(0))
    # run to the last stage so every BatchNorm is seen
    folded = accel.fold_batchnorm(model, x, lambda m, t: m(t, ["inception5b"]))
    assert folded == n_bn > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        a = model(x, ["inception5b"])["inception5b"]
        b = reference(x, ["inception5b"])["inception5b"]
    assert accel.relative_error(a, b) < accel.FOLD_TOLERANCE


def test_fold_leaves_a_conv_whose_output_is_also_read_elsewhere() -> None:
    class Tap(nn.Module):  # the conv's output feeds the BN and an add: folding would be wrong
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.relu = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.relu(self.bn(y)) + self.relu(y)

    model = Tap().eval()
    _random_bn_stats(model)
    x = torch.rand(1, 3, 8, 8)
    before = model(x).detach()
    # the second read goes through a leaf module (relu), which the tracer sees
    assert accel.fold_batchnorm(model, x) == 0
    assert isinstance(model.bn, nn.BatchNorm2d)
    assert torch.equal(model(x).detach(), before)


def test_fold_check_compares_true_float32_and_keeps_the_users_tf32_setting() -> None:
    # TF32 exists only on CUDA GPUs (none here), where it is on for convolutions by default
    # and made the check reject every fold (H100: 1.4e-3 > 1e-4).  What can be checked here:
    # the check's forward runs with TF32 off, and the user's flags come back afterwards.
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    before = [f.allow_tf32 for f in flags]
    seen: list[tuple[bool, bool]] = []
    model = _googlenet()
    model.register_forward_pre_hook(lambda *_: seen.append(tuple(f.allow_tf32 for f in flags)))
    try:
        for f in flags:
            f.allow_tf32 = True
        report = accel.prepare(model, channels_last=False, precision="float32")
        assert report.folded_bn > 0 and not any("fold off" in n for n in report.notes)
        assert (False, False) in seen  # the comparison of folded and unfolded outputs
        assert [f.allow_tf32 for f in flags] == [True, True]
    finally:
        for f, b in zip(flags, before, strict=True):
            f.allow_tf32 = b


def test_fold_does_nothing_in_training_mode() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    assert accel.fold_batchnorm(model, torch.rand(2, 3, 8, 8)) == 0
    assert isinstance(model[1], nn.BatchNorm2d)


def test_resnet_bottlenecks_and_downsample_fold() -> None:
    model = registry.load("tiny_resnet", "cpu", _resnet_models_file(), accelerate=False)
    _random_bn_stats(model)
    reference = registry.load("tiny_resnet", "cpu", _resnet_models_file(), accelerate=False)
    _random_bn_stats(reference)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    report = accel.prepare(model, channels_last=False, precision="float32")
    # stem + layer1 (3 bottlenecks x 3, one downsample) + layer2 (4 x 3, one downsample) ...
    assert report.folded_bn == sum(isinstance(m, nn.BatchNorm2d) for m in reference.modules())
    err = accel.relative_error(_input_gradient(model, x, "layer2"),
                               _input_gradient(reference, x, "layer2"))
    assert err < accel.FP32_STEP_TOLERANCE


_RESNET_TOML: list[str] = []


def _resnet_models_file() -> str:
    if not _RESNET_TOML:
        import tempfile

        f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
        f.write('[models.tiny_resnet]\narch = "resnet50"\nweights = "random"\n')
        f.close()
        _RESNET_TOML.append(f.name)
    return _RESNET_TOML[0]


def test_prepared_model_steps_in_the_same_direction_as_the_original() -> None:
    """fold + channels_last in float32: one step's direction within FP32_STEP_TOLERANCE."""
    model, reference = _googlenet(), _googlenet()
    report = accel.prepare(model, channels_last=True, precision="float32")
    assert report.channels_last and report.compute_dtype == "float32"
    assert model.compute_dtype is None
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(5))
    err = accel.relative_error(_input_gradient(model, x, "inception4c"),
                               _input_gradient(reference, x, "inception4c"))
    assert err < accel.FP32_STEP_TOLERANCE


def test_loaded_models_are_prepared_and_keep_the_step(monkeypatch) -> None:
    """registry.load prepares the model; in float32 a one-step dream stays within
    FP32_STEP_TOLERANCE of the plain float32 step on the unprepared network."""
    monkeypatch.setenv("DEEPDREAM_PRECISION", "float32")
    model = registry.load("tiny", "cpu", MODELS)
    reference = registry.load("tiny", "cpu", MODELS, accelerate=False)
    image = np.random.default_rng(1).random((64, 96, 4), dtype=np.float32)
    keep = image.copy()
    s = DreamSettings.from_dict({"model": "tiny", "octaves": 1, "iterations": 1, "tile": 4096,
                                 "jitter": 0})
    got = dream(image, model, s)
    assert getattr(model, "_accel_report", None) is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert np.array_equal(image, keep)
    assert np.array_equal(got[..., 3], image[..., 3])  # alpha passed through
    x = torch.from_numpy(image[..., :3]).permute(2, 0, 1)[None].clone()
    objective = layers_l2(((reference.spec.default_layer, 1.0),))
    fastpath.run_octave_eager(x, reference, objective, [(0, 0)], s.step / 255)
    want = x[0].permute(1, 2, 0).numpy()
    detail_err = np.linalg.norm(got[..., :3] - want) / np.linalg.norm(want - image[..., :3])
    assert detail_err < accel.FP32_STEP_TOLERANCE


def test_prepare_is_idempotent() -> None:
    model = _googlenet()
    first = accel.prepare(model, precision="float32")
    hooks = len(model._forward_pre_hooks)
    assert accel.prepare(model, precision="float32") is first
    assert len(model._forward_pre_hooks) == hooks


@pytest.mark.filterwarnings("ignore:In CPU autocast")  # (float32 "autocast": plain float32)
def test_precision_check_measures_the_step_against_the_8bit_floor() -> None:
    """bf16 moves the step (error > 0) and so does 8-bit rounding of the input (floor > 0);
    emulated bf16 works on any CPU, so this runs everywhere."""
    model = _googlenet()
    accel.prepare(model, precision="float32")
    check = accel.precision_check(model, torch.bfloat16, ["inception4c"])
    assert 0 < check.error < 1 and 0 < check.floor < 1
    # float32 against itself: no error, and the same floor (the rounding does not depend
    # on the precision being checked)
    same = accel.precision_check(model, torch.float32, ["inception4c"])
    assert same.error == 0 and same.floor == check.floor and same.ok


def test_reduced_precision_is_chosen_only_when_the_check_passes(monkeypatch) -> None:
    # Pretend this CPU has native bf16 so the choice is exercised on every machine.
    monkeypatch.setattr(accel, "reduced_dtype", lambda device: torch.bfloat16)
    monkeypatch.delenv("DEEPDREAM_PRECISION", raising=False)
    monkeypatch.setattr(accel, "QUANTISATION_RATIO", 0.0)
    monkeypatch.setattr(accel, "ABSOLUTE_TOLERANCE", 0.0)
    strict = _googlenet()
    rejected = accel.prepare(strict)
    assert rejected.compute_dtype == "float32" and strict.compute_dtype is None
    assert "bfloat16 step error" in rejected.notes[-1] and rejected.notes[-1].endswith("off")
    monkeypatch.setattr(accel, "QUANTISATION_RATIO", 100.0)
    loose = _googlenet()
    accepted = accel.prepare(loose)
    assert accepted.compute_dtype == "bfloat16" and loose.compute_dtype is torch.bfloat16
    assert accepted.notes[-1].endswith("on")


def test_precision_setting_forces_or_refuses(monkeypatch) -> None:
    monkeypatch.setattr(accel, "reduced_dtype", lambda device: torch.bfloat16)
    monkeypatch.setattr(accel, "ABSOLUTE_TOLERANCE", 100.0)  # the check would accept bf16
    monkeypatch.setenv("DEEPDREAM_PRECISION", "float32")
    kept = _googlenet()
    assert accel.prepare(kept).compute_dtype == "float32" and kept.compute_dtype is None
    monkeypatch.setenv("DEEPDREAM_PRECISION", "fp16")  # alias, forced without a check
    forced = _googlenet()
    report = accel.prepare(forced)
    assert report.compute_dtype == "float16"
    assert not any("step error" in note for note in report.notes)
    monkeypatch.setenv("DEEPDREAM_PRECISION", "half-ish")
    with pytest.raises(PrecisionError, match="unknown precision 'half-ish'"):
        accel.prepare(_googlenet())


def test_tiled_gradient_runs_in_the_dtype_prepare_chose(monkeypatch) -> None:
    """tiling.gradient reads model.compute_dtype: the convolutions compute in bf16, and the
    gradient differs from float32's but stays finite and close."""
    monkeypatch.setattr(accel, "reduced_dtype", lambda device: torch.bfloat16)
    monkeypatch.setattr(accel, "ABSOLUTE_TOLERANCE", 100.0)  # the check accepts bf16
    monkeypatch.delenv("DEEPDREAM_PRECISION", raising=False)
    model = _googlenet()
    assert accel.prepare(model).compute_dtype == "bfloat16"
    seen: list[torch.dtype] = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda _m, _args, out: seen.append(out.dtype))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    objective = layer_l2("inception4c")
    g16 = gradient(x, model, objective, tile=4096)
    assert seen == [torch.bfloat16]
    model.compute_dtype = None  # float32
    g32 = gradient(x, model, objective, tile=4096)
    assert seen == [torch.bfloat16, torch.float32]
    assert torch.isfinite(g16).all()
    assert 0 < accel.relative_error(g16, g32) < 1.0


def _topology(root: Path, cores: list[tuple[int, int]]) -> Path:
    """A sysfs cpu folder: logical CPU i sits on (package, core) cores[i]."""
    for cpu, (package, core) in enumerate(cores):
        t = root / f"cpu{cpu}" / "topology"
        t.mkdir(parents=True)
        (t / "physical_package_id").write_text(f"{package}\n")
        (t / "core_id").write_text(f"{core}\n")
    return root


# two packages of two cores, each core with two hyper-threads (as Linux numbers them: the
# second thread of each core after all the first ones)
_SMT = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize(("allowed", "cores"), [
    (range(8), 4),
    ({0, 1, 2, 3}, 4),  # one hyper-thread of each core (taskset, a container's cpuset)
    ({0, 4}, 1),  # both threads of one core
    ({1, 2, 5}, 2),
])
def test_physical_cores_counts_the_allowed_cpus_cores(
        tmp_path: Path, allowed: set[int], cores: int) -> None:
    assert accel.physical_cores(allowed, _topology(tmp_path, _SMT)) == cores


def test_dream_threads_are_the_cores_unless_deepdream_threads_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("DEEPDREAM_THREADS", raising=False)
        assert accel.set_threads() == accel.physical_cores() == torch.get_num_threads()
        monkeypatch.setenv("DEEPDREAM_THREADS", "3")
        assert accel.set_threads() == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value", ["abc", "-2", "2.5", "two"])
def test_a_deepdream_threads_that_is_no_number_is_refused_in_one_line(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("DEEPDREAM_THREADS", value)
    try:
        with pytest.raises(PrecisionError) as info:  # (the speed settings' one-line error)
            accel.set_threads()
        assert str(info.value) == (
            f"DEEPDREAM_THREADS must be a whole number of CPU threads (or unset for one per "
            f"physical core), not {value!r}")
        assert torch.get_num_threads() == before  # nothing was changed
        monkeypatch.setenv("DEEPDREAM_THREADS", " 0 ")  # 0 (or empty): the default
        assert accel.set_threads() == accel.physical_cores()
    finally:
        torch.set_num_threads(before)



@pytest.mark.skipif(accel._glibc() is None, reason="the allocator tuning is for glibc only")
def test_allocator_tuning_is_accepted_by_glibc() -> None:
    """mallopt takes both settings (it returns 0 for a value it refuses).  What it buys, the
    page faults and seconds of a CPU step, is measured in bench/RESULTS.md: glibc's own
    adaptive policy varies run to run (2.9k to 12.7k faults for the same step), too
    unsteady for an assertion."""
    assert accel.keep_step_memory()
    accel.release_memory()
    model = registry.load("tiny", "cpu", MODELS)
    assert "freed host blocks kept between steps" in model._accel_report.notes


def test_releasing_memory_also_frees_torchs_pinned_staging(monkeypatch) -> None:
    """The daemon stages frames bound for a GPU in pinned memory, which torch caches at the
    biggest frame's size; the idle release hands it back.  Pinned memory needs a GPU (none
    here), so torch's call is replaced by a recorder: this checks only that it is made."""
    calls: list[int] = []
    monkeypatch.setattr(torch.accelerator, "empty_host_cache", lambda: calls.append(1))
    accel.release_memory()
    assert calls == [1]
