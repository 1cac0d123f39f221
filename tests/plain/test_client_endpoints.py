"""A malformed endpoint or transport setting is the client's own one-line DaemonError, on both
transports, and the CLI, GIMP and Krita show it as their usual one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest
from deepdream_protocol.client import BadEndpoint, Client, DaemonError, DaemonUnavailable
from deepdream_protocol.pixels import PixelFormat

from tests.support.daemon import free_port

pytestmark = pytest.mark.usefixtures("isolated_config")
ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = ["zmq", "stdlib"]
MALFORMED = ["bogus", "tcp://127.0.0.1", "tcp://localhost", "127.0.0.1:5599",
             "tcp://127.0.0.1:port", "tcp://127.0.0.1:99999", "tcp://:5599"]


def one_line_naming(exc: BaseException, *parts: str) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    for part in parts:
        assert part in text
    return text


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("endpoint", MALFORMED)
def test_malformed_endpoint_argument_is_a_daemon_error(transport: str, endpoint: str) -> None:
    with pytest.raises(BadEndpoint) as caught:
        Client(endpoint, transport=transport)
    assert isinstance(caught.value, DaemonError)
    one_line_naming(caught.value, repr(endpoint), "tcp://HOST:PORT")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_malformed_endpoint_from_the_environment(transport: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPDREAM_ENDPOINT", "tcp://localhost")
    with pytest.raises(BadEndpoint) as caught:
        Client(transport=transport)
    one_line_naming(caught.value, "'tcp://localhost'", "tcp://HOST:PORT")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_endpoint_the_transport_cannot_connect_to_fails_at_connect(transport: str) -> None:
    # well formed, but no client can connect to "any address" (a bind address)
    with Client("tcp://*:5599", transport=transport, timeout=0.5) as client:
        with pytest.raises(BadEndpoint) as caught:
            client.hello()
    one_line_naming(caught.value, "*")


def test_unknown_transport_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPDREAM_TRANSPORT", "bogus")
    with pytest.raises(BadEndpoint) as caught:
        Client("tcp://127.0.0.1:5599")
    one_line_naming(caught.value, "'bogus'", "DEEPDREAM_TRANSPORT", "auto, zmq, stdlib")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("endpoint", ["tcp://127.0.0.1:5599", "tcp://[::1]:5599",
                                      "tcp://localhost:1", "tcp://example.org:65535"])
def test_well_formed_endpoints_are_accepted(endpoint: str, transport: str) -> None:
    with Client(endpoint, transport=transport) as client:
        assert client.endpoint == endpoint


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_well_formed_endpoint_with_no_daemon_is_unavailable_not_bad(transport: str) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with Client(endpoint, transport=transport, timeout=0.5) as client:
        with pytest.raises(DaemonUnavailable) as caught:
            client.hello()
    assert not isinstance(caught.value, BadEndpoint) and endpoint in str(caught.value)

    assert "start it with 'deepdream serve'" in str(caught.value)  # on this computer


def test_a_silent_daemon_on_another_computer_points_at_its_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a --curve daemon (the only kind another computer can reach) does not answer a client
    # without its keys: silence, which the message should not blame on the daemon alone.
    # (192.0.2.1 is reserved for documentation: nothing answers there.)
    monkeypatch.delenv("DEEPDREAM_CURVE_DIR", raising=False)
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(tmp_path / "client.json"))  # (no curve_dir)
    with Client("tcp://192.0.2.1:5599", transport="zmq", timeout=0.3) as client:
        with pytest.raises(DaemonUnavailable, match="does this computer have its keys") as c:
            client.hello()
    assert "DEEPDREAM_CURVE_DIR" in str(c.value) and "\n" not in str(c.value)


def test_cli_dream_with_a_bogus_daemon_endpoint_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make_image) -> None:
    from deepdream.cli import main
    from deepdream.imageio import write_image

    source, out = tmp_path / "in.png", tmp_path / "out.png"
    write_image(source, make_image(16, 16), bits=8)
    assert main(["dream", str(source), "-o", str(out), "--daemon", "bogus", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'bogus'" in err and "tcp://HOST:PORT" in err
    assert not out.exists()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gimp_link_reports_a_malformed_endpoint(transport: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "plugins" / "gimp" / "deepdream"))
    monkeypatch.setenv("DEEPDREAM_ENDPOINT", "tcp://127.0.0.1")
    monkeypatch.setenv("DEEPDREAM_TRANSPORT", transport)
    import daemon_link

    with pytest.raises(daemon_link.LinkError) as caught:
        daemon_link.dream({}, bytes(4), 1, 1, PixelFormat("RGBA", "u8"), None, "u8",
                          lambda _f: None, lambda _t: None)
    one_line_naming(caught.value, "'tcp://127.0.0.1'", "tcp://HOST:PORT")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_krita_connection_reports_a_malformed_endpoint(transport: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "plugins" / "krita"))
    monkeypatch.setenv("DEEPDREAM_ENDPOINT", "tcp://localhost")
    monkeypatch.setenv("DEEPDREAM_TRANSPORT", transport)
    from deepdream_krita import connection
    from deepdream_krita.pixels import DreamError

    for attempt in (connection.start_daemon_if_needed, lambda: connection.connected().__enter__()):
        with pytest.raises(DreamError) as caught:
            attempt()
        one_line_naming(caught.value, "'tcp://localhost'", "tcp://HOST:PORT")
