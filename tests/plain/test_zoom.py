"""The zoom animation: numbered frames, each dreamed from the zoomed previous one; resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from deepdream.engine import DreamSettings, dream
from deepdream.imageio import read_image
from deepdream.models import registry
from deepdream.zoom import ZoomError, frames_done, run_zoom, zoom_rotate

from tests.support import TINY_MODELS

TINY = TINY_MODELS


@pytest.fixture(scope="module")
def tiny_dream():
    model = registry.load("tiny", "cpu", models_file=TINY)
    base = DreamSettings.from_dict({"model": "tiny", "layer": "inception3a", "octaves": 1,
                                    "iterations": 2, "jitter": 4})

    def dream_frame(image: np.ndarray, index: int) -> np.ndarray:
        settings = DreamSettings.from_dict({**base.to_dict(), "seed": index})
        return dream(image, model, settings)

    return dream_frame


def _photo(size: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    return np.stack([xx, yy, 0.5 + 0.3 * np.sin(8 * xx)], -1).astype(np.float32)


def test_zoom_rotate_enlarges_about_the_centre_and_turns() -> None:
    img = np.zeros((33, 33, 1), np.float32)
    img[16, 20:24] = 1.0  # a short bar right of the centre
    bigger = zoom_rotate(img, 1.5, 0.0)
    assert bigger[16, 16:].sum() > img[16, 16:].sum()  # the bar grew away from the centre
    assert bigger[16, 22:].sum() > 0 and bigger.shape == img.shape
    turned = zoom_rotate(img, 1.0, 90.0)
    # counter-clockwise on screen: right of the centre goes to above it
    assert turned[:16, 16].sum() > 2 and turned[16:, 16].sum() < 0.5


def test_frames_are_written_in_order_and_each_one_dreams_on_the_last(tmp_path: Path,
                                                                      tiny_dream) -> None:
    img = _photo()
    written = run_zoom(img, tmp_path / "frames", 3, 1.1, 2.0, tiny_dream)
    assert written == 3
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    f0 = read_image(tmp_path / "frames" / "frame_00000.png")[0]
    f1 = read_image(tmp_path / "frames" / "frame_00001.png")[0]
    assert f0.shape == img.shape and np.abs(f0 - img).max() > 0.02  # dreamed
    # frame 1 is the dream of frame 0 zoomed: closer to that than to frame 0 itself
    zoomed = zoom_rotate(f0, 1.1, 2.0)
    assert np.abs(f1 - zoomed).mean() < np.abs(f1 - f0).mean()


def test_an_interrupted_run_resumes_with_the_same_frames(tmp_path: Path, tiny_dream) -> None:
    img = _photo()
    run_zoom(img, tmp_path / "full", 3, 1.05, 0.0, tiny_dream)

    calls: list[int] = []

    def stops_after_two(image: np.ndarray, index: int) -> np.ndarray:
        if index == 2:
            raise KeyboardInterrupt
        calls.append(index)
        return tiny_dream(image, index)

    with pytest.raises(KeyboardInterrupt):
        run_zoom(img, tmp_path / "part", 3, 1.05, 0.0, stops_after_two)
    assert frames_done(tmp_path / "part", 3) == 2
    skipped: list[int] = []
    written = run_zoom(img, tmp_path / "part", 3, 1.05, 0.0, tiny_dream,
                       on_frame=lambda i, _p, was_skipped: skipped.append(i) if was_skipped else 0)
    assert written == 1 and skipped == [0, 1]
    for i in range(3):
        a = read_image(tmp_path / "full" / f"frame_{i:05d}.png")[0]
        b = read_image(tmp_path / "part" / f"frame_{i:05d}.png")[0]
        assert np.array_equal(a, b), i


def test_a_gap_in_the_frames_is_refused_not_dreamed_over(tmp_path: Path, tiny_dream) -> None:
    img = _photo()
    run_zoom(img, tmp_path, 4, 1.05, 0.0, tiny_dream)
    (tmp_path / "frame_00001.png").unlink()  # e.g. removed by hand to look at the rest
    kept = {i: (tmp_path / f"frame_{i:05d}.png").read_bytes() for i in (0, 2, 3)}
    with pytest.raises(ZoomError, match=r"frame_00001.png is missing but 2 later") as info:
        run_zoom(img, tmp_path, 4, 1.05, 0.0, tiny_dream)
    assert "\n" not in str(info.value)
    assert {i: (tmp_path / f"frame_{i:05d}.png").read_bytes() for i in (0, 2, 3)} == kept
    # a shorter run would leave frames 2 and 3 following a frame 1 they were not made from
    with pytest.raises(ZoomError, match="missing but 2 later"):
        run_zoom(img, tmp_path, 2, 1.05, 0.0, tiny_dream)
    (tmp_path / "frame_00002.png").unlink()
    (tmp_path / "frame_00003.png").unlink()
    assert run_zoom(img, tmp_path, 4, 1.05, 0.0, tiny_dream) == 3
    # frames past the ones asked for, after no gap, are simply not this run's business
    assert run_zoom(img, tmp_path, 2, 1.05, 0.0, tiny_dream) == 0


def test_bad_options_and_folders_are_one_line_errors(tmp_path: Path, tiny_dream) -> None:
    img = _photo(8)
    for frames, zoom, rotate, match in ((0, 1.04, 0, "frames"), (3, 0.1, 0, "zoom"),
                                        (3, float("nan"), 0, "zoom"), (3, 1.04, 400, "rotate")):
        with pytest.raises(ZoomError, match=match):
            run_zoom(img, tmp_path / "x", frames, zoom, rotate, tiny_dream)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ZoomError, match="not a folder"):
        run_zoom(img, tmp_path / "file", 1, 1.04, 0, tiny_dream)
    run_zoom(img, tmp_path / "small", 1, 1.04, 0, tiny_dream)
    with pytest.raises(ZoomError, match="does not match"):
        run_zoom(_photo(12), tmp_path / "small", 2, 1.04, 0, tiny_dream)


def test_a_folder_of_another_animation_is_refused_not_continued(tmp_path: Path,
                                                                 tiny_dream) -> None:
    img = _photo()
    settings = {"iterations": 2, "layers": [["inception3a", 1.0]]}
    run_zoom(img, tmp_path / "a", 1, 1.05, 0.0, tiny_dream, settings=settings)
    before = (tmp_path / "a" / "frame_00000.png").read_bytes()
    other_input = img[::-1].copy()  # the same size, other pixels
    for change, words in (
        ({"image": other_input}, "another input image"),
        ({"bits": 16}, "another bit depth"),
        ({"zoom": 1.1}, "another --zoom"),
        ({"settings": {**settings, "iterations": 3}}, "another dream settings (iterations)"),
    ):
        given = {"image": img, "zoom": 1.05, "bits": 8, "settings": settings, **change}
        with pytest.raises(ZoomError, match="does not match this run") as info:
            run_zoom(given["image"], tmp_path / "a", 2, given["zoom"], 0.0, tiny_dream,
                     bits=given["bits"], settings=given["settings"])
        assert words in str(info.value) and "new folder" in str(info.value)
        assert "\n" not in str(info.value)
    assert frames_done(tmp_path / "a", 3) == 1
    assert (tmp_path / "a" / "frame_00000.png").read_bytes() == before
    # the same animation continues
    assert run_zoom(img, tmp_path / "a", 2, 1.05, 0.0, tiny_dream, settings=settings) == 1


def test_every_frame_carries_the_photos_colour_profile(tmp_path: Path, tiny_dream) -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    run_zoom(_photo(), tmp_path / "frames", 2, 1.05, 0.0, tiny_dream, icc_profile=profile)
    for i in range(2):
        assert read_image(tmp_path / "frames" / f"frame_{i:05d}.png")[1].icc_profile == profile
