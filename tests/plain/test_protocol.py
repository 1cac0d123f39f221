"""The wire protocol pieces that need no daemon: header codec and checks, the stdlib ZMTP
transport against a real libzmq ROUTER, transport choice, endpoint and config resolution."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import pytest
import zmq
from deepdream_protocol import launcher
from deepdream_protocol import messages as m
from deepdream_protocol.client import (
    BadEndpoint,
    Client,
    DaemonError,
    DaemonIncompatible,
    DaemonUnavailable,
)
from deepdream_protocol.transport import choose
from deepdream_protocol.zmtp import HungUp, TransportClosed, ZmtpTransport, send_steadily

from tests.support.daemon import free_port
from tests.support.jobs import wait_until

REPO = Path(__file__).resolve().parents[2]


# -- header codec ---------------------------------------------------------------------------
def test_header_round_trip_adds_the_protocol_version() -> None:
    header = m.decode_header(m.encode_header({"op": "ping", "req": 3}))
    assert header == {"v": m.PROTOCOL_VERSION, "op": "ping", "req": 3}


@pytest.mark.parametrize("data, message", [
    (b"\xc1", "not valid msgpack"),
    (msgpack.packb([1, 2]), "must be a msgpack map"),
    (msgpack.packb({"op": 5}), "no string 'op'"),
    (msgpack.packb({"op": "x", "pad": "a" * 70000}), "exceeds"),
    (msgpack.packb({1: "x"}), "not valid msgpack"),  # non-string map keys
    (b'{"op": "ping"}', r"not valid msgpack: more bytes follow the first value .*"
                       r"it starts b'\{\"op\": \"ping'"),  # JSON, or any text
    (b"", "not valid msgpack: the header frame is empty"),
    (b"\xc1", "not valid msgpack: it holds a byte that starts no msgpack value"),
    (msgpack.packb({"op": "ping"})[:-2], "not valid msgpack: it ends in the middle of a value"),
    (msgpack.packb({1: "x"}), "not valid msgpack: map keys must be strings"),
])
def test_malformed_headers_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(m.ProtocolError, match=message) as err:
        m.decode_header(data)
    assert err.value.code == m.E_BAD_HEADER


@pytest.mark.parametrize("header, code, message", [
    ({"op": "dance"}, m.E_UNKNOWN_OP, "unknown operation 'dance'"),
    ({"op": "cancel"}, m.E_BAD_FIELD, "missing field 'job'"),
    ({"op": "cancel", "job": 7}, m.E_BAD_FIELD, "'job' must be str, got int"),
    ({"op": "submit", "job": "a", "settings": {}, "format": {}, "width": True, "height": 1},
     m.E_BAD_FIELD, "'width' must be int, got bool"),
    ({"op": "ping", "req": "1"}, m.E_BAD_FIELD, "'req' must be int"),
    ({"op": "ping", "v": 99}, m.E_VERSION, "daemon speaks 1, peer speaks 99; update the daemon"),
    ({"op": "ping", "v": 0}, m.E_VERSION, "update the plug-in"),
])
def test_request_checks_name_the_problem(header: dict, code: str, message: str) -> None:
    with pytest.raises(m.ProtocolError, match=message) as err:
        m.validate_request(header)
    assert err.value.code == code


def test_client_library_imports_without_numpy_or_torch() -> None:
    code = ("import sys; sys.modules['numpy'] = None; sys.modules['torch'] = None\n"
            "import deepdream_protocol.client, deepdream_protocol.launcher, "
            "deepdream_protocol.zmtp, deepdream_protocol.settings, "
            "deepdream_protocol.presets, deepdream_protocol.layer_changes\nprint('ok')")
    env = {**os.environ, "PYTHONPATH": str(REPO / "shared")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


# -- the stdlib ZMTP transport against libzmq -----------------------------------------------
@pytest.fixture
def router() -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.linger = 0
    sock.rcvtimeo = 5000
    sock.bind("tcp://127.0.0.1:0")
    yield sock
    sock.close()


def test_zmtp_client_exchanges_multipart_messages_with_libzmq(router: zmq.Socket) -> None:
    t = ZmtpTransport(router.last_endpoint.decode())
    try:
        big = bytes(range(256)) * 4096  # 1 MiB: takes the long-frame path both ways
        t.send([b"header", b"", big])
        peer, *frames = router.recv_multipart()
        assert frames == [b"header", b"", big]
        for i in range(3):
            router.send_multipart([peer, b"reply%d" % i, big[: i * 300]])
        got = [t.recv(5.0) for _ in range(3)]
        assert [[bytes(f) for f in msg] for msg in got] == [
            [b"reply%d" % i, big[: i * 300]] for i in range(3)]
        assert t.recv(0.0) is None
    finally:
        t.close()


def test_zmtp_send_waits_for_a_slow_reader_as_long_as_it_keeps_reading() -> None:
    # a large frame over a busy loopback may take longer in all than the client's timeout:
    # that bounds each wait for the daemon to read more (it bounded the whole send, and a
    # 1.6 GB frame failed with "the daemon did not take the message in time")
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    ours.settimeout(0.3)
    data = os.urandom(4 << 20)
    got = bytearray()

    def slow_reader() -> None:
        while len(got) < len(data):
            got.extend(theirs.recv(256 * 1024))
            time.sleep(0.05)  # ~5 MB/s: the whole send takes about a second

    reader = threading.Thread(target=slow_reader)
    reader.start()
    started = time.monotonic()
    try:
        send_steadily(ours, data)
        reader.join()
        assert got == data and time.monotonic() - started > 0.3
        with pytest.raises(TimeoutError):  # a reader that stopped still times out
            send_steadily(ours, data)
    finally:
        ours.close()
        theirs.close()


def test_zmtp_client_reports_a_closed_connection(router: zmq.Socket) -> None:
    t = ZmtpTransport(router.last_endpoint.decode())
    t.send([b"hi"])
    router.recv_multipart()
    router.close()
    with pytest.raises(TransportClosed):
        t.recv(5.0)
    t.close()


_GREETING = b"\xff" + bytes(8) + b"\x7f\x03\x01" + b"NULL".ljust(20, b"\x00") + bytes(32)
_READY = b"\x04\x1c\x05READY\x0bSocket-Type\x00\x00\x00\x06ROUTER"


@pytest.mark.parametrize("after_greeting", [
    b"\x06" + (2**62).to_bytes(8, "big"),  # a READY of 4 EiB: it used to be allocated
    b"\x04\x00",  # a command with no name: an IndexError escaped
    _READY + b"\x04\x00",  # the same after a good handshake
], ids=["huge-ready", "empty-ready", "empty-command"])
def test_zmtp_client_takes_a_malformed_peer_for_no_daemon(after_greeting: bytes) -> None:
    """Something on the port that sends a ZMTP greeting and then nonsense: the plug-in gets
    the one-line "no daemon" error, not a traceback or a memory error."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(_GREETING + after_greeting)
            conn.recv(4096)
            time.sleep(2)

    threading.Thread(target=serve, daemon=True).start()
    try:
        endpoint = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        with Client(endpoint, transport="stdlib", timeout=1) as c, \
                pytest.raises(DaemonUnavailable) as failed:
            c.hello()
        assert "\n" not in str(failed.value)
    finally:
        server.close()


