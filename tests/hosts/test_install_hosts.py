"""`python install.py` into the real Krita 5.2 and GIMP 3.0 user folders of the trixie root.

install.py runs on this machine (as a user's would) with --krita-dir/--gimp-dir pointing
into a HOME inside the root and --host-python 3.13, the root's Python, so pyzmq and msgpack
wheels for CPython 3.13 are downloaded and vendored. Then real Krita (GUI, Xvfb) must list,
enable and load the plug-in and real GIMP must register plug-in-deepdream, and both must talk
to a real daemon through the *vendored* modules: a PYTHONPATH folder whose zmq and msgpack
refuse to import hides the root's python3-zmq/python3-msgpack, and the transport is forced to
pyzmq, so only the vendored wheels can carry the messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from installer import kritarc
from installer.plugin_files import plugin_folder
from tests.support.hosts import (
    GIMP_PLUGINS,
    KRITA_RESOURCES,
    KRITARC,
    HostHome,
    facts,
    host_home,
)

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
DREAM = {"model": "tiny", "iterations": 1, "octaves": 1, "seed": 3}


@dataclass
class Installed(HostHome):
    output: str = ""  # what install.py printed

    def hiding_env(self, endpoint: str) -> dict[str, str]:
        """Root's zmq/msgpack hidden, pyzmq transport forced; own runtime and temp folders,
        so this Krita/GIMP shares no single-instance socket with another test's."""
        return {"PYTHONPATH": f"{self.inside}/hide",
                "XDG_RUNTIME_DIR": f"{self.inside}/run", "TMPDIR": f"{self.inside}/tmp",
                "DEEPDREAM_ENDPOINT": endpoint, "DEEPDREAM_TRANSPORT": "zmq"}


@pytest.fixture(scope="module")
def installed(host_root: Path) -> Iterator[Installed]:
    # gimp_scripts: the GIMP probe (install_probe.py) and what it imports
    with host_home("install", "gimp_scripts") as home:
        outside = home.outside
        (outside / ".config").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DEEPDREAM_"))}
        env.update(HOME=str(outside), DEEPDREAM_CONFIG=str(outside / "client.json"))
        r = subprocess.run(
            [sys.executable, str(REPO / "install.py"), "--prefix", sys.prefix, "--plugins-only",
             "--no-start", "--host-python", "3.13", "--gimp-dir", str(outside / GIMP_PLUGINS),
             "--krita-dir", str(outside / KRITA_RESOURCES)],
            env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        (outside / "run").mkdir(mode=0o700)
        (outside / "tmp").mkdir()
        hide = outside / "hide"
        hide.mkdir()
        for name in ("zmq", "msgpack"):
            (hide / f"{name}.py").write_text(f"raise ImportError('the root\\'s {name} is "
                                             "hidden by the install test')\n")
        yield Installed(outside, home.inside, r.stdout)


def test_install_put_cp313_wheels_in_both_plugins(installed: Installed) -> None:
    for plugin in (plugin_folder("gimp", installed.outside / GIMP_PLUGINS),
                   plugin_folder("krita", installed.outside / KRITA_RESOURCES)):
        names = [p.name for p in (plugin / "vendor").rglob("*.so")]
        assert any(n.startswith("_cmsgpack.cpython-313") for n in names), names
        assert any(n.startswith("_zmq.") for n in names), names
    assert "Python 3.13" in installed.output


def test_real_krita_lists_enables_and_loads_the_plugin_with_vendored_pyzmq(
        installed: Installed, endpoint: str) -> None:
    installed.add_krita_plugin("dd_install_probe")
    rc = installed.outside / KRITARC
    out = installed.outside / "krita.json"
    out.unlink(missing_ok=True)
    proc = installed.run_krita_gui("1280x900", {**installed.hiding_env(endpoint),
                                                "DD_OUT": f"{installed.inside}/krita.json"})
    assert out.exists(), f"Krita ran no probe:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    facts = json.loads(out.read_text())
    assert "crash" not in facts, facts["crash"]
    assert facts["python"] == "3.13"
    assert facts["loaded"], "Krita did not load deepdream_krita"
    assert "DeepDreamDocker" in facts["dockers"]
    vendor = f"{installed.inside}/{KRITA_RESOURCES}/pykrita/deepdream_krita/vendor/"
    assert facts["zmq"].startswith(vendor) and facts["msgpack"].startswith(vendor), facts
    assert facts["hello"], facts
    # Krita rewrites kritarc on exit; the plug-in must still be enabled afterwards
    assert kritarc.get_key(rc.read_text(), "python", "enable_deepdream_krita") == "true"


def test_real_gimp_registers_and_runs_the_plugin_with_vendored_pyzmq(
        installed: Installed, endpoint: str) -> None:
    proc = installed.run_gimp("install_probe.py", {**installed.hiding_env(endpoint),
                                                   "DD_SETTINGS": json.dumps(DREAM)},
                              timeout=400)
    fact = facts(proc)["install"]
    assert fact["registered"], "GIMP did not register plug-in-deepdream"
    # with the root's zmq and msgpack hidden, only the vendored wheels can carry the job
    assert fact["status"] == "success", fact["error"]
    assert len(fact["layers"]) == 2 and fact["layers"][1] == "photo", fact["layers"]
