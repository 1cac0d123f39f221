"""Loopback by default; another address only with CurveZMQ keys; one daemon per port."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from deepdream_protocol import client as client_module
from deepdream_protocol import launcher
from deepdream_protocol.client import Client, DaemonError, DaemonUnavailable
from deepdream_protocol.transport import CurveKeys
from PIL import Image

from tests.support.daemon import Daemon, daemon_env, free_port, running_daemon

pytestmark = pytest.mark.daemon


def deepdream(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deepdream", *args], env=daemon_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_refuses_a_non_loopback_address_without_keys(tmp_path: Path) -> None:
    out = deepdream("serve", "--bind", "0.0.0.0", "--port", str(free_port()),
                    "--log-file", str(tmp_path / "d.log"))
    assert out.returncode == 1
    assert "refusing to listen on 0.0.0.0" in out.stderr and "keygen" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "cannot start: refusing to listen" in (tmp_path / "d.log").read_text()


def test_refuses_a_key_folder_without_allowed_clients(tmp_path: Path) -> None:
    assert deepdream("keygen", "--dir", str(tmp_path / "keys")).returncode == 0
    out = deepdream("serve", "--bind", "0.0.0.0", "--port", str(free_port()),
                    "--curve", str(tmp_path / "keys"), "--log-file", str(tmp_path / "d.log"))
    assert out.returncode == 1 and "no allowed client keys" in out.stderr


def test_second_daemon_on_the_same_port_exits_with_a_clear_message(daemon: Daemon,
                                                                   tmp_path: Path) -> None:
    port = daemon.endpoint.rsplit(":", 1)[1]
    out = deepdream("serve", "--port", port, "--log-file", str(tmp_path / "d.log"))
    assert out.returncode == 1
    assert "already in use by another deepdream daemon" in out.stderr
    with Client(daemon.endpoint, timeout=30) as c:  # the first one is unharmed
        assert c.ping()["op"] == "pong"


def test_curve_admits_an_allowed_key_and_refuses_others(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    keys, strangers = tmp_path / "keys", tmp_path / "strangers"
    assert deepdream("keygen", "--dir", str(keys)).returncode == 0
    made = deepdream("keygen", "--dir", str(keys), "--client", "alice")
    assert made.returncode == 0 and "alice.key_secret" in made.stdout
    assert deepdream("keygen", "--dir", str(strangers), "--client", "mallory").returncode == 0
    again = deepdream("keygen", "--dir", str(keys))
    assert again.returncode != 0 and "already exists" in again.stderr  # never overwrites

    with running_daemon(extra_args=("--bind", "0.0.0.0", "--curve", str(keys))) as endpoint:
        alice = CurveKeys.from_files(str(keys / "server.key"), str(keys / "alice.key_secret"))
        with Client(endpoint, timeout=20, curve=alice) as c:
            assert c.hello()["version"] == 1
            assert c.dream({"model": "tiny", "iterations": 0}, bytes(64), 4, 4,
                           {"layout": "RGBA", "dtype": "u8", "transfer": "srgb"}) == bytes(64)
            check_guides_travel(c, tmp_path, monkeypatch)
        mallory = CurveKeys.from_files(str(keys / "server.key"),
                                       str(strangers / "mallory.key_secret"))
        for client in (Client(endpoint, timeout=2, curve=mallory),
                       Client(endpoint, timeout=2),  # no encryption at all
                       Client(endpoint, timeout=2, transport="stdlib")):
            with client, pytest.raises(DaemonUnavailable) as refused:
                client.hello()
            if client._curve is None:  # told to get a key, not to start a daemon that runs
                assert "--curve" in str(refused.value), refused.value
                assert "deepdream serve" not in str(refused.value), refused.value
        # a plug-in, finding it silent, tries to start a daemon, which cannot take the port
        monkeypatch.setenv("DEEPDREAM_DAEMON_CMD", "/bin/false")
        with pytest.raises(DaemonUnavailable, match="--curve") as refused:
            launcher.ensure_daemon(endpoint, timeout=10)
        assert "something listens at" in str(refused.value)


def check_guides_travel(c: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon that serves other computers dreams a guide image sent with the job, and never
    one named by a path on its disk: whether that file exists is not its clients' to learn."""
    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "guide.png")
    rgba = {"layout": "RGBA", "dtype": "u8", "transfer": "srgb"}
    guided = {"model": "tiny", "iterations": 1, "octaves": 1}
    pixels = bytes(range(256)) * 4
    assert len(c.dream({**guided, "guide": str(tmp_path / "guide.png")}, pixels, 16, 16,
                       rgba)) == len(pixels)
    # a client that names the file instead (as clients did before the file went along)
    monkeypatch.setattr(client_module, "read_guide", lambda path: None)
    answers = []
    for path in (tmp_path / "guide.png", tmp_path / "missing.png"):
        with pytest.raises(DaemonError) as refused:
            c.dream({**guided, "guide": str(path)}, pixels, 16, 16, rgba)
        assert refused.value.code == "bad_settings"
        answers.append(str(refused.value))
    assert answers[0] == answers[1]  # the same for a file there and one that is not
    assert "a guide image must come with the job" in answers[0]
    monkeypatch.undo()


def test_clients_find_their_keys_in_the_folder_the_config_or_environment_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What 'deepdream keygen --client NAME' says to copy to the other computer (NAME's
    secret key and the daemon's public key), in a folder named by DEEPDREAM_CURVE_DIR or the
    config's curve_dir: the plug-ins and 'dream --daemon' then connect without code."""
    import shutil

    from deepdream_protocol.client import BadEndpoint

    keys, laptop = tmp_path / "keys", tmp_path / "laptop"
    assert deepdream("keygen", "--dir", str(keys)).returncode == 0
    assert deepdream("keygen", "--dir", str(keys), "--client", "laptop").returncode == 0
    laptop.mkdir()
    config = tmp_path / "client.json"
    monkeypatch.setenv("DEEPDREAM_CONFIG", str(config))
    monkeypatch.delenv("DEEPDREAM_CURVE_DIR", raising=False)
    with running_daemon(extra_args=("--bind", "0.0.0.0", "--curve", str(keys))) as endpoint:
        monkeypatch.setenv("DEEPDREAM_CURVE_DIR", str(laptop))
        with pytest.raises(BadEndpoint, match="must hold the daemon's server.key"):
            Client(endpoint)  # nothing copied yet: said at once, in one line
        for name in ("server.key", "laptop.key_secret"):
            shutil.copy(keys / name, laptop / name)
        with Client(endpoint, timeout=20) as c:
            assert c.hello()["version"] == 1
        monkeypatch.delenv("DEEPDREAM_CURVE_DIR")
        config.write_text(json.dumps({"endpoint": endpoint, "curve_dir": str(laptop)}))
        src = tmp_path / "in.png"
        Image.new("RGB", (48, 40), (90, 140, 200)).save(src)
        out = subprocess.run(
            [sys.executable, "-m", "deepdream", "dream", str(src), "-o", str(tmp_path / "o.png"),
             "--daemon", endpoint, "--model", "tiny", "--iterations", "1", "--octaves", "1"],
            env=daemon_env({"DEEPDREAM_CONFIG": str(config)}), capture_output=True, text=True,
            timeout=300)
        assert out.returncode == 0, out.stderr
        assert Image.open(tmp_path / "o.png").size == (48, 40)
