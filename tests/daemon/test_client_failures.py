"""The client against a real daemon when things go wrong: an image over the daemon's pixel
limit is refused before it is sent, and a daemon restarted under a running job is noticed."""

from __future__ import annotations

import re

import pytest
from deepdream_protocol.client import Client, DaemonError
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import REPO, Daemon
from tests.support.jobs import MAX_PIXELS, host_pixels

pytestmark = pytest.mark.daemon

ZERO = {"model": "tiny", "iterations": 0}
FMT = PixelFormat("RGBA", "u8")
#: one row more than the shared test daemon's --max-pixels allows
BIG_W, BIG_H = 250, MAX_PIXELS // 250 + 1


def daemon_refusal(daemon: Daemon) -> str:
    """What the daemon itself answers to the oversized image (a client that never said hello
    does not know the limit, so the frame goes over and the daemon refuses it)."""
    with Client(daemon.endpoint, timeout=30) as c:
        with pytest.raises(DaemonError) as caught:
            c.dream(ZERO, host_pixels(FMT, BIG_W, BIG_H), BIG_W, BIG_H, FMT)
    assert caught.value.code == "too_large"
    return str(caught.value)


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_image_over_the_daemons_limit_is_refused_before_sending(daemon: Daemon,
                                                                transport: str) -> None:
    wording = daemon_refusal(daemon)
    logged = daemon.log_text().count(wording)
    with Client(daemon.endpoint, transport=transport, timeout=30) as c:
        assert c.hello()["max_pixels"] == MAX_PIXELS
        with pytest.raises(DaemonError) as caught:
            c.submit(ZERO, host_pixels(FMT, BIG_W, BIG_H), BIG_W, BIG_H, FMT)
        assert (caught.value.code, str(caught.value)) == ("too_large", wording)
        # the client still works, and an image at the limit still goes through
        fits = host_pixels(FMT, 250, MAX_PIXELS // 250)
        assert c.dream(ZERO, fits, 250, MAX_PIXELS // 250, FMT) == fits
    assert daemon.log_text().count(wording) == logged  # the daemon never saw the big one


def test_gimp_link_refuses_an_image_over_the_limit_before_sending(
        daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "plugins" / "gimp" / "deepdream"))
    monkeypatch.setenv("DEEPDREAM_ENDPOINT", daemon.endpoint)
    import daemon_link

    wording = daemon_refusal(daemon)
    logged = daemon.log_text().count(wording)
    with pytest.raises(daemon_link.LinkError, match=f"^{re.escape(wording)}$"):
        daemon_link.dream(ZERO, host_pixels(FMT, BIG_W, BIG_H), BIG_W, BIG_H, FMT, None, "u8",
                          lambda _f: None, lambda _t: None)
    assert daemon.log_text().count(wording) == logged
