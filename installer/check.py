"""`install.py --check`: a diagnosis a user can paste into a bug report."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from deepdream_protocol import launcher

from . import daemon_ctl, plugin_files
from .hosts import HostTarget
from .manifest import Manifest
from .torch_choice import PROBE
from .venv import describe_device, python_in
from .venv_probes import WEIGHTS, run_probe

#: what mends every problem --check finds (each one's line says what is wrong): said once
RERUN = "run: python install.py"


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def line(self, label: str, value: str) -> None:
        print(f"{label:<14} {value}")

    def problem(self, label: str, value: str, fix: str = RERUN) -> None:
        self.line(label, f"PROBLEM: {value}")
        self.problems.append(fix)


def _venv(r: Report, prefix: Path) -> bool:
    py = python_in(prefix)
    if not py.exists():
        r.problem("venv", f"none at {prefix}")
        return False
    r.line("venv", str(prefix))
    info = run_probe(py, PROBE)
    if "error" in info or not info.get("version"):
        r.problem("torch", info.get("error", "does not import"))
        return False
    r.line("torch", describe_device(info))
    weights = run_probe(py, WEIGHTS)
    if "error" in weights:
        r.problem("package", weights["error"])
        return False
    if weights.get("present"):
        r.line("weights", f"{weights['model']}: {weights['path']}")
    else:
        # not broken: the daemon downloads them on first use when online
        r.line("weights", f"{weights['model']}: not downloaded yet; offline, fetch "
                          f"{weights.get('url')} and save it as {weights['path']}")
    return True


def _daemon(r: Report, prefix: Path, venv_ok: bool) -> None:
    try:
        cfg = launcher.read_config()
    except ValueError as e:
        r.problem("config", str(e))
        return
    if not cfg:
        r.problem("config", f"missing ({launcher.config_path()})")
    else:
        r.line("config", f"{launcher.config_path()}: endpoint {cfg.get('endpoint')}")
    if not venv_ok:
        return
    answer = daemon_ctl.hello(prefix)
    if answer.get("ok"):
        hello = answer.get("hello") or {}
        r.line("daemon", f"{hello.get('server', 'a daemon')} answers at {answer.get('endpoint')} "
                         f"(protocol {hello.get('version')}, devices {hello.get('devices')})")
    else:
        # not broken: the plug-ins start it with the config's command when needed
        r.line("daemon", f"not running ({answer.get('error')}); the plug-ins start it on use, "
                         f"or: {' '.join(daemon_ctl.serve_command(prefix))}")


def _hosts(r: Report, hosts: list[HostTarget], manifest: Manifest) -> None:
    version = plugin_files.project_version()
    for t in hosts:
        folder = plugin_files.plugin_folder(t.host, t.folder)
        label = f"{t.host} ({t.variant})"
        if t.unstarted:
            r.problem(label, t.UNSTARTED, "start GIMP 3 once, then run install.py again")
            continue
        installed = plugin_files.read_manifest(folder)
        if installed is None:
            r.problem(label, f"plug-in not installed in {folder}")
        elif installed.get("unfinished"):
            r.problem(label, f"the plug-in in {folder} was not finished (an install cut "
                             "short)")
        elif installed.get("version") != version:
            r.problem(label, f"plug-in {installed.get('version')} in {folder} is older than "
                             f"{version}")
        else:
            r.line(label, f"plug-in {version} in {folder}; {installed.get('transport')}")
    if not hosts:
        r.line("hosts", "no Krita or GIMP 3 found")
    covered = {plugin_files.plugin_folder(t.host, t.folder) for t in hosts}
    for folder in manifest.plugins:
        if Path(folder) not in covered and not plugin_files.read_manifest(Path(folder)):
            r.problem("plug-in", f"{folder} was installed but is gone")


def run(prefix: Path, manifest: Manifest, hosts: list[HostTarget]) -> int:
    r = Report()
    r.line("deepdream", plugin_files.project_version())
    r.line("system", f"{platform.system()} {platform.release()} {platform.machine()}, "
                     f"install.py on Python {sys.version.split()[0]}")
    ok = _venv(r, prefix)
    _daemon(r, prefix, ok)
    _hosts(r, hosts, manifest)
    if r.problems:
        print("\nbroken; to fix:")
        for fix in dict.fromkeys(r.problems):
            print(f"  - {fix}")
        return 1
    print("\nall good")
    return 0
