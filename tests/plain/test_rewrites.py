"""accel.prepare's kernel-saving rewrites (deepdream/rewrites.py).

Their fast forms run on CUDA only; there is no GPU here.  The fused conv + ReLU (its custom
backward included) and the space-to-depth stem compute on any device, so the ``fast_on_cpu``
fixture lets them run here, through whole models: a stand-in for CUDA, said so where used.
The inception branches' side streams need CUDA itself; here only their wiring is tested.
bench/check_fastpath_cuda.py's ``rewrites`` check runs the real fast forms on a GPU.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from deepdream import accel, rewrites
from deepdream.engine import DreamSettings, dream, fastpath
from deepdream.models import registry
from torch.utils._python_dispatch import TorchDispatchMode

from tests.support import TINY_MODELS

MODELS = ('[models.g]\narch = "googlenet"\nweights = "random"\n'
          '[models.v]\narch = "vgg16"\nweights = "random"\n'
          '[models.c]\narch = "bvlc_googlenet"\nweights = "random"\n')


@pytest.fixture(scope="module")
def models_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("m") / "models.toml"
    path.write_text(MODELS)
    return str(path)


@pytest.fixture
def fast_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands in for CUDA: inside fast_forms() the fused convs and the space-to-depth stem
    run their fast forms on the CPU too (the inception streams still need CUDA)."""
    monkeypatch.setattr(rewrites, "_fast_here", lambda x: getattr(rewrites._state, "fast",
                                                                  False))


def _pair(name: str, models_file: str) -> tuple[torch.nn.Module, torch.nn.Module,
                                                 accel.AccelReport]:
    """(rewritten, unrewritten) copies of one model, both prepared in float32."""
    fast = registry.load(name, "cpu", models_file, accelerate=False)
    report = accel.prepare(fast, precision="float32", rewrites=True)
    plain = registry.load(name, "cpu", models_file, accelerate=False)
    accel.prepare(plain, precision="float32", rewrites=False)
    return fast, plain, report


def _fast(model: torch.nn.Module, x: torch.Tensor, layers: list[str]) -> dict:
    with rewrites.fast_forms():
        return model(x, layers)


def test_fused_conv_relu_backward_is_the_input_gradient_of_relu_conv() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1).requires_grad_(False)
    x = torch.randn(1, 8, 20, 22, requires_grad=True)
    out = torch.randn(1, 16, 10, 11)
    want = torch.autograd.grad((torch.relu(conv(x)) * out).sum(), x)[0]
    y = rewrites._ConvReLU.apply(x, conv.weight, conv.bias, [2, 2], [1, 1], [1, 1], 1)
    got = torch.autograd.grad((y * out).sum(), x)[0]
    assert torch.allclose(y, torch.relu(conv(x)))
    assert torch.allclose(got, want, atol=1e-6)
    assert (got != 0).any()


def test_googlenet_gets_all_three_rewrites_and_every_layer_stays_the_same(
        models_file, fast_on_cpu) -> None:
    fast, plain, report = _pair("g", models_file)
    assert report.rewrites == ["1 space-to-depth stem", "56 conv+ReLU fused",
                               "9 inception branches on streams"]
    assert "56 conv+ReLU fused" in report.summary()
    x = torch.rand(1, 3, 100, 132, generator=torch.Generator().manual_seed(1))
    layers = list(fast.spec.layers)
    want = plain(x, layers)
    for got in (_fast(fast, x, layers), fast(x, layers)):  # fast forms, then plain forms
        for layer in layers:
            assert accel.relative_error(got[layer], want[layer]) < 1e-5, layer
    # and a dream step through every fused conv's own backward: float32 re-ordered (the
    # stem's sums) moves a step this deep by ~3e-3, through ties of max-pools and ReLUs
    deepest = [layers[-1]]
    with rewrites.fast_forms():
        step = accel._step_direction(fast, x, deepest)
    err = accel.relative_error(step, accel._step_direction(plain, x, deepest))
    assert err < accel.FP32_STEP_TOLERANCE


