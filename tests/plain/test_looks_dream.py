"""Each looks option, run through dream(), changes the result the way it claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from deepdream.engine import DreamSettings, SettingsError, dream
from deepdream.engine.priors_extra import to_ycbcr
from deepdream.imageio import write_image
from deepdream.models import registry
from deepdream.models.bvlc_googlenet import bvlc_googlenet
from PIL import Image

from tests.support import MATERIAL, TINY_MODELS

TINY = TINY_MODELS
PHOTO = MATERIAL / "images" / "chelsea.png"
BASE = {"model": "tiny", "layer": "inception3a", "octaves": 2, "iterations": 4, "seed": 1}


@pytest.fixture(scope="module")
def model():
    return registry.load("tiny", "cpu", models_file=TINY)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 64x64 crop of a real photo (its left and right edges differ, as photos' do)."""
    if PHOTO.is_file():
        with Image.open(PHOTO) as im:
            im = im.convert("RGB")
            side = min(im.size)
            im = im.crop((0, 0, side, side)).resize((64, 64), Image.Resampling.LANCZOS)
            return np.asarray(im, dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:64, 0:64] / 64.0  # fallback: a ramp whose edges differ
    return np.stack([xx, yy, 0.5 + 0.4 * np.sin(9 * xx * yy)], -1).astype(np.float32)


def _run(model, image: np.ndarray, **extra) -> np.ndarray:
    return dream(image, model, DreamSettings.from_dict({**BASE, **extra}))


def _chroma(img: np.ndarray) -> np.ndarray:
    return to_ycbcr(torch.from_numpy(img).permute(2, 0, 1))[1:].numpy()


def _luma(img: np.ndarray) -> np.ndarray:
    return to_ycbcr(torch.from_numpy(img).permute(2, 0, 1))[0].numpy()


def _tv(img: np.ndarray) -> float:
    return float(np.abs(np.diff(img, axis=0)).mean() + np.abs(np.diff(img, axis=1)).mean())


def _seam_ratio(img: np.ndarray) -> float:
    """Wrap-around jump (last column to first, last row to first) over the interior's mean
    neighbour jump."""
    wrap = (np.abs(img[:, -1] - img[:, 0]).mean() + np.abs(img[-1] - img[0]).mean()) / 2
    inner = (np.abs(np.diff(img, axis=1)).mean() + np.abs(np.diff(img, axis=0)).mean()) / 2
    return float(wrap / inner)


def test_keep_colors_changes_brightness_and_keeps_the_chroma(model, photo) -> None:
    plain = _run(model, photo)
    kept = _run(model, photo, keep_colors=True)
    assert np.abs(_chroma(plain) - _chroma(photo)).mean() > 0.005  # a plain dream recolours
    chroma_error = np.abs(_chroma(kept) - _chroma(photo))
    assert chroma_error.mean() < 0.002 and chroma_error.max() < 0.05  # only where clipped
    assert np.abs(_luma(kept) - _luma(photo)).mean() > 0.005


def test_seamless_leaves_no_stronger_seam_than_the_interior(model, photo) -> None:
    assert _seam_ratio(photo) > 2  # the photo does not tile
    assert _seam_ratio(_run(model, photo)) > 2  # nor does a plain dream of it
    tiled = _run(model, photo, seamless=True)
    assert _seam_ratio(tiled) <= 1.0
    assert np.abs(tiled - photo).mean() > 0.01  # and it is still a dream of the photo


@pytest.mark.parametrize("extra", [{"strength": 0.5}, {"keep_colors": True}],
                         ids=["strength", "keep-colours"])
def test_seamless_tiles_at_any_strength_and_with_the_colours_kept(model, photo, extra) -> None:
    """Both used to bring the photo's seam back: the blend and the colours kept were of
    the input as it was, not as it was made to tile."""
    assert _seam_ratio(_run(model, photo, seamless=True, **extra)) <= 1.0


