"""`deepdream dream` and `zoom` with the files a user has: outputs that are symbolic links,
hard links or write-protected, deep TIFFs from other programs, masks painted on a
transparent layer; `dream --daemon --models-file`; what --help promises."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from deepdream import tiff
from deepdream.cli import main
from deepdream.imageio import read_image, write_image

from tests.support.daemon import REPO

pytestmark = pytest.mark.usefixtures("isolated_config")
QUICK = ["--model", "tiny", "--layer", "inception3b", "--iterations", "2", "--octaves", "1"]


@pytest.fixture
def run(tiny_models_file: Path, capsys: pytest.CaptureFixture[str]):
    def run(*argv: str, models_file: Path | None = None) -> tuple[int, str, str]:
        code = main([*argv, "--models-file", str(models_file or tiny_models_file)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def dreams(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray | None]:
    """Record dreams (their masks) instead of running them, and load no model: each dream
    returns its input, a little brighter."""
    import deepdream.engine
    from deepdream.models import registry

    started: list[np.ndarray | None] = []

    def here(image: np.ndarray, *_: object, mask: np.ndarray | None = None,
             **__: object) -> np.ndarray:
        started.append(mask)
        return np.clip(image + 0.1, 0, 1)

    monkeypatch.setattr(deepdream.engine, "dream", here)
    monkeypatch.setattr(registry, "load", lambda *_, **__: object())
    return started


@pytest.fixture
def photo(tmp_path: Path, make_image) -> Path:
    write_image(tmp_path / "in.png", make_image(40, 48))
    return tmp_path / "in.png"


# --- outputs --------------------------------------------------------------------------------


def test_dream_writes_through_a_symbolic_link(tmp_path: Path, run, photo: Path,
                                              dreams: list) -> None:
    (tmp_path / "albums").mkdir()
    target = tmp_path / "albums" / "dream.png"
    target.write_bytes(b"last week's dream")
    link = tmp_path / "latest.png"
    link.symlink_to(target)
    code, _, err = run("dream", str(photo), "-o", str(link), "--quiet", *QUICK)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert read_image(target)[0].shape == (40, 48, 3)
    assert not any(p.name.startswith(".deepdream-") for p in tmp_path.rglob("*"))


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("through_link", [False, True])
def test_dream_refuses_a_write_protected_output_before_dreaming(
        tmp_path: Path, run, photo: Path, dreams: list, through_link: bool) -> None:
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"precious")
    kept.chmod(0o444)
    output = kept
    if through_link:
        output = tmp_path / "link.png"
        output.symlink_to(kept)
    code, _, err = run("dream", str(photo), "-o", str(output), "--quiet", *QUICK)
    assert code == 2 and err.count("\n") == 1 and "write-protected" in err
    assert err.startswith(f"deepdream: error: {output}")
    assert kept.read_bytes() == b"precious" and dreams == []
    assert not output.is_file() or output.is_symlink() == through_link


@pytest.mark.skipif(os.name == "nt", reason="POSIX hard links")
def test_dream_over_a_hard_linked_file_changes_every_name(tmp_path: Path, run, photo: Path,
                                                          dreams: list) -> None:
    out, other = tmp_path / "out.png", tmp_path / "other-name.png"
    out.write_bytes(b"old")
    os.link(out, other)
    code, _, err = run("dream", str(photo), "-o", str(out), "--quiet", *QUICK)
    assert code == 0, err
    assert os.path.samefile(out, other) and read_image(other)[0].shape == (40, 48, 3)


def test_zoom_writes_frames_through_links_and_refuses_protected_ones(
        tmp_path: Path, run, photo: Path, dreams: list) -> None:
    (tmp_path / "real").mkdir()
    frames = tmp_path / "frames"
    frames.symlink_to(tmp_path / "real")  # a link to the frames' folder
    code, _, err = run("zoom", str(photo), "-o", str(frames), "--frames", "2", "--quiet",
                       *QUICK)
    assert code == 0, err
    assert frames.is_symlink() and sorted(p.name for p in (tmp_path / "real").iterdir()) == [
        "frame_00000.png", "frame_00001.png"]
    gone = tmp_path / "gone"
    gone.symlink_to(tmp_path / "nowhere")
    code, _, err = run("zoom", str(photo), "-o", str(gone), "--frames", "2", *QUICK)
    assert code == 2 and err.count("\n") == 1 and "which does not exist" in err
    if os.name != "nt":
        protected = tmp_path / "protected"
        protected.mkdir()
        (protected / "frame_00001.png").write_bytes(b"kept")  # after a gap: not a done frame
        (protected / "frame_00001.png").chmod(0o444)
        started = len(dreams)
        code, _, err = run("zoom", str(photo), "-o", str(protected), "--frames", "3", "--quiet",
                           *QUICK)
        # refused before any dream: frame 1 would have to be dreamed again from a new frame 0
        assert code == 2 and err.count("\n") == 1 and "missing but 1 later" in err
        assert (protected / "frame_00001.png").read_bytes() == b"kept"
        assert len(dreams) == started


# --- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "bits"), [
    (np.linspace(0, 255, 40 * 48 * 3).reshape(40, 48, 3).astype(np.float32), 16),
    (np.linspace(0, 65535, 40 * 48).reshape(40, 48, 1).astype(np.uint32), 16),
    (np.linspace(0, 255, 40 * 48).reshape(40, 48, 1).astype(np.int32), 8),
])
def test_a_deep_tiff_dreams_into_a_picture_not_a_white_or_black_one(
        tmp_path: Path, run, dreams: list, values: np.ndarray, bits: int) -> None:
    source = tmp_path / "scan.tif"
    source.write_bytes(tiff.encode(values))
    code, _, err = run("dream", str(source), "-o", str(tmp_path / "out.tif"), *QUICK)
    assert code == 0, err
    assert err.startswith("deepdream: note: ") and "read as 0-" in err
    out, info = read_image(tmp_path / "out.tif")
    assert info.bits == bits and out.shape == values.shape
    assert 0.4 < out.mean() < 0.7 and out.std() > 0.2  # the ramp (a little brighter)
    code, _, err = run("dream", str(source), "-o", str(tmp_path / "q.tif"), "--quiet", *QUICK)
    assert code == 0 and err == ""  # --quiet: no note either


def _gray_16_bit_tiff(pages: list[np.ndarray]) -> bytes:
    """A little-endian TIFF of 16-bit gray pages, one uncompressed strip each, their IFDs
    chained: what a scanner or ImageJ saves as a stack (``tiff.encode`` writes one page)."""
    out = bytearray(b"II*\0\0\0\0\0")
    link = 4  # where the next IFD's offset goes
    for page in pages:
        (h, w), data_at = page.shape, len(out)
        out += page.astype("<u2").tobytes()
        struct.pack_into("<I", out, link, len(out))
        entries = [(256, 4, w), (257, 4, h), (258, 3, 16), (259, 3, 1), (262, 3, 1),
                   (273, 4, data_at), (277, 3, 1), (278, 4, h), (279, 4, 2 * h * w)]
        out += struct.pack("<H", len(entries))
        for code, kind, value in entries:  # (a SHORT packed as "<I" is left-justified)
            out += struct.pack("<HHII", code, kind, 1, value)
        link = len(out)
        out += b"\0\0\0\0"
    return bytes(out)


def test_a_multi_page_deep_tiff_dreams_its_first_page_with_a_note(
        tmp_path: Path, run, dreams: list) -> None:
    first = np.linspace(0, 40000, 40 * 48).reshape(40, 48).astype(np.uint16)
    source = tmp_path / "stack.tif"
    source.write_bytes(_gray_16_bit_tiff([first, np.full_like(first, 65535)]))
    code, _, err = run("dream", str(source), "-o", str(tmp_path / "out.tif"), *QUICK)
    assert code == 0, err
    assert err == f"deepdream: note: {source}: only the first of its 2 frames is used\n"
    out, info = read_image(tmp_path / "out.tif")
    assert info.bits == 16 and info.note is None  # the dream is one page
    assert np.allclose(out[..., 0], first / 65535 + 0.1, atol=1 / 65535)  # (a little brighter)


def test_a_mask_painted_on_a_transparent_layer_leaves_the_clear_part(
        tmp_path: Path, run, photo: Path, dreams: list) -> None:
    mask = np.ones((40, 48, 4), np.float32)  # white everywhere...
    mask[:20, :, 3] = 0.0  # ...but the top half is transparent
    write_image(tmp_path / "mask.png", mask)
    code, _, err = run("dream", str(photo), "-o", str(tmp_path / "out.png"), "--mask",
                       str(tmp_path / "mask.png"), "--quiet", *QUICK)
    assert code == 0, err
    assert np.array_equal(dreams[0], np.repeat([0.0, 1.0], 20)[:, None].repeat(48, axis=1))


# --- dream --daemon --models-file ---------------------------------------------------------


class _FakeClient:
    """A daemon's client that answers a catalog and dreams by returning the pixels."""

    catalog_models: dict[str, Any] = {}
    dreamed: list[dict[str, Any]] = []

    def __init__(self, endpoint: str | None = None, **_: object) -> None:
        self.endpoint = endpoint or "tcp://127.0.0.1:5599"

    def __enter__(self) -> _FakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def hello(self) -> dict[str, Any]:
        return {"version": 1}

    def catalog(self) -> dict[str, Any]:
        return {"models": self.catalog_models, "presets": {}}

    def dream(self, settings: dict[str, Any], pixels: bytes, *_: object, **__: object) -> bytes:
        self.dreamed.append(settings)
        return pixels


