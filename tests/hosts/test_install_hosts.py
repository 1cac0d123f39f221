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
from tests.hosts import trixie_root

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
GIMP_PLUGINS = ".config/GIMP/3.0/plug-ins"
KRITA_RESOURCES = ".local/share/krita"

# Test-only Krita plug-in: once the window is up (every plug-in is loaded by then), report
# what Krita loaded and which zmq/msgpack the DeepDream plug-in gets, say hello to the
# daemon over pyzmq, then quit.
KRITA_PROBE = r'''
import json, os, sys, traceback
from krita import Krita
try:
    from PyQt5.QtCore import QTimer
except ImportError:
    from PyQt6.QtCore import QTimer

def _probe():
    facts = {"python": "%d.%d" % sys.version_info[:2]}
    try:
        facts["loaded"] = "deepdream_krita" in sys.modules
        facts["dockers"] = [type(d).__name__ for d in Krita.instance().dockers()]
        import zmq, msgpack
        facts["zmq"], facts["msgpack"] = zmq.__file__, msgpack.__file__
        from deepdream_protocol.client import Client
        client = Client(os.environ["DEEPDREAM_ENDPOINT"], transport="zmq", timeout=60)
        try:
            facts["hello"] = client.hello()
        finally:
            client.close()
    except Exception:
        facts["crash"] = traceback.format_exc()
    with open(os.environ["DD_OUT"], "w") as f:
        json.dump(facts, f, default=str)
    QTimer.singleShot(1000, _quit)

def _quit(tries=[0]):
    # file_quit is ignored while Krita is still starting up: retry, then leave hard
    tries[0] += 1
    if tries[0] > 30:
        os._exit(0)
    Krita.instance().action("file_quit").trigger()
    QTimer.singleShot(1000, _quit)

def _wait(tries=[0]):
    tries[0] += 1
    window = Krita.instance().activeWindow()
    if (window is None or not window.qwindow().isVisible()) and tries[0] < 600:
        QTimer.singleShot(250, _wait)
    else:
        _probe()

QTimer.singleShot(250, _wait)
'''
KRITA_PROBE_DESKTOP = """[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library=dd_install_probe
X-Python-2-Compatible=false
Name=DeepDream install test probe
"""

# gimp-console batch script: is the procedure registered, and does one tiny dream succeed?
GIMP_PROBE = r'''
import json, os
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp
pdb = Gimp.get_pdb()
fact = {"registered": pdb.procedure_exists("plug-in-deepdream")}
if fact["registered"]:
    img = Gimp.Image.new(40, 32, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(img, "photo", 40, 32, Gimp.ImageType.RGBA_IMAGE, 100,
                           Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    proc = pdb.lookup_procedure("plug-in-deepdream")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", img)
    config.set_core_object_array("drawables", [layer])
    for name, value in json.loads(os.environ["DD_SETTINGS"]).items():
        config.set_property(name, value)
    status = proc.run(config).index(0)
    fact["status"] = status.value_nick
    fact["error"] = pdb.get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
    fact["layers"] = [item.get_name() for item in img.get_layers()]
    img.delete()
print("FACT " + json.dumps(fact))
'''
DREAM = {"model": "tiny", "iterations": 1, "octaves": 1, "seed": 3}


@dataclass
class Installed:
    outside: Path  # the HOME as seen from this machine
    inside: str  # the same HOME inside the root
    output: str  # what install.py printed

    def hiding_env(self, endpoint: str) -> dict[str, str]:
        """Root's zmq/msgpack hidden, pyzmq transport forced; own runtime and temp folders,
        so this Krita/GIMP shares no single-instance socket with another test's."""
        return {"HOME": self.inside, "PYTHONPATH": f"{self.inside}/hide",
                "XDG_RUNTIME_DIR": f"{self.inside}/run", "TMPDIR": f"{self.inside}/tmp",
                "DEEPDREAM_ENDPOINT": endpoint, "DEEPDREAM_TRANSPORT": "zmq"}


@pytest.fixture(scope="module")
def installed(host_root: Path) -> Iterator[Installed]:
    with trixie_root.host_dir("deepdream-install-test") as (outside, inside):
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
        yield Installed(outside, inside, r.stdout)



def test_install_put_cp313_wheels_in_both_plugins(installed: Installed) -> None:
    for plugin in (installed.outside / GIMP_PLUGINS / "deepdream",
                   installed.outside / KRITA_RESOURCES / "pykrita/deepdream_krita"):
        names = [p.name for p in (plugin / "vendor").rglob("*.so")]
        assert any(n.startswith("_cmsgpack.cpython-313") for n in names), names
        assert any(n.startswith("_zmq.") for n in names), names
    assert "Python 3.13" in installed.output


def test_real_krita_lists_enables_and_loads_the_plugin_with_vendored_pyzmq(
        installed: Installed, endpoint: str) -> None:
    pykrita = installed.outside / KRITA_RESOURCES / "pykrita"
    (pykrita / "dd_install_probe").mkdir(exist_ok=True)
    (pykrita / "dd_install_probe/__init__.py").write_text(KRITA_PROBE)
    (pykrita / "dd_install_probe.desktop").write_text(KRITA_PROBE_DESKTOP)
    rc = installed.outside / ".config/kritarc"
    rc.write_text(kritarc.set_key(rc.read_text(), "python", "enable_dd_install_probe",
                                  "true")[0])
    out = installed.outside / "krita.json"
    out.unlink(missing_ok=True)
    proc = trixie_root.run_in_root(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x900x24", "krita", "--nosplash"],
        env={**installed.hiding_env(endpoint), "DD_OUT": f"{installed.inside}/krita.json"},
        timeout=400)
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
    (installed.outside / "gimp_probe.py").write_text(GIMP_PROBE)
    proc = trixie_root.run_in_root(
        ["gimp-console-3.0", "-i", "--batch-interpreter=python-fu-eval",
         "-b", f'exec(open("{installed.inside}/gimp_probe.py").read())', "--quit"],
        env={**installed.hiding_env(endpoint), "DD_SETTINGS": json.dumps(DREAM)},
        timeout=400)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FACT ")]
    assert lines, f"no fact from GIMP (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    fact = json.loads(lines[-1][5:])
    assert fact["registered"], "GIMP did not register plug-in-deepdream"
    # with the root's zmq and msgpack hidden, only the vendored wheels can carry the job
    assert fact["status"] == "success", fact["error"]
    assert len(fact["layers"]) == 2 and fact["layers"][1] == "photo", fact["layers"]