def test_seamless_tiles_under_a_mask_that_reaches_the_edges(model, photo) -> None:
    """A half mask everywhere acts as strength 0.5 does (it blended over the input as it
    was, so the seam came back); pixels the mask leaves out stay exactly as they were."""
    half = np.full(photo.shape[:2], 0.5, np.float32)
    settings = DreamSettings.from_dict({**BASE, "seamless": True})
    masked = dream(photo, model, settings, mask=half)
    assert _seam_ratio(masked) <= 1.0
    assert np.allclose(masked, _run(model, photo, seamless=True, strength=0.5), atol=1e-5)
    none_at_the_top = half.copy()
    none_at_the_top[:8] = 0.0
    out = dream(photo, model, settings, mask=none_at_the_top)
    assert np.array_equal(out[:8], photo[:8])


def test_from_noise_ignores_the_pixels_and_is_not_high_frequency_mush(model, photo) -> None:
    a = _run(model, photo, from_noise=True)
    b = _run(model, np.zeros_like(photo), from_noise=True)
    assert np.allclose(a, b, atol=1e-5) and a.shape == photo.shape  # up to the blend's rounding
    assert a.std() > 0.02  # it made something
    # pixel-space ascent from white noise keeps the noise's pixel-to-pixel jumps
    noise = np.random.default_rng(0).random(photo.shape).astype(np.float32)
    pixel_space = _run(model, noise)
    assert _tv(a) < _tv(pixel_space) / 3


def test_from_noise_on_a_transparent_layer_is_opaque_where_it_is_dreamed(model, photo) -> None:
    """A new, empty layer is where a picture from noise goes: its alpha used to be kept,
    so the dream was invisible."""
    clear = np.concatenate([photo, np.zeros_like(photo[..., :1])], -1)
    whole = dream(clear, model, DreamSettings.from_dict({**BASE, "from_noise": True}))
    assert np.all(whole[..., 3] == 1.0)
    mask = np.zeros(photo.shape[:2], np.float32)
    mask[:, 32:] = 0.5  # half the layer, half way in
    half = dream(clear, model, DreamSettings.from_dict({**BASE, "from_noise": True}), mask)
    assert np.all(half[:, :32] == clear[:, :32]) and np.all(half[:, 32:, 3] == 0.5)
    plain = dream(clear, model, DreamSettings.from_dict(BASE))  # a dream of the image
    assert np.all(plain[..., 3] == 0.0)  # keeps its alpha, bit for bit


def test_tv_smoothing_and_laplacian_give_smoother_dreams(model, photo) -> None:
    plain = _run(model, photo)
    for option in ({"smooth": 2.0}, {"norm": "laplacian"}):
        out = _run(model, photo, **option)
        assert _tv(out - photo) < _tv(plain - photo), option  # smoother dreamed detail
    assert _tv(_run(model, photo, tv=5.0)) < _tv(plain) * 0.8  # a flatter picture


def test_l2_penalty_pulls_towards_grey(model, photo) -> None:
    plain, tame = _run(model, photo), _run(model, photo, l2=3.0)
    assert np.abs(tame - 0.5).mean() < np.abs(plain - 0.5).mean()


def test_std_norm_and_transform_change_the_dream(model, photo) -> None:
    plain = _run(model, photo)
    for option in ({"norm": "std"}, {"transform": True}):
        out = _run(model, photo, **option)
        assert np.abs(out - plain).mean() > 0.002, option
        assert np.abs(out - photo).mean() > 0.005, option