@pytest.fixture
def fake_daemon(monkeypatch: pytest.MonkeyPatch) -> type[_FakeClient]:
    import deepdream_protocol.client

    monkeypatch.setattr(deepdream_protocol.client, "Client", _FakeClient)
    monkeypatch.setattr(_FakeClient, "dreamed", [])
    return _FakeClient


@pytest.mark.parametrize(("daemon_has", "ok"), [
    ("nothing", False), ("another file", False), ("the same file", True),
])
def test_daemon_models_file_is_checked_not_ignored(
        tmp_path: Path, run, photo: Path, tiny_models_file: Path, fake_daemon,
        monkeypatch: pytest.MonkeyPatch, daemon_has: str, ok: bool) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(tiny_models_file.read_text())
    models = {"googlenet": {"source": "built-in"}}
    if daemon_has == "another file":
        models["tiny"] = {"source": str(tiny_models_file)}
    elif daemon_has == "the same file":
        models["tiny"] = {"source": str(mine)}
    monkeypatch.setattr(fake_daemon, "catalog_models", models)
    output = tmp_path / "out.png"
    code, _, err = run("dream", str(photo), "-o", str(output), "--quiet", *QUICK, "--daemon",
                       "tcp://127.0.0.1:9", models_file=mine)
    if ok:
        assert code == 0, err
        assert fake_daemon.dreamed and output.is_file()
    else:
        assert code == 2 and err.count("\n") == 1 and "--models-file" in err
        assert "deepdream serve --models-file" in err and "tcp://127.0.0.1:9" in err
        assert fake_daemon.dreamed == [] and not output.exists()


