"""`python install.py`: everything from a fresh machine to a running daemon and plug-ins."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import check, daemon_ctl, plugin_files, wheels
from .hosts import HostTarget, Probe, custom_target, detect
from .kritarc import remove_empty_dirs
from .machine import Machine, this_machine
from .manifest import Manifest, launcher
from .plugin_files import REPO, InstallError
from .test_cmd import prepare
from .torch_choice import TorchChoiceError
from .venv import python_in
from .venv_probes import WEIGHTS, run_probe

sys.path.insert(0, str(REPO / "daemon"))
from deepdream.userdirs import compile_cache_dir  # noqa: E402  (standard library only)


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-plugins", action="store_true", help="do not install the plug-ins")
    p.add_argument("--krita-dir", type=Path, action="append", default=[], metavar="DIR",
                   help="install the Krita plug-in into this resource folder (the one that "
                        "holds pykrita/) instead of the detected ones; repeatable")
    p.add_argument("--gimp-dir", type=Path, action="append", default=[], metavar="DIR",
                   help="install the GIMP plug-in into this plug-ins folder instead of the "
                        "detected ones; repeatable")
    p.add_argument("--host-python", metavar="X.Y",
                   help="give the --krita-dir/--gimp-dir plug-ins pyzmq and msgpack wheels "
                        "for this Python version")
    p.add_argument("--plugins-only", action="store_true",
                   help="only (re)install the plug-ins and their config; leave the venv as it is")
    p.add_argument("--no-start", action="store_true", help="do not start the daemon")
    p.add_argument("--uninstall", action="store_true",
                   help="stop the daemon and remove what install.py installed (plug-ins, "
                   "kritarc entry, config, the venv it made) and the compiled dream steps")
    p.add_argument("--check", action="store_true",
                   help="print a diagnosis for a bug report; exit non-zero when broken")
    p.add_argument("--stop", action="store_true", help="stop the daemon install.py started")


def probe_for(m: Machine) -> Probe:
    def system_python() -> str | None:
        exe = shutil.which("python3", path="/usr/bin:/bin")
        if not exe:
            return None
        r = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    return Probe(m.system, m.arch, m.home, m.env, system_python=system_python)


def targets(args: argparse.Namespace, m: Machine) -> list[HostTarget]:
    p = probe_for(m)
    named = ([custom_target("krita", d.expanduser().resolve(), p, args.host_python)
              for d in args.krita_dir]
             + [custom_target("gimp", d.expanduser().resolve(), p, args.host_python)
                for d in args.gimp_dir])
    found = [t for t in detect(p) if not any(n.host == t.host for n in named)]
    return named + found


def install_plugins(py: Path, m: Machine, args: argparse.Namespace,
                    manifest: Manifest) -> list[str]:
    """Install into every target; return the errors (one line each) of those that failed."""
    errors = []
    hosts = targets(args, m)
    if not hosts:
        print("no Krita or GIMP 3 found; use --krita-dir/--gimp-dir if they live elsewhere")
    for t in hosts:
        try:
            with tempfile.TemporaryDirectory(prefix="deepdream-wheels-") as tmp:
                got = wheels.fetch(py, t, m.system, m.arch, Path(tmp))

                def fill(vendor: Path, got: list[Path] = got, t: HostTarget = t) -> None:
                    wheels.unpack(got, vendor, pure_only=t.transport == "stdlib")

                if t.host == "gimp":
                    done = plugin_files.install_gimp(t.folder, fill, t.transport_text())
                else:
                    assert t.kritarc is not None
                    done = plugin_files.install_krita(t.folder, t.kritarc, fill,
                                                      t.transport_text())
        except (InstallError, OSError) as e:
            errors.append(f"{t.host} ({t.variant}) in {t.folder}: {e}")
            continue
        manifest.add_plugin(done.folder)
        manifest.save()
        print(f"installed {t.describe()}")
    return errors


def write_config(prefix: Path, manifest: Manifest) -> Path:
    path = launcher.config_path()
    if not manifest.config:
        manifest.created_config = not path.exists()
    cfg = launcher.write_config(launcher.DEFAULT_ENDPOINT, daemon_ctl.serve_command(prefix), path)
    manifest.config = str(cfg)
    manifest.save()
    print(f"wrote the plug-in config {cfg}")
    return cfg


def start_daemon(prefix: Path) -> None:
    pid_file = Manifest.pid_file()
    if daemon_ctl.stop(pid_file):
        print("stopped the daemon started by the previous install")
    already = daemon_ctl.hello(prefix)
    if already.get("ok"):
        print(f"a daemon already answers at {already.get('endpoint')}; leaving it running "
              "(it was not started by install.py; restart it to run upgraded code)")
        return
    print("starting the daemon (loading the default model; the first start downloads it)")
    pid = daemon_ctl.start(prefix, pid_file)
    print(f"daemon running (pid {pid}); log: {daemon_ctl.log_file(prefix)}\n"
          "stop it with: python install.py --stop")
    weights = run_probe(python_in(prefix), WEIGHTS)
    if weights.get("present") is False:
        print(f"note: the {weights['model']} weights are not on disk yet; the daemon downloads "
              f"them now (this needs the network). Offline, fetch {weights.get('url')} and "
              f"save it as {weights['path']}")


def install(args: argparse.Namespace) -> int:
    m = this_machine()
    manifest = Manifest.load()
    prefix = args.prefix.expanduser().resolve()
    if args.plugins_only:
        # pip (for the hosts' wheels) from the venv, else from the Python running us
        py = python_in(prefix) if python_in(prefix).exists() else Path(sys.executable)
    else:
        fresh = not python_in(prefix).exists()
        py = prepare(prefix, args.torch, [])
        if manifest.prefix != str(prefix):
            manifest.prefix, manifest.created_venv = str(prefix), fresh
    manifest.save()
    errors = [] if args.no_plugins else install_plugins(py, m, args, manifest)
    write_config(prefix, manifest)
    if not (args.no_start or args.plugins_only):
        try:
            start_daemon(prefix)
        except InstallError as e:
            errors.append(f"daemon: {e}")
    for e in errors:
        print(f"install.py: error: {e}")
    if errors:
        return 1
    print("done: open Krita or GIMP and dream (Krita: restart it, then Settings > Dockers > "
          "DeepDream; GIMP: Filters > Artistic > DeepDream...)")
    return 0


def uninstall() -> int:
    if not Manifest.path().exists():
        print(f"nothing to uninstall: no {Manifest.path()} (install.py keeps it there)")
        return 0
    manifest = Manifest.load()
    if daemon_ctl.stop(Manifest.pid_file()):
        print("stopped the daemon")
    compiled = compile_cache_dir()  # (`serve --compile`'s; a folder the user chose stays)
    if compiled.is_dir():
        shutil.rmtree(compiled, ignore_errors=True)
        remove_empty_dirs([compiled.parent])
        print(f"removed the compiled dream steps in {compiled}")
    for folder in reversed(manifest.plugins):
        if plugin_files.uninstall(Path(folder)):
            print(f"removed the plug-in in {folder}")
    if manifest.config and manifest.created_config:
        Path(manifest.config).unlink(missing_ok=True)
    if manifest.created_venv and manifest.prefix and Path(manifest.prefix, "pyvenv.cfg").exists():
        shutil.rmtree(manifest.prefix)
        print(f"removed the virtual environment {manifest.prefix}")
    Manifest.path().unlink(missing_ok=True)
    # folders made for the config, if nothing else of the user's is there
    remove_empty_dirs(map(Path, manifest.created_dirs or [str(Manifest.path().parent)]))
    print("uninstalled")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        if args.host_python and not re.fullmatch(r"3\.\d+", args.host_python):
            raise InstallError(f"--host-python {args.host_python}: give a version like 3.13")
        if args.check:
            return check.run(args.prefix.expanduser().resolve(), Manifest.load(),
                             targets(args, this_machine()))
        if args.stop:
            stopped = daemon_ctl.stop(Manifest.pid_file())
            print("stopped the daemon" if stopped else "no daemon started by install.py runs")
            return 0
        if args.uninstall:
            return uninstall()
        return install(args)
    except (InstallError, TorchChoiceError, OSError) as e:
        print(f"install.py: error: {e}")
        return 1