class _Casts(TorchDispatchMode):
    """Counts the dtype casts the ops under it make."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.count += func is torch.ops.aten._to_copy.default
        return func(*args, **(kwargs or {}))


def test_held_weights_spare_every_fused_convs_casts_and_step_the_same(
        models_file, fast_on_cpu) -> None:
    """bf16 autocast on the CPU stands in for the GPU's: a fused conv whose weights are
    held in bf16 casts neither weight nor bias in a step, and the step is the same bits."""
    fast, _, _ = _pair("g", models_file)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    deepest = [fast.spec.default_layer]

    def step() -> tuple[torch.Tensor, int]:
        with rewrites.fast_forms(), _Casts() as casts:
            g = accel._step_direction(fast, x, deepest, torch.bfloat16)
        return g, casts.count

    cast_step, casts = step()
    fused = rewrites.hold_weights(fast, torch.bfloat16)
    held_step, held_casts = step()
    # to inception4c run conv2, conv3 and 5 inceptions x 6 convs: 32 weights, 32 biases
    assert fused == 56 and casts - held_casts == 2 * 32
    assert torch.equal(held_step, cast_step)
    # prepare holds them where it keeps the rewrites and picks a reduced precision
    model = registry.load("g", "cpu", models_file, accelerate=False)
    report = accel.prepare(model, precision="bfloat16", rewrites=True)
    fused = [m for m in model.modules() if isinstance(m, rewrites.FusedConvReLU)]
    assert report.rewrites and len(fused) == 56
    for m in fused:  # the conv's own values, device and layout, in bf16
        w = m.held_weight
        assert w is not None and w.dtype == torch.bfloat16 and w.device == m.conv.weight.device
        assert w.stride() == m.conv.weight.stride()  # (channels_last)
        assert torch.equal(w, m.conv.weight.to(torch.bfloat16))
        assert torch.equal(m.held_bias, m.conv.bias.to(torch.bfloat16))
    # a compiled copy (DEEPDREAM_COMPILE) runs the plain forms: it carries no copies
    copy = fastpath.compiled_model(model, torch.bfloat16)
    assert not [n for n, _ in copy.named_buffers() if ".held_" in n]
    fastpath.clear_graphs()


def test_vgg_conv_layers_are_still_the_convs_own_output(models_file, fast_on_cpu) -> None:
    """VGG's conv stage and the ReLU stage after it are fused into one; a dream of the conv
    layer itself (``conv4_3``: negative values included) must still read the conv."""
    fast, plain, report = _pair("v", models_file)
    assert report.rewrites == ["13 conv+ReLU fused"]
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(2))
    for layers in (["conv4_3"], ["relu4_3"], ["conv1_1", "relu4_3"], ["conv4_3", "relu4_3"],
                   list(fast.spec.layers)):
        got, want = _fast(fast, x, layers), plain(x, layers)
        assert set(got) == set(layers)
        for layer in layers:
            assert torch.allclose(got[layer], want[layer], atol=1e-5), (layers, layer)
    assert (_fast(fast, x, ["conv4_3"])["conv4_3"] < 0).any()  # not a ReLU's output
    # and a dream step of a conv layer and of the deepest layer are the plain model's
    for layers in (["conv3_1"], [list(fast.spec.layers)[-1]]):
        with rewrites.fast_forms():
            step = accel._step_direction(fast, x, layers)
        assert accel.relative_error(step, accel._step_direction(plain, x, layers)) < 1e-5


def test_caffe_googlenet_stems_keep_their_relu_output(models_file, fast_on_cpu) -> None:
    """Caffe GoogLeNet's stem stages are Sequential(conv, ReLU), whose layer is the ReLU's
    output: conv2_3x3's is fused but never split (only a DreamModel's own conv stage pairs
    are), conv1's conv becomes the space-to-depth stem."""
    fast, plain, report = _pair("c", models_file)
    assert report.rewrites == ["1 space-to-depth stem", "1 conv+ReLU fused"]
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    for layer in ("conv1_7x7_s2", "conv2_3x3", "inception_4c"):
        got, want = _fast(fast, x, [layer])[layer], plain(x, [layer])[layer]
        assert accel.relative_error(got, want) < 1e-5, layer  # (Caffe's 0-255 scale)
        assert got.min() >= 0 and (want == 0).any()  # a ReLU's output, zeros and all


def test_prepare_undoes_rewrites_that_change_the_model(models_file, monkeypatch) -> None:
    """A rewrite that computes something else (here: one that scales a conv) is taken back,
    with a note, and the model computes what it did before."""
    def wrong(model: torch.nn.Module) -> list[str]:
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        with torch.no_grad():
            conv.weight.mul_(1.5)
        return ["1 wrong rewrite"]

    monkeypatch.setattr(rewrites, "rewrite", wrong)
    fast = registry.load("v", "cpu", models_file, accelerate=False)
    report = accel.prepare(fast, precision="float32", rewrites=True)
    plain = registry.load("v", "cpu", models_file, accelerate=False)
    assert report.rewrites == []
    assert any(n.startswith("rewrites off: relative error") for n in report.notes)
    x = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(fast(x, ["relu4_3"])["relu4_3"], plain(x, ["relu4_3"])["relu4_3"],
                          atol=1e-5)