def test_daemon_models_file_is_read_once(tmp_path: Path, run, photo: Path,
                                        tiny_models_file: Path, fake_daemon,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from deepdream.models import registry

    reads, available = [], registry.available
    monkeypatch.setattr(registry, "available", lambda *a: reads.append(a) or available(*a))
    monkeypatch.setattr(fake_daemon, "catalog_models",
                        {"tiny": {"source": str(tiny_models_file)}})
    code, _, err = run("dream", str(photo), "-o", str(tmp_path / "out.png"), "--quiet",
                       *QUICK, "--daemon", "tcp://127.0.0.1:9")
    assert code == 0, err
    assert len(reads) == 1 and fake_daemon.dreamed


def test_daemon_models_file_that_is_missing_fails_before_any_work(
        tmp_path: Path, run, photo: Path, fake_daemon) -> None:
    code, _, err = run("dream", str(photo), "-o", str(tmp_path / "out.png"), "--quiet",
                       *QUICK, "--daemon", "tcp://127.0.0.1:9",
                       models_file=tmp_path / "none.toml")
    assert code == 2 and err.count("\n") == 1 and "none.toml" in err
    assert fake_daemon.dreamed == []


def test_daemon_dreams_a_model_the_models_file_does_not_declare(
        tmp_path: Path, run, photo: Path, fake_daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    # --models-file adds models; a built-in one is the daemon's to give, as here it is ours
    monkeypatch.setattr(fake_daemon, "catalog_models", {"googlenet": {"source": "built-in"}})
    code, _, err = run("dream", str(photo), "-o", str(tmp_path / "out.png"), "--quiet",
                       "--model", "googlenet", "--daemon", "tcp://127.0.0.1:9")
    assert code == 0, err
    assert fake_daemon.dreamed[0]["model"] == "googlenet"


# --- help -----------------------------------------------------------------------------------


def test_help_shows_whole_numbers_and_no_daemon_talk_for_zoom(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dream", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 to 2147483647" in text and "e+09" not in text
    assert "--neuron [LAYER:]CHANNEL[@X,Y] dream one channel" in text
    with pytest.raises(SystemExit):
        main(["zoom", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--daemon" not in text


# --- what the dream's file keeps of the photo's --------------------------------------------


def _photo_with_metadata(path: Path) -> None:
    """A camera's JPEG: 300 dpi, EXIF with a camera, a date and orientation 6 (turned)."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Canon", "EOS Test", 6  # Make, Model, Orient.
    exif[0x0100], exif[0x0101] = 4032, 3024  # a phone's camera size (a TIFF must not take it)
    exif.get_ifd(0x8769)[0x9003] = "2026:11:27 09:00:00"  # DateTimeOriginal
    Image.new("RGB", (48, 40), (120, 90, 60)).save(path, dpi=(300, 300), exif=exif,
                                                    quality=95)


@pytest.mark.parametrize("out_name", ["out.jpg", "out.png", "out.tif", "out16.png",
                                      "out16.tif"])
def test_the_dream_keeps_the_photos_resolution_and_exif_upright(
        tmp_path: Path, run, dreams: list, out_name: str) -> None:
    """Both used to be dropped; the orientation says upright (the pixels were turned when
    read: a viewer must not turn them again).  (A 16-bit TIFF kept the resolution only.)"""
    from PIL import Image

    _photo_with_metadata(tmp_path / "photo.jpg")
    source = tmp_path / "photo.jpg"
    if "16" in out_name:  # a 16-bit photo: the PNG and TIFF writers of their own
        image, _ = read_image(source)
        source = tmp_path / out_name.replace("out", "photo")
        write_image(source, image, bits=16, dpi=(300, 300),
                    exif=Image.open(tmp_path / "photo.jpg").info["exif"])
        assert read_image(source)[1].bits == 16
        assert read_image(source)[1].dpi == (300, 300)
    code, _, err = run("dream", str(source), "-o", str(tmp_path / out_name), "--quiet",
                       *QUICK)
    assert code == 0, err
    with Image.open(tmp_path / out_name) as out:
        out.load()  # (a TIFF that took the camera's size would not load)
        assert out.size == (40, 48)  # (turned upright)
        assert tuple(round(v) for v in out.info["dpi"]) == (300, 300)
        exif = out.getexif()
        assert (exif[0x010F], exif[0x0110], exif.get(0x0112, 1)) == ("Canon", "EOS Test", 1)
        assert exif.get_ifd(0x8769)[0x9003] == "2026:11:27 09:00:00"


@pytest.mark.parametrize("bits", [8, 16])
def test_a_tiffs_exif_comes_along_without_its_storage_tags(tmp_path: Path, run, dreams: list,
                                                           bits: int) -> None:
    """A camera's or a raw converter's TIFF keeps its camera, date and place in its own
    tags; the dream's JPEG gets them (it used to get none), and not the TIFF's strips.
    (16 bits: the deep-TIFF reader reads the pixels, Pillow the tags.)"""
    import numpy as np
    from PIL import Image

    _photo_with_metadata(tmp_path / "photo.jpg")
    image, _ = read_image(tmp_path / "photo.jpg")
    exif = Image.open(tmp_path / "photo.jpg").getexif()
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 0.0)})  # GPS latitude
    del exif[0x0100], exif[0x0101]  # (Pillow would write the TIFF at the camera's size)
    if bits == 8:
        tif = Image.fromarray((image * 255).round().astype(np.uint8))
    else:  # a 16-bit gray scan
        tif = Image.fromarray((image[..., 1] * 65535).round().astype(np.uint16))
    source = tmp_path / "photo.tif"
    tif.save(source, exif=exif.tobytes(), dpi=(300, 300))
    assert read_image(source)[1].bits == bits
    code, _, err = run("dream", str(source), "-o", str(tmp_path / "out.jpg"), "--quiet",
                       *QUICK)
    assert code == 0, err
    with Image.open(tmp_path / "out.jpg") as out:
        got = out.getexif()
    assert (got[0x010F], got[0x0110]) == ("Canon", "EOS Test")
    assert got.get_ifd(0x8769)[0x9003] == "2026:11:27 09:00:00"
    assert got.get_ifd(0x8825)[1] == "N"
    assert not {0x0100, 0x0101, 0x0111, 0x0117} & set(got)  # width, height, strips


def _dreaming(models: Path, source: Path, out: Path,
              **popen: Any) -> subprocess.Popen[str]:
    """``deepdream dream SOURCE -o OUT`` (nothing to dream: the time goes into the save) as
    a process of its own."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "daemon"),
                                                        str(REPO / "shared")])}
    return subprocess.Popen(
        [sys.executable, "-m", "deepdream", "dream", str(source), "-o", str(out),
         "--iterations", "0", "--models-file", str(models), "--model", "tiny"],
        env=env, stderr=subprocess.PIPE, text=True, **popen)


def _when_saving(proc: subprocess.Popen[str], folder: Path) -> bool:
    """Wait until ``proc`` writes its output's temporary file (True), or has ended."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if list(folder.glob(".deepdream-*.png")):
            return True
        time.sleep(0.002)
    return False


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_a_run_terminated_while_saving_keeps_the_old_file_and_leaves_nothing(
        tmp_path: Path, tiny_models_file: Path) -> None:
    """SIGTERM (a closed terminal, `timeout`) ended the process where it stood: the old
    output was kept, but the half-written temporary file beside it stayed for good."""
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(source, np.random.default_rng(0).random((1500, 1500, 3), np.float32), bits=16)
    for _ in range(3):  # (a loaded machine may only see the ~0.4-s save once it is done)
        out.write_bytes(b"the old picture")
        proc = _dreaming(tiny_models_file, source, out)
        saving = _when_saving(proc, tmp_path)
        proc.terminate()
        _, err = proc.communicate(timeout=60)
        assert saving, err
        assert (proc.returncode, err) == (128 + signal.SIGTERM, "deepdream: terminated\n")
        assert not list(tmp_path.glob(".deepdream-*"))  # nothing half-written left beside it
        if out.read_bytes() == b"the old picture":
            return  # terminated in the save, before the new file took the name
    pytest.fail("three times the save was over before SIGTERM came")


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_a_run_under_nohup_outlives_its_terminal(tmp_path: Path, tiny_models_file: Path) -> None:
    """SIGHUP ignored (nohup) stays ignored: the run goes on and saves."""
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(source, np.random.default_rng(0).random((1500, 1500, 3), np.float32), bits=16)
    proc = _dreaming(tiny_models_file, source, out,
                     preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert _when_saving(proc, tmp_path)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (0, "")
    assert read_image(out)[0].shape == (1500, 1500, 3)