def test_zmtp_client_refuses_a_remote_daemon() -> None:
    with pytest.raises(ValueError, match="only to a daemon on this computer"):
        ZmtpTransport("tcp://192.0.2.1:5599")


def test_zmtp_client_refuses_a_curve_server() -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.linger = 0
    sock.curve_server = True
    sock.curve_secretkey = zmq.curve_keypair()[1]
    sock.bind("tcp://127.0.0.1:0")
    try:
        with pytest.raises(HungUp, match="closed the connection during the handshake"):
            ZmtpTransport(sock.last_endpoint.decode())  # (the client adds where keys go)
    finally:
        sock.close()


# -- transport and endpoint choice ----------------------------------------------------------
def test_transport_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPDREAM_TRANSPORT", raising=False)
    assert choose("auto") == "zmq"  # pyzmq is installed here
    assert choose("stdlib") == "stdlib"
    monkeypatch.setenv("DEEPDREAM_TRANSPORT", "stdlib")
    assert choose("auto") == "stdlib"
    assert choose("zmq") == "zmq"  # an explicit argument wins over the environment
    with pytest.raises(ValueError, match="unknown transport 'carrier-pigeon'"):
        choose("carrier-pigeon")


def test_endpoint_comes_from_argument_env_config_then_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.delenv("DEEPDREAM_ENDPOINT", raising=False)
    assert Client().endpoint == m.DEFAULT_ENDPOINT
    launcher.write_config("tcp://127.0.0.1:6001", ["deepdream", "serve"])
    assert Client().endpoint == "tcp://127.0.0.1:6001"
    monkeypatch.setenv("DEEPDREAM_ENDPOINT", "tcp://127.0.0.1:6002")
    assert Client().endpoint == "tcp://127.0.0.1:6002"
    assert Client("tcp://127.0.0.1:6003").endpoint == "tcp://127.0.0.1:6003"


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_absent_daemon_is_a_clear_error(transport: str) -> None:
    port = free_port()
    with Client(f"tcp://127.0.0.1:{port}", transport=transport, timeout=0.5) as c:
        with pytest.raises(DaemonUnavailable, match=f"127.0.0.1:{port}.*deepdream serve"):
            c.hello()