def test_rewrites_are_for_cuda_by_default_and_can_be_turned_off(monkeypatch) -> None:
    assert accel.rewrites_wanted(torch.device("cuda", 0))
    assert not accel.rewrites_wanted(torch.device("cpu"))
    assert not accel.rewrites_wanted(torch.device("mps"))
    assert accel.rewrites_wanted(torch.device("cpu"), True)
    assert not accel.rewrites_wanted(torch.device("cuda"), False)
    monkeypatch.setattr(rewrites, "ENABLED", False)  # DEEPDREAM_REWRITES=0
    assert not accel.rewrites_wanted(torch.device("cuda", 0))


def test_a_rewrite_whose_fast_form_fails_is_undone(models_file, fast_on_cpu,
                                                   monkeypatch) -> None:
    """cuDNN may have no engine for a fused call on some GPU: prepare keeps the plain model
    and says why, instead of failing to load it."""
    def no_engine(*args, **kwargs):
        raise RuntimeError("FIND was unable to find an engine to execute this computation")

    monkeypatch.setattr(rewrites._ConvReLU, "apply", no_engine)
    fast = registry.load("v", "cpu", models_file, accelerate=False)
    report = accel.prepare(fast, precision="float32", rewrites=True)
    assert report.rewrites == []
    assert "rewrites off: FIND was unable to find an engine" in "; ".join(report.notes)
    assert not any(isinstance(m, rewrites.FusedConvReLU) for m in fast.modules())


def test_a_copy_of_a_model_with_stream_branches_makes_its_own_streams(models_file) -> None:
    """Streams belong to one process and device: a deepcopy (the compiled copy, the bench's
    second model) starts without them.  No CUDA here: a placeholder stands for a stream."""
    fast, _, _ = _pair("g", models_file)
    inception = next(m for m in fast.modules() if isinstance(m, rewrites.ConcurrentInception))
    inception._streams[torch.device("cuda", 0)] = [object()]  # type: ignore[list-item]
    clone = copy.deepcopy(inception)
    assert clone._streams == {} and inception._streams


@pytest.mark.parametrize(("channels", "kernel", "padding", "size"),
                         [(3, 7, 3, (96, 128)), (3, 7, 3, (41, 53)), (3, 3, 0, (45, 45)),
                          (3, 4, 1, (32, 32)), (1, 7, 3, (40, 48)), (4, 5, 2, (33, 30))])
def test_space_to_depth_stem_is_the_same_convolution(channels, kernel, padding, size) -> None:
    """The rewritten stem's fast form computes the stride-2 conv it replaces (odd sizes
    included), and the same input gradient; it reads a multiple of 8 channels (zeros
    added), what cuDNN's tensor-core kernels take."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, 16, kernel, 2, padding).requires_grad_(False)
    stem = rewrites.SpaceToDepthConv(conv)
    assert stem.weight.shape[1] % 8 == 0
    x = torch.rand(1, channels, *size, requires_grad=True)
    grads = []
    for module in (conv, stem.unshuffled):
        y = module(x)
        grads.append((y, *torch.autograd.grad(y.square().sum(), x)))
    (y0, g0), (y1, g1) = grads
    assert y0.shape == y1.shape and g1.shape == x.shape
    assert torch.allclose(y0, y1, atol=1e-5) and torch.allclose(g0, g1, rtol=1e-4, atol=1e-5)


def test_torch_compile_traces_the_space_to_depth_stem() -> None:
    """The compiled step (DEEPDREAM_COMPILE) gets the stem's fast form, plain torch ops
    that inductor compiles, outside fast_forms() too (where the compiled copy is traced);
    uncompiled and outside fast_forms(), the plain form."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 7, 2, 3), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, 1, 1)).eval()
    model.requires_grad_(False)
    plain = copy.deepcopy(model)
    assert rewrites.rewrite(model) == ["1 space-to-depth stem"]
    traced: list[str] = []

    def backend(gm: torch.fx.GraphModule, _inputs: list) -> object:
        traced.extend(str(n.target) for n in gm.graph.nodes)
        return gm.forward

    x = torch.rand(1, 3, 30, 34)
    y = torch.compile(model, backend=backend)(x)
    assert any("pixel_unshuffle" in t for t in traced)
    assert torch.allclose(y, plain(x), atol=1e-5)
    assert torch.equal(model(x), plain(x))  # uncompiled, outside fast_forms: the plain forms


