"""What the GIMP and Krita real-host tests (tests/hosts) share: a HOME folder inside the
cached Debian trixie root, a plug-in installed into it the way a user would, the test scripts
beside it, and the commands that run GIMP and Krita there.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from installer import kritarc
from installer.plugin_files import plugin_folder
from tests.hosts import trixie_root

REPO = Path(__file__).resolve().parents[2]
#: gimp_scripts/ and krita_scripts/ live here
HOSTS = REPO / "tests" / "hosts"
GIMP_PLUGINS = ".config/GIMP/3.0/plug-ins"
KRITA_RESOURCES = ".local/share/krita"
KRITARC = ".config/kritarc"


# Each run starts its search for a free X display at a new number (xvfb-run -a alone takes
# :99 again right after the last run's Xvfb was killed).
_displays = itertools.count(100 + os.getpid() % 2000 * 16)
# What Qt and GTK say when Xvfb was not there for them: with the CPU saturated, 6 of 33 GUI
# starts here (the socket was in place when checked by hand: the cause is not pinned down).
NO_DISPLAY = ("could not connect to display", "cannot open display")
#: what krita_scripts/dd_gui_driver prints once Krita's window is up
GUI_DRIVER_STARTED = "DD_STARTED"


def xvfb(screen: str) -> list[str]:
    """xvfb-run (inside the root) with one ``WIDTHxHEIGHT`` screen."""
    return ["xvfb-run", "-a", "-n", str(next(_displays)), "-s", f"-screen 0 {screen}x24"]


def run_under_xvfb(screen: str, argv: list[str], env: Mapping[str, str], timeout: float,
                   started: str | None = None) -> subprocess.CompletedProcess[str]:
    """``argv`` (a GUI program, inside the root) on its own Xvfb screen; started once more if
    it could not reach the X server, or (given the line ``started`` the test's own code
    prints first) if it hung before printing it: the harness's failures, before any plug-in
    code ran (Krita's start hung once in this root, creating its resource database)."""
    for attempt in range(2):
        try:
            proc = trixie_root.run_in_root([*xvfb(screen), *argv], env=env, timeout=timeout)
        except trixie_root.RanTooLong as exc:
            if attempt or started is None or started in exc.stdout:
                raise
            continue
        if not any(said in proc.stderr for said in NO_DISPLAY):
            break
    return proc


@dataclass
class HostHome:
    outside: Path  # the HOME folder as seen from this machine
    inside: str  # the same folder inside the root

    def plugin(self, host: str, inside: bool = False) -> Path:
        """The installed plug-in's folder (the installer's plugin_folder), as seen from this
        machine or, with ``inside``, from inside the root."""
        base = Path(self.inside) if inside else self.outside
        return plugin_folder(host, base / (GIMP_PLUGINS if host == "gimp" else KRITA_RESOURCES))

    def run_gimp(self, script: str, env: Mapping[str, str], gui: bool = False,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one batch script of scripts/ in gimp-console-3.0 (with ``gui``: in the full
        GIMP under Xvfb); the scripts can import each other."""
        scripts = f"{self.inside}/scripts"
        batch = ["--batch-interpreter=python-fu-eval",
                 "-b", f'import sys; sys.path.insert(0, "{scripts}"); '
                 f'exec(open("{scripts}/{script}").read())', "--quit"]
        env = {"HOME": self.inside, "DD_PLUGIN_DIR": str(self.plugin("gimp", inside=True)),
               **env}
        if gui:
            return run_under_xvfb("1280x900", ["gimp-3.0", *batch], env, timeout)
        return trixie_root.run_in_root(["gimp-console-3.0", "-i", *batch], env=env,
                                       timeout=timeout)

    def run_krita_gui(self, screen: str, env: Mapping[str, str], timeout: float = 400,
                      started: str | None = None) -> subprocess.CompletedProcess[str]:
        """Krita's real window under Xvfb, until Krita quits (``started``: see
        run_under_xvfb)."""
        # a SAFE ASSERT is printed, never a modal "Internal Error" box nobody can answer
        # (Krita builds that do not hide them show it)
        return run_under_xvfb(screen, ["krita", "--nosplash"],
                              {"HOME": self.inside, "KRITA_NO_ASSERT_MSG": "1", **env},
                              timeout, started)

    def add_krita_plugin(self, name: str) -> None:
        """Put the test-only Krita plug-in krita_scripts/NAME (with NAME.desktop) next to the
        installed ones and enable it in kritarc."""
        pykrita = self.plugin("krita").parent
        shutil.copytree(HOSTS / "krita_scripts" / name, pykrita / name, dirs_exist_ok=True)
        shutil.copy(HOSTS / "krita_scripts" / f"{name}.desktop", pykrita)
        kritarc.enable(self.outside / KRITARC, "python", f"enable_{name}")


@contextlib.contextmanager
def host_home(name: str, scripts: str) -> Iterator[HostHome]:
    """A fresh HOME in the root for this test process (a CI run and a developer's run may
    share the root) with tests/hosts/``scripts`` copied to its scripts/; removed after."""
    with trixie_root.host_dir(f"deepdream-{name}-test-{os.getpid()}") as (outside, inside):
        shutil.copytree(HOSTS / scripts, outside / "scripts")
        try:
            yield HostHome(outside, inside)
        finally:
            shutil.rmtree(outside, ignore_errors=True)


def install_plugin(host: str, folder: Path, *options: str) -> None:
    """``python install.py plugin HOST FOLDER OPTIONS...``, as a user would."""
    subprocess.run([sys.executable, str(REPO / "install.py"), "plugin", host, str(folder),
                    *options], check=True, capture_output=True, text=True)


def facts(proc: subprocess.CompletedProcess[str], key: str = "case") -> dict[str, dict]:
    """The ``FACT {json}`` lines a GIMP batch script printed, by their ``key``."""
    found = {}
    for line in proc.stdout.splitlines():
        if line.startswith("FACT "):
            fact = json.loads(line[5:])
            found[fact[key]] = fact
    assert found, f"no facts from GIMP (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return found