def test_daemon_of_another_protocol_version_is_refused(router: zmq.Socket) -> None:
    def fake_daemon() -> None:
        peer, header = router.recv_multipart()
        req = msgpack.unpackb(header)["req"]
        router.send_multipart([peer, msgpack.packb({"v": 2, "op": "hello", "version": 2,
                                                    "req": req})])

    thread = threading.Thread(target=fake_daemon)
    thread.start()
    with Client(router.last_endpoint.decode(), timeout=5) as c:
        with pytest.raises(DaemonIncompatible, match="daemon speaks protocol 2"):
            c.hello()
    thread.join()


def test_a_daemons_error_reaches_the_plugin_as_one_line(router: zmq.Socket) -> None:
    # a status line or a GIMP message shows it: a daemon (of this or another version) may
    # send a message of several lines, e.g. from a torch error it passed on
    def fake_daemon() -> None:
        peer, header = router.recv_multipart()
        req = msgpack.unpackb(header)["req"]
        router.send_multipart([peer, msgpack.packb({
            "v": 1, "op": "error", "code": "internal", "req": req,
            "message": "the dream failed: RuntimeError: CUDA error: device-side assert\n"
                       "CUDA kernel errors might be reported asynchronously\n\n  at"})])

    thread = threading.Thread(target=fake_daemon)
    thread.start()
    with Client(router.last_endpoint.decode(), timeout=5) as c:
        with pytest.raises(DaemonError) as caught:
            c.hello()
    thread.join()
    assert str(caught.value) == ("the dream failed: RuntimeError: CUDA error: device-side "
                                 "assert CUDA kernel errors might be reported asynchronously at")


def test_client_checks_the_mask_size_before_sending() -> None:
    fmt = {"layout": "G", "dtype": "u8", "transfer": "srgb"}
    with Client(f"tcp://127.0.0.1:{free_port()}") as c:  # nothing listens: nothing is sent
        with pytest.raises(ValueError, match="^mask data is 3 bytes; 2x2 f32 needs 16$"):
            c.submit({}, bytes(4), 2, 2, fmt, mask=bytes(3), mask_dtype="f32")


def test_client_refuses_a_guide_file_over_the_limit_before_sending(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "MAX_GUIDE_BYTES", 2**20)  # (a file over 64 MiB is slow to make)
    (tmp_path / "big.png").write_bytes(bytes(3 * 2**20))
    with Client(f"tcp://127.0.0.1:{free_port()}") as client, \
            pytest.raises(DaemonError) as refused:  # nothing listens: nothing is sent
        client.submit({"guide": str(tmp_path / "big.png")}, bytes(4), 1, 1,
                      {"layout": "RGBA", "dtype": "u8", "transfer": "srgb"})
    assert str(refused.value) == (f"guide image {tmp_path / 'big.png'} is 3 MiB; a guide "
                                  "image may be at most 1 MiB")
    assert refused.value.code == m.E_BAD_SETTINGS


@pytest.mark.parametrize("transport", ["zmq", "stdlib"])
def test_a_daemon_started_again_is_not_held_to_the_old_ones_limit(router: zmq.Socket,
                                                                   transport: str) -> None:
    endpoint = router.last_endpoint.decode()

    def fake_daemon() -> None:
        peer, header = router.recv_multipart()
        req = msgpack.unpackb(header)["req"]
        router.send_multipart([peer, msgpack.packb({"v": 1, "op": "hello", "version": 1,
                                                    "max_pixels": 10, "req": req})])

    thread = threading.Thread(target=fake_daemon)
    thread.start()
    fmt = {"layout": "G", "dtype": "u8", "transfer": "srgb"}
    with Client(endpoint, transport=transport, timeout=5) as c:
        c.hello()
        thread.join()
        with pytest.raises(DaemonError, match="this daemon takes at most 10 "):
            c.submit({}, bytes(16), 4, 4, fmt)
        router.close()  # the daemon stops; another one, with a larger limit, starts
        again = zmq.Context.instance().socket(zmq.ROUTER)
        again.linger, again.rcvtimeo = 0, 5000
        wait_until(lambda: _bound(again, endpoint), 10, "the old socket's port to be free")
        try:
            for _ in range(100):  # until the client can see the old connection closed
                if c._sock.dropped():
                    break
                time.sleep(0.05)
            c.submit({}, bytes(16), 4, 4, fmt)  # small: sent without asking the limit again
            assert msgpack.unpackb(again.recv_multipart()[1])["op"] == m.SUBMIT
        finally:
            again.close()