def test_fast_forms_are_on_only_inside_the_context_and_only_in_its_thread() -> None:
    """The fast path turns the fast forms on around a graph's warm-up and capture; eager
    steps, and another device's worker thread meanwhile, keep the plain forms."""
    import threading

    seen: list[bool] = []

    def other_thread() -> None:
        seen.append(rewrites._state.__dict__.get("fast", False))

    assert not getattr(rewrites._state, "fast", False)
    with rewrites.fast_forms():
        with rewrites.fast_forms():
            pass
        assert rewrites._state.fast  # still on after the nested one ends
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert not rewrites._state.fast and seen == [False]


def test_a_non_finite_dream_from_the_fast_forms_is_dreamed_again_without_them(
        models_file, monkeypatch, caplog) -> None:
    """If the graphs' fast forms ever turn a finite image into NaN (see
    dream._fast_forms_failed), the dream runs again on the plain forms and the model keeps
    them.  No GPU here: the captured graphs are stood in for by eager steps, which write NaN
    while the model's fast forms are on."""
    model = registry.load("tiny", "cpu", str(TINY_MODELS))
    model._accel_report.rewrites = ["1 conv+ReLU fused"]  # as prepare reports on CUDA
    runs: list[bool] = []

    class Graph:
        def __init__(self, *args) -> None:
            self.args = args

        def run(self, x: torch.Tensor, offsets) -> torch.Tensor:
            runs.append(getattr(model, "plain_forms", False))
            model_, objective, step_size = self.args
            fastpath.run_octave_eager(x, model_, objective, offsets, step_size)
            return x if runs[-1] else x.fill_(float("nan"))

    monkeypatch.setattr(fastpath, "captures", lambda device: True)
    monkeypatch.setattr(fastpath, "octave_graph", lambda model, objective, shape, steps,
                        step_size, *a, **k: Graph(model, objective, step_size))
    settings = DreamSettings.from_dict({"model": "tiny", "octaves": 2, "iterations": 2,
                                        "seed": 4})
    image = np.random.default_rng(5).random((48, 64, 3), dtype=np.float32)
    out = dream(image, model, settings)
    assert np.isfinite(out).all() and np.abs(out - image).max() > 0.005
    assert runs == [False, False, True, True] and model.plain_forms
    assert "came out non-finite with the rewritten modules" in caplog.text
    # a NaN in the input is cleaned before the dream (dream._dreamed), so a non-finite
    # result is the fast forms' all the same: dreamed again, and finite
    runs.clear()
    del model.plain_forms
    image[0, 0, 0] = np.nan
    assert np.isfinite(dream(image, model, settings)).all()
    assert runs == [False, False, True, True]


@pytest.mark.parametrize(("compiled", "dtype", "tile", "retried"), [
    (False, None, None, True), (True, None, None, True), (True, torch.bfloat16, 32, True),
    (True, torch.bfloat16, None, False)],
    ids=["plain", "compiled-float32", "compiled-tiled", "compiled"])
def test_a_failed_capture_with_the_fast_forms_tries_the_plain_forms(
        caplog, compiled: bool, dtype: torch.dtype | None, tile: int | None,
        retried: bool) -> None:
    """A capture that fails with the fast forms on (a cuDNN fused call or a stream branch at
    a shape the load check did not see) must not leave the shape eager for good: the model
    takes its plain forms and the capture is tried again.  Here the capture fails for want
    of CUDA both times; what is tested is that second try and the model's switch.  A step
    of the compiled copy runs no fast forms: its failure leaves them on (asked for a
    compiled step in float32 or in tiles, the graph steps the model itself)."""
    from deepdream.engine.objectives import layers_l2

    model = registry.load("tiny", "cpu", str(TINY_MODELS))
    model._accel_report.rewrites = ["1 conv+ReLU fused"]  # as prepare reports on CUDA
    assert fastpath.fast_forms_used(model)
    objective = layers_l2(((model.spec.default_layer, 1.0),))
    shape = torch.Size((1, 3, 40, 40))
    assert fastpath.octave_graph(model, objective, shape, 2, 0.01, dtype, "k", compiled,
                                 tile) is None
    assert fastpath.fast_forms_used(model) is not retried
    assert caplog.text.count("CUDA graph capture failed") == 1 + retried
    assert ("keeps its plain forms" in caplog.text) is retried
    fastpath.clear_graphs()
