"""A guide image travels with its job: the daemon reads what the client sent, never a path on
its own disk (a daemon on another computer would not have the file, and its clients may not
probe its files)."""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from deepdream_protocol import messages as m
from deepdream_protocol.client import Client, DaemonError
from deepdream_protocol.pixels import PixelFormat
from PIL import Image

from tests.support.daemon import Daemon, daemon_process
from tests.support.jobs import H, W, host_pixels

pytestmark = pytest.mark.daemon

FMT = PixelFormat("RGB", "u8")
GUIDED = {"model": "tiny", "layer": "inception3b", "iterations": 2, "octaves": 1, "seed": 3}


def stripes(path: Path) -> Path:
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[::4] = (250, 40, 10)
    Image.fromarray(rgb).save(path)
    return path


def raw_dream(endpoint: str, settings: dict, pixels: bytes, *extra: bytes,
              **fields: object) -> tuple[dict, bytes | None]:
    """A hand-made submit (as an older client sends it); the job's last word and data."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger, sock.rcvtimeo = 0, 60_000
    sock.connect(endpoint)
    try:
        header = {"v": 1, "op": "submit", "job": "raw", "settings": settings,
                  "format": FMT.to_wire(), "width": W, "height": H, **fields}
        sock.send_multipart([msgpack.packb(header), pixels, *extra])
        while True:
            frames = sock.recv_multipart()
            reply = msgpack.unpackb(frames[0])
            if reply["op"] not in ("accepted", "progress"):
                return reply, frames[1] if len(frames) > 1 else None
    finally:
        sock.close()


def test_the_guide_file_goes_with_the_job_on_both_transports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guide = stripes(tmp_path / "guide.png")
    pixels = host_pixels(FMT)
    scratch = tmp_path / "daemon-tmp"
    scratch.mkdir()
    with daemon_process(env={"TMPDIR": str(scratch)}) as daemon:
        # the guide named by a path on the daemon's own disk (as clients sent it before)
        by_path, dreamed = raw_dream(daemon.endpoint, {**GUIDED, "guide": str(guide)}, pixels)
        assert by_path["op"] == "result", by_path
        plain, unguided = raw_dream(daemon.endpoint, GUIDED, pixels)
        assert unguided != dreamed  # the guide changes the dream
        # named relative to the artist's folder, which is not the daemon's: only a file
        # that travelled can be read
        monkeypatch.chdir(tmp_path)
        for transport in ("zmq", "stdlib"):
            with Client(daemon.endpoint, timeout=60, transport=transport) as c:
                assert c.dream({**GUIDED, "guide": "guide.png"}, pixels, W, H, FMT) == dreamed
        assert not list(scratch.glob("deepdream-guide-*"))  # its copy went with the job
        assert str(tmp_path) not in daemon.log_text()  # nor was the artist's path sent


def test_a_guide_that_cannot_be_read_is_one_line_naming_the_artists_file(
        daemon: Daemon, tmp_path: Path) -> None:
    pixels = host_pixels(FMT)
    with Client(daemon.endpoint, timeout=60) as c:
        with pytest.raises(DaemonError) as missing:  # refused before anything is sent
            c.dream({**GUIDED, "guide": str(tmp_path / "gone.png")}, pixels, W, H, FMT)
        assert missing.value.code == m.E_BAD_SETTINGS
        assert str(missing.value) == f"guide image {tmp_path / 'gone.png'} does not exist"
        (tmp_path / "notes.png").write_text("not a picture")
        with pytest.raises(DaemonError) as unreadable:  # read by the daemon, and refused
            c.dream({**GUIDED, "guide": str(tmp_path / "notes.png")}, pixels, W, H, FMT)
        message = str(unreadable.value)
        assert unreadable.value.code == m.E_BAD_SETTINGS
        assert message.startswith("cannot read guide image: notes.png: not an image file")
        assert "deepdream-guide-" not in message and "\n" not in message
        # and the daemon goes on dreaming
        assert len(c.dream(GUIDED, pixels, W, H, FMT)) == len(pixels)


@pytest.mark.parametrize("frames, fields, code, text", [
    ([], {"guide_file": "g.png"}, m.E_BAD_FRAME,
     "submit needs 2 data frame(s) (pixels, guide image), got 1"),
    ([b"x"], {"guide_file": ""}, m.E_BAD_FIELD, "'guide_file' is empty"),
    ([b"x"], {"guide_file": 7}, m.E_BAD_FIELD, "'guide_file' must be str"),
], ids=["frame-missing", "no-name", "name-not-text"])
def test_a_malformed_guide_frame_is_answered(daemon: Daemon, frames: list, fields: dict,
                                             code: str, text: str) -> None:
    reply, _ = raw_dream(daemon.endpoint, GUIDED, host_pixels(FMT), *frames, **fields)
    assert reply["op"] == "error" and reply["code"] == code
    assert text in reply["message"]