def _bound(sock: zmq.Socket, endpoint: str) -> bool:
    """Bind ``sock``; False while the port is still held (libzmq closes sockets behind the
    caller's back, in its own thread)."""
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        if exc.errno != zmq.EADDRINUSE:
            raise
        return False
    return True


# -- the client config file -----------------------------------------------------------------
def test_config_file_round_trip_keeps_other_keys(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sub" / "client.json"
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(path))
    assert launcher.config_path() == path
    assert launcher.read_config() == {}
    path.parent.mkdir()
    path.write_text('{"theme": "dark"}')
    launcher.write_config("tcp://127.0.0.1:5599", "/opt/dd/bin/python -m deepdream serve")
    assert launcher.read_config() == {"theme": "dark", "endpoint": "tcp://127.0.0.1:5599",
                                      "daemon_cmd": "/opt/dd/bin/python -m deepdream serve"}
    monkeypatch.delenv("DEEPDREAM_DAEMON_CMD", raising=False)
    assert launcher.daemon_command() == ["/opt/dd/bin/python", "-m", "deepdream", "serve"]
    monkeypatch.setenv("DEEPDREAM_DAEMON_CMD", "'/my dir/python' -m deepdream serve --port 1")
    assert launcher.daemon_command()[0] == "/my dir/python"


@pytest.mark.parametrize(("env", "config", "says"), [
    ("'/my dir/python -m deepdream", None, "DEEPDREAM_DAEMON_CMD is not a valid command line"),
    ("", '{"daemon_cmd": 5}', "must be a command line or a list of its words, not 5"),
    ("", '{"daemon_cmd": ["python", {"x": 1}]}', "must be a command line or a list"),
])
def test_an_unreadable_daemon_command_is_one_line_naming_where_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, config: str | None,
        says: str) -> None:
    path = tmp_path / "client.json"
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(path))
    monkeypatch.setenv("DEEPDREAM_DAEMON_CMD", env)
    if config is not None:
        path.write_text(config)
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        launcher.daemon_command()
    assert "\n" not in str(caught.value)
    if config is not None:
        assert str(path) in str(caught.value)
    # a plug-in asking for a daemon gets it as the client's own error, in one line
    port = free_port()
    with pytest.raises(DaemonUnavailable, match=re.escape(says)):
        launcher.ensure_daemon(f"tcp://127.0.0.1:{port}", timeout=1)


def test_config_default_folder_per_os(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DEEPDREAM_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    assert launcher.config_path() == tmp_path / "deepdream" / "client.json"
    monkeypatch.setattr(sys, "platform", "win32")  # Windows cannot run here: only the path
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    assert launcher.config_path() == tmp_path / "Roaming" / "deepdream" / "client.json"


@pytest.mark.parametrize(("kind", "words"), [
    ("not json", "is not valid JSON"),
    # (these escaped as a raw IsADirectoryError / UnicodeDecodeError from the Krita API and
    # the CLI, which promise a one-line error)
    ("folder", r"cannot read {} .*fix or delete it"),
    ("not utf-8", r"cannot read {} .*fix or delete it"),
])
def test_a_config_that_cannot_be_used_is_a_one_line_error(
        kind: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "client.json"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"{not json" if kind == "not json" else
                         b'{"endpoint": "tcp://127.0.0.1:5599", "theme": "\xff"}')
    words = words.format(re.escape(str(path)))
    with pytest.raises(ValueError, match=words) as err:
        launcher.read_config(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    # a plug-in making its client gets the client's own error, which it already reports
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(path))
    monkeypatch.delenv("DEEPDREAM_ENDPOINT", raising=False)
    with pytest.raises(BadEndpoint, match=words):
        Client()
    # an endpoint given outright still needs the config for the CurveZMQ key folder
    monkeypatch.delenv("DEEPDREAM_CURVE_DIR", raising=False)
    with pytest.raises(BadEndpoint, match=words):
        Client("tcp://127.0.0.1:5599")


def test_ensure_daemon_without_a_start_command_says_how_to_configure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.delenv("DEEPDREAM_DAEMON_CMD", raising=False)
    with pytest.raises(DaemonUnavailable, match="no command to start one.*DEEPDREAM_DAEMON_CMD"):
        launcher.ensure_daemon(f"tcp://127.0.0.1:{free_port()}", timeout=5)


def test_ensure_daemon_starts_nothing_here_for_a_daemon_on_another_computer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote daemon that is down made the plug-ins start a local one, which could not
    answer there: a minute's wait for a useless daemon."""
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(tmp_path / "client.json"))
    marker = tmp_path / "started"
    monkeypatch.setenv("DEEPDREAM_DAEMON_CMD",
                       f"{sys.executable} -c 'open({str(marker)!r}, \"w\")'")
    with pytest.raises(DaemonUnavailable, match="at tcp://192.0.2.1:5599, on another computer: "
                                                r"start it there \(deepdream serve\)"):
        launcher.ensure_daemon("tcp://192.0.2.1:5599", timeout=30)  # (TEST-NET: no one)
    assert not marker.exists()


