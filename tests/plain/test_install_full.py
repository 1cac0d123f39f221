"""`python install.py` end to end on named folders: wheels for the host's Python in vendor/,
the plug-in config, --check's diagnosis, and --uninstall leaving the folders as they were.

Uses the running venv as --prefix with --plugins-only, so no PyTorch is installed; the
pyzmq/msgpack wheels are really downloaded through pip's configured index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deepdream_protocol.messages import DEFAULT_ENDPOINT

from tests.plain.test_install_plugins import snapshot

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def install_py(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DEEPDREAM_"))}
    env.update(HOME=str(home), DEEPDREAM_CONFIG=str(home / "cfg/deepdream/client.json"),
               PYTHONPATH=os.pathsep.join([str(REPO / "daemon"), str(REPO / "shared")]))
    return subprocess.run([sys.executable, str(REPO / "install.py"), "--prefix", sys.prefix,
                           *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config/kritarc").write_text("[General]\nfoo=1\n")
    return home


def ours(home: Path) -> dict:
    """The folders install.py writes to (other tools may drop files elsewhere in HOME)."""
    return {d: snapshot(home / d) for d in (".config", ".local", "cfg")}


def test_install_check_uninstall_round_trip(home: Path):
    before = ours(home)
    gimp_dir, krita_dir = home / ".config/GIMP/3.0/plug-ins", home / ".local/share/krita"
    folders = ["--gimp-dir", str(gimp_dir), "--krita-dir", str(krita_dir)]
    r = install_py(home, "--plugins-only", "--no-start", "--host-python", "3.13", *folders)
    assert r.returncode == 0, r.stdout + r.stderr

    for plugin in (gimp_dir / "deepdream", krita_dir / "pykrita/deepdream_krita"):
        vendor = plugin / "vendor"
        assert (vendor / "deepdream_protocol/client.py").exists()
        compiled = [p.name for p in (vendor / "zmq").rglob("*.so")]
        # a CPython 3.13 can load an abi3 or a cpython-313 module, nothing else
        assert compiled and all("abi3" in n or "cpython-313" in n for n in compiled), compiled
        assert list((vendor / "msgpack").glob("_cmsgpack.cpython-313*.so"))
    assert os.access(gimp_dir / "deepdream/deepdream.py", os.X_OK)
    assert "enable_deepdream_krita=true" in (home / ".config/kritarc").read_text()
    config = json.loads((home / "cfg/deepdream/client.json").read_text())
    assert config["endpoint"] == DEFAULT_ENDPOINT
    assert config["daemon_cmd"][1:] == ["serve", "--preload", "googlenet"]
    assert Path(config["daemon_cmd"][0]).parent.parent == Path(sys.prefix)

    check = install_py(home, "--check", *folders)
    assert check.returncode == 0, check.stdout + check.stderr
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"gimp (custom)  plug-in {version}" in check.stdout
    assert "Python 3.13" in check.stdout
    assert "daemon" in check.stdout and "torch" in check.stdout

    compiled = home / ".cache/deepdream/torchinductor"  # what `serve --compile` kept
    (compiled / "fxgraph").mkdir(parents=True)
    (compiled / "fxgraph/kernel.py").write_text("# a compiled step\n")
    (home / ".cache/pip").mkdir(exist_ok=True)  # another tool's
    r = install_py(home, "--uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ours(home) == before
    assert not (home / ".cache/deepdream").exists() and (home / ".cache/pip").is_dir()


def test_check_says_what_is_broken(home: Path, tmp_path: Path):
    r = install_py(home, "--check", "--gimp-dir", str(tmp_path / "nowhere"))
    assert r.returncode == 1
    assert "plug-in not installed" in r.stdout
    assert "config" in r.stdout and "run: python install.py" in r.stdout
    # several problems, one mend: said once (it used to be said in two wordings)
    assert r.stdout.count("PROBLEM") >= 2
    assert r.stdout.split("broken; to fix:")[1].split() == ["-", "run:", "python", "install.py"]


def test_bad_host_python_is_one_clear_error(home: Path, tmp_path: Path):
    r = install_py(home, "--plugins-only", "--no-start", "--host-python", "313",
                   "--gimp-dir", str(tmp_path / "g"))
    assert r.returncode == 1
    assert r.stdout.strip().splitlines()[-1] == (
        "install.py: error: --host-python 313: give a version like 3.13")
    assert not (tmp_path / "g").exists()