def test_class_option_raises_that_class_logit(model, photo) -> None:
    def logits(img: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(img).permute(2, 0, 1)[None]
        with torch.no_grad():
            return model(x, ["logits"])["logits"][0]

    # no jitter: a random network's logits at this size shift with the image a lot
    options = {"octaves": 1, "iterations": 16, "jitter": 0}
    rise = logits(_run(model, photo, classes="tabby cat", **options)) - logits(photo)
    assert rise[281] > 0.2
    assert (rise > rise[281]).sum() <= 2  # the class that rose (nearly) most of 1000
    plain_rise = logits(_run(model, photo, **options)) - logits(photo)
    assert rise[281] > plain_rise[281]


def test_neuron_rank_and_guide_options_dream(model, photo, tmp_path: Path) -> None:
    stripes = np.zeros((32, 32, 3), np.float32)
    stripes[:, ::4, 0] = 1.0
    write_image(tmp_path / "guide.png", stripes)
    plain = _run(model, photo)
    live = _live_channel(model, photo, "inception3a", 0.5, 0.5)
    for option in ({"neuron": f"inception3a:{live}@0.5,0.5"}, {"rank": 8}, {"rank": -8},
                   {"guide": str(tmp_path / "guide.png")}):
        out = _run(model, photo, **option)
        assert np.abs(out - photo).mean() > 0.002, option
        assert np.abs(out - plain).mean() > 0.002, option


def _live_channel(model, photo: np.ndarray, layer: str, fy: float, fx: float) -> int:
    """A channel active at that spot (a random network has dead units)."""
    with torch.no_grad():
        act = model(torch.from_numpy(photo).permute(2, 0, 1)[None], [layer])[layer][0]
    return int(act[:, round(fy * (act.shape[1] - 1)), round(fx * (act.shape[2] - 1))].argmax())


def test_guide_images_of_any_layout_and_unreadable_ones(model, photo, tmp_path: Path) -> None:
    gray_alpha = np.zeros((20, 30, 2), np.float32)
    gray_alpha[:, ::3, 0] = 1.0
    gray_alpha[..., 1] = 1.0
    write_image(tmp_path / "ga.png", gray_alpha)
    out = _run(model, photo, guide=str(tmp_path / "ga.png"))
    assert np.abs(out - photo).mean() > 0.002
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(SettingsError, match="cannot read guide image"):
        _run(model, photo, guide=str(tmp_path / "notes.png"))


def test_the_weakest_channel_is_one_that_responds(model, photo) -> None:
    """--rank -1 picked a channel that is zero everywhere after its ReLU: no gradient, and
    the image came back unchanged."""
    assert np.abs(_run(model, photo, rank=-1, layer="inception4c") - photo).mean() > 0.001


@pytest.mark.parametrize("size", [(20, 20), (3, 5), (200, 12)])
def test_smoothing_works_on_images_smaller_than_its_blur(model, photo,
                                                         size: tuple[int, int]) -> None:
    """--smooth 7 blurs 21 px each way: on a small or thin image (or selection) that used
    to end in a traceback ('Padding value causes wrapping around more than once')."""
    w, h = size
    small = np.ascontiguousarray(np.resize(photo, (h, w, 3)))
    out = _run(model, small, smooth=7.0, octaves=1, iterations=2)
    assert out.shape == small.shape and np.isfinite(out).all()
    assert np.abs(out - small).mean() > 0


@pytest.mark.parametrize("size", [(1, 1), (600, 8), (5, 300)])
def test_a_guide_too_small_or_thin_for_the_layer_still_guides(model, photo, tmp_path: Path,
                                                              size: tuple[int, int]) -> None:
    """A banner or a sliver picked as the guide is grown with mirrored copies of itself, as
    a small image to dream is (it used to end the dream in a traceback: 'Output size is
    too small')."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    guide = np.stack([(xx % 7) / 7, (yy % 5) / 5, ((xx + yy) % 3) / 3], -1).astype(np.float32)
    write_image(tmp_path / "guide.png", guide)
    out = _run(model, photo, guide=str(tmp_path / "guide.png"), layer="inception4c")
    assert np.isfinite(out).all() and np.abs(out - photo).mean() > 0.002


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_a_big_guide_is_read_reduced_to_about_what_the_layer_sees(model, tmp_path: Path,
                                                                 suffix: str) -> None:
    """A guide much larger than the 224 px the layer sees (a panorama, a camera's photo) is
    read reduced, a JPEG decoded reduced, so it costs neither its full size in floats nor
    on the device, and its features come out as from the whole image read in full."""
    from deepdream.engine.looks import guide_vectors
    from deepdream.engine.objectives_extra import GUIDE_MAX_SIDE
    from deepdream.imageio import read_image

    yy, xx = np.mgrid[0:1500, 0:2100] / 1500.0
    big = np.stack([0.5 + 0.4 * np.sin(30 * xx), 0.5 + 0.4 * np.cos(23 * yy),
                    0.5 + 0.3 * np.sin(17 * (xx + yy))], -1).astype(np.float32)
    path = tmp_path / f"guide.{suffix}"
    write_image(path, big)
    reduced, _ = read_image(path, max_side=GUIDE_MAX_SIDE)
    assert 2 * GUIDE_MAX_SIDE <= max(reduced.shape[:2]) < 2100 // 2, reduced.shape
    assert reduced.shape[1] / reduced.shape[0] == pytest.approx(2100 / 1500, rel=0.01)
    got = guide_vectors(model, str(path), "inception3a")
    whole = guide_vectors(model, str(path), "inception3a", lambda p: read_image(p)[0])
    assert got.shape == whole.shape
    assert float((got - whole).norm() / whole.norm()) < 0.05


def test_neuron_changes_pixels_near_its_position_most(model, photo) -> None:
    channel = _live_channel(model, photo, "inception3a", 0.1, 0.1)
    out = _run(model, photo, neuron=f"inception3a:{channel}@0.1,0.1", octaves=1, jitter=0)
    change = np.abs(out - photo).sum(axis=2)
    assert change[:24, :24].mean() > 3 * change[40:, 40:].mean()


def test_a_neuron_stays_at_its_corner_when_the_steps_roll_the_picture(model, photo) -> None:
    """Each step rolls the picture by up to the jitter; a neuron near a corner used to be
    read where the roll had brought the opposite edges, and dreamed all four corners
    (near/far 2.2 then, 4.8 now; the rest is the layer's field of view reaching across the
    rolled picture's seam, as any step near an edge does)."""
    channel = _live_channel(model, photo, "inception3a", 0.95, 0.95)
    out = _run(model, photo, neuron=f"inception3a:{channel}@0.95,0.95", octaves=1,
               jitter=24, iterations=6)
    change = np.abs(out - photo).sum(axis=2)
    near, far = change[40:, 40:].mean(), change[:24, :24].mean()
    assert near > 3.5 * far, (near, far)


def test_preset_applies_and_explicit_options_override(model, photo) -> None:
    s = DreamSettings.from_dict({"preset": "subtle", "model": "tiny", "layer": "inception3a"})
    assert s.strength == 0.5 and s.norm == "laplacian" and s.layers == (("inception3a", 1.0),)
    out = dream(photo, model, DreamSettings.from_dict(
        {"preset": "subtle", "model": "tiny", "layer": "inception3a", "iterations": 2}))
    assert 0.001 < np.abs(out - photo).mean()


@pytest.mark.parametrize("settings, match", [
    ({"norm": "fancy"}, "norm must be one of mean, std, laplacian"),
    ({"smooth": 11}, "smooth must be between 0 and 10"),
    ({"tv": -1}, "tv must be between"),
    ({"l2": "lots"}, "l2 must be a number"),
    ({"transform": "maybe"}, "transform must be true or false"),
    ({"from_noise": 2}, "from_noise must be true or false"),
    ({"rank": 5, "channels": "1,2"}, "either channels or rank"),
    ({"rank": 2000}, "rank must be between"),
    ({"neuron": "inception3a:x"}, "neuron must look like"),
    ({"neuron": "3@1.5,0.5"}, "fractions"),
    ({"preset": "dreamy"}, "unknown preset 'dreamy'; choose one of classic"),
])
def test_bad_values_are_one_line_settings_errors(settings, match) -> None:
    with pytest.raises(SettingsError, match=match) as info:
        DreamSettings.from_dict({**BASE, **settings})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("settings, match", [
    ({"classes": "tabbby"}, "unknown class 'tabbby'; did you mean 'tabby'"),
    ({"classes": "cat"}, "ambiguous"),
    ({"neuron": "inception3a:256"}, "out of range for 'inception3a', which has 256"),
    ({"neuron": "inception9:1"}, "has no layer 'inception9'"),
    ({"rank": 300}, "has only 256 channels"),
    ({"guide": "/nonexistent/guide.png"}, "guide image /nonexistent/guide.png does not exist"),
])
def test_bad_objectives_fail_before_any_work_and_leave_the_image(model, photo, settings,
                                                                 match) -> None:
    before = photo.copy()
    with pytest.raises(SettingsError, match=match):
        _run(model, photo, **settings)
    assert np.array_equal(photo, before)


def test_class_on_trunk_only_weights_is_a_clear_error(tmp_path: Path, photo) -> None:
    # a neural-dream style conversion: aux heads, no final classifier
    torch.save(bvlc_googlenet(classifier=False).state_dict(), tmp_path / "bvlc.pth")
    (tmp_path / "m.toml").write_text(
        '[models.classic]\narch = "bvlc_googlenet"\nweights = "bvlc.pth"\n')
    caffe = registry.load("classic", "cpu", models_file=tmp_path / "m.toml")
    assert caffe.spec.preprocess == "caffe" and not caffe.has_logits
    settings = DreamSettings.from_dict({"model": "classic", "layer": "inception_3b",
                                        "octaves": 1, "iterations": 1, "classes": "tabby"})
    with pytest.raises(SettingsError, match=r"no classifier \(trunk-only weights, or one"):
        dream(photo, caffe, settings)
    # the same weights dream fine with a layer objective
    out = dream(photo, caffe, DreamSettings.from_dict({**settings.to_dict(), "classes": ""}))
    assert np.abs(out - photo).mean() > 0.001


def test_a_neuron_is_dreamed_untiled_so_it_stays_one_spot(model, photo) -> None:
    channel = _live_channel(model, photo, "inception3a", 0.5, 0.5)
    # tiles of 32 px would each grow the neuron at their own centre
    out = _run(model, photo, neuron=f"inception3a:{channel}", octaves=1, jitter=0, tile=32)
    change = np.abs(out - photo).sum(axis=2)
    assert change[20:44, 20:44].mean() > 0.05
    assert change[:12, :12].mean() < 0.01  # a corner tile's own "centre neuron" would show


def test_places_classes_are_numbers_and_its_caffe_input_is_the_default(tmp_path: Path,
                                                                       photo) -> None:
    (tmp_path / "m.toml").write_text(
        '[models.places]\narch = "places_googlenet"\nweights = "random"\n')
    places = registry.load("places", "cpu", models_file=tmp_path / "m.toml")
    assert places.num_classes == 365 and places.spec.preprocess == "caffe"
    base = {"model": "places", "layer": "inception_3a", "octaves": 1, "iterations": 1}
    with pytest.raises(SettingsError, match="365 classes without names here: give class "
                       "numbers like #12, not 'abbey'"):
        dream(photo, places, DreamSettings.from_dict({**base, "classes": "abbey"}))
    out = dream(photo, places, DreamSettings.from_dict({**base, "classes": "#12"}))
    assert np.abs(out - photo).mean() > 0.0005


def test_the_callers_image_is_never_changed(model, photo) -> None:
    before = photo.copy()
    _run(model, photo, seamless=True, keep_colors=True, tv=1.0, l2=1.0, transform=True,
         smooth=1.0, norm="laplacian", iterations=2)
    assert np.array_equal(photo, before)