@pytest.mark.parametrize("sandbox", ["Flatpak", "Snap"])
def test_a_host_in_a_sandbox_reads_the_installers_config_and_says_who_must_start_the_daemon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: str) -> None:
    """GIMP or Krita from Flathub or the Snap Store: the sandbox gives them a config folder
    of their own (a Flatpak's XDG_CONFIG_HOME, a Snap's HOME), so the installer's config was
    never found, and a start of the daemon's venv from inside cannot work.  (The sandbox's
    environment is set here as flatpak and snapd set it: no sandbox runs in these tests.)"""
    home, inside = tmp_path / "home", tmp_path / "app-config"
    config = home / ".config" / "deepdream" / "client.json"
    config.parent.mkdir(parents=True)
    port = free_port()
    marker = tmp_path / "started"
    start = f"{sys.executable} -c 'open({str(marker)!r}, \"w\")'"
    config.write_text(json.dumps({"endpoint": f"tcp://127.0.0.1:{port}", "daemon_cmd": start}))
    for name in ("DEEPDREAM_CONFIG", "DEEPDREAM_ENDPOINT", "DEEPDREAM_DAEMON_CMD",
                 "HOST_XDG_CONFIG_HOME", "FLATPAK_ID", "SNAP_NAME", "SNAP_REAL_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(inside))
    if sandbox == "Flatpak":
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("FLATPAK_ID", "org.gimp.GIMP")
    else:
        monkeypatch.setenv("HOME", str(home / "snap" / "gimp" / "512"))
        monkeypatch.setenv("SNAP_NAME", "gimp")
        monkeypatch.setenv("SNAP_REAL_HOME", str(home))
    assert launcher.config_path() == config
    assert launcher.read_config()["endpoint"] == f"tcp://127.0.0.1:{port}"
    with pytest.raises(DaemonUnavailable) as caught:
        launcher.ensure_daemon(timeout=5)
    assert str(caught.value).startswith(
        f"no deepdream daemon at tcp://127.0.0.1:{port}, and this program runs in a "
        f"{sandbox} sandbox, which cannot start it: start it yourself in a terminal (")
    assert not marker.exists()


def test_ensure_daemon_reports_a_daemon_that_exits(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("DEEPDREAM_DAEMON_CMD", f"{sys.executable} -c 'raise SystemExit(3)'")
    with pytest.raises(DaemonUnavailable, match="exited with status 3"):
        launcher.ensure_daemon(f"tcp://127.0.0.1:{free_port()}", timeout=30)


def test_first_line_keeps_an_error_to_one_line_that_says_something() -> None:
    assert m.first_line(RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")) \
        == "CUDA out of memory."
    assert m.first_line(KeyError()) == "KeyError"  # no words: its type is what it says
    assert m.first_line(OSError("  \n")) == "OSError"


def test_wire_settings_sends_what_a_plugin_shows_even_defaults_under_a_preset() -> None:
    from deepdream_protocol.settings import wire_settings

    # deep-objects has 5 octaves; a user who sets 4 (the default) back must get 4
    sent = wire_settings({"preset": "deep-objects", "octaves": 4, "step": 1.5,
                          "use_selection": True})
    assert sent == {"preset": "deep-objects", "octaves": 4, "step": 1.5}


def test_layer_names_reads_a_layer_list_with_or_without_weights() -> None:
    from deepdream_protocol.settings import layer_names

    assert layer_names("inception4c") == ["inception4c"]
    assert layer_names("inception4c,inception3a") == ["inception4c", "inception3a"]
    assert layer_names(" inception3a:1, inception4c:0.5 ,") == ["inception3a", "inception4c"]
    assert layer_names("") == []
