"""`python install.py`: everything from a fresh machine to a running daemon and plug-ins."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from deepdream_protocol import launcher, zmtp

from . import check, daemon_ctl, plugin_files, wheels
from .hosts import HostTarget, Probe, custom_target, detect
from .kritarc import remove_empty_dirs
from .machine import Machine, this_machine
from .manifest import Manifest
from .plugin_files import REPO, InstallError
from .test_cmd import prepare
from .torch_choice import TorchChoiceError
from .venv import python_in, refuse_foreign, script_in
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
    p.add_argument("--stop", action="store_true",
                   help="stop this install's daemon (the one install.py started, or one a "
                        "plug-in started from this venv)")


def probe_for(m: Machine) -> Probe:
    def system_python() -> str | None:
        exe = shutil.which("python3", path="/usr/bin:/bin")
        if not exe:
            return None
        r = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    return Probe(m.system, m.arch, m.home, m.env, system_python=system_python)


def targets(args: argparse.Namespace, m: Machine,
            manifest: Manifest | None = None) -> list[HostTarget]:
    """The named folders (--krita-dir/--gimp-dir), else every Krita and GIMP found plus the
    plug-ins the install manifest lists (a re-run upgrades them, --check checks them)."""
    p = probe_for(m)
    named = ([custom_target("krita", d.expanduser().resolve(), p, args.host_python)
              for d in args.krita_dir]
             + [custom_target("gimp", d.expanduser().resolve(), p, args.host_python)
                for d in args.gimp_dir])
    found = [t for t in detect(p) if not any(n.host == t.host for n in named)]
    out = named + found
    if manifest is not None and not named:
        seen = {(t.host, _real(t.folder)) for t in out}
        out += [t for t in installed_targets(manifest, p) if (t.host, _real(t.folder)) not in seen]
    return out


def _real(folder: Path) -> Path:
    return Path(os.path.realpath(folder))


def _host(plugin: Path) -> str:
    return "gimp" if plugin.name == plugin_files.GIMP_NAME else "krita"


def _host_folder(plugin: Path) -> Path:
    """The folder a plug-in was installed into (GIMP: plug-ins folder; Krita: resource
    folder), from the plug-in's own folder."""
    return plugin.parent if _host(plugin) == "gimp" else plugin.parent.parent


def installed_targets(manifest: Manifest, p: Probe) -> list[HostTarget]:
    """The plug-ins install.py put into folders it was given, as targets to install again
    with the transport they have (skipping those whose folder is gone)."""
    out = []
    for plugin in map(Path, manifest.plugins):
        try:
            info = plugin_files.read_manifest(plugin) or {}
        except InstallError:
            info = {}
        host = _host(plugin)
        folder = _host_folder(plugin)
        if not (info or folder.is_dir()):
            continue  # the whole folder is gone: nothing to upgrade there
        rc = info.get("kritarc") or {}
        base = custom_target(host, folder, p, None)  # (what a --krita-dir/--gimp-dir gets)
        kritarc = Path(rc["file"]) if rc.get("file") else base.kritarc
        saved = info.get("target") or {}
        if saved.get("transport") in ("wheels", "system", "stdlib"):
            t = HostTarget(host, saved.get("variant") or "custom", folder, saved["transport"],
                           tuple(saved.get("pythons") or ()), kritarc)
        else:  # installed before plug-ins kept their target: read the transport's text
            m = re.search(r"wheels for Python ([\d., ]+)$", str(info.get("transport") or ""))
            pythons = tuple(v.strip() for v in m.group(1).split(",")) if m else ()
            t = (HostTarget(host, "custom", folder, "wheels", pythons, kritarc) if m else
                 HostTarget(host, "custom", folder, base.transport, base.pythons, kritarc))
        out.append(t)
    return out


def forget_vanished(manifest: Manifest) -> None:
    """Drop from the manifest the plug-ins whose whole folder is gone (removed by hand)."""
    for plugin in list(map(Path, manifest.plugins)):
        if not (plugin.exists() or _host_folder(plugin).is_dir()):
            manifest.plugins.remove(str(plugin))
            print(f"forgetting the plug-in in {plugin}: its folder is gone")
    manifest.save()


def install_plugins(py: Path, m: Machine, args: argparse.Namespace,
                    manifest: Manifest) -> tuple[list[str], list[str]]:
    """Install into every target; return the errors (one line each) of those that failed
    and the hosts ("krita", "gimp") that got a plug-in."""
    errors: list[str] = []
    done_hosts: list[str] = []
    if not (args.krita_dir or args.gimp_dir):
        forget_vanished(manifest)
    hosts = targets(args, m, manifest)
    if not hosts:
        print("no Krita or GIMP 3 found; use --krita-dir/--gimp-dir if they live elsewhere")
    for t in hosts:
        if t.unstarted:  # (a folder made now would keep GIMP from bringing over settings)
            print(f"note: {t.describe()}")
            continue
        try:
            with tempfile.TemporaryDirectory(prefix="deepdream-wheels-") as tmp:
                got = wheels.fetch(py, t, m.system, m.arch, Path(tmp))

                def fill(vendor: Path, got: list[Path] = got, t: HostTarget = t) -> None:
                    wheels.unpack(got, vendor, pure_only=t.transport == "stdlib")

                target = {"variant": t.variant, "transport": t.transport,
                          "pythons": list(t.pythons)}
                if t.host == "gimp":
                    done = plugin_files.install_gimp(t.folder, fill, t.transport_text(),
                                                     target=target)
                else:
                    assert t.kritarc is not None
                    done = plugin_files.install_krita(t.folder, t.kritarc, fill,
                                                      t.transport_text(), target=target)
        except (InstallError, OSError) as e:
            errors.append(f"{t.host} ({t.variant}) in {t.folder}: {e}")
            continue
        manifest.add_plugin(done.folder)
        manifest.save()
        done_hosts.append(t.host)
        print(f"installed {t.describe()}")
    return errors, done_hosts


def write_config(prefix: Path, manifest: Manifest) -> Path:
    path = launcher.config_path()
    if not manifest.config:
        manifest.created_config = not path.exists()
    try:  # (the endpoint there is the user's: a daemon on another computer, another port)
        cfg = launcher.write_config(None, daemon_ctl.serve_command(prefix), path)
        endpoint = launcher.read_config(cfg)["endpoint"]
    except ValueError as e:  # a config that does not parse: say so in one line
        raise InstallError(str(e)) from None
    manifest.config = str(cfg)
    manifest.save()
    kept = "" if endpoint == launcher.DEFAULT_ENDPOINT else f" (keeping its endpoint {endpoint})"
    print(f"wrote the plug-in config {cfg}{kept}")
    return cfg


def leave_previous(previous: Path, prefix: Path, created: bool) -> None:
    """An install moved from ``previous`` to another --prefix: the old venv's daemon
    (started by install.py or by a plug-in with the old config) would go on serving the old
    code at the same endpoint, so it is stopped; the old venv is no longer tracked, so the
    user hears where it is.  (``prefix``'s Python asks the endpoint if the old one is gone.)"""
    result = daemon_ctl.stop_daemon(Manifest.pid_file(), [previous, prefix])
    if result.stopped:
        print(f"stopped the daemon of the previous install in {previous}")
    elif result.answered:  # one install.py leaves alone, or cannot stop: say why
        print(result.message)
    if created and Path(previous, "pyvenv.cfg").exists():
        print(f"note: the virtual environment {previous} that the previous install made is "
              "no longer used; delete it when you like (--uninstall removes only the new one)")


def start_daemon(prefix: Path) -> None:
    endpoint = launcher.resolve_endpoint()
    if not zmtp.on_this_computer(endpoint):  # one started here would not answer there
        print(f"the plug-ins talk to a daemon on another computer ({endpoint}); none is "
              "started here")
        return
    pid_file = Manifest.pid_file()
    if daemon_ctl.stop(pid_file, prefixes=[prefix]):
        print("stopped the daemon started by the previous install")
    already = daemon_ctl.hello(prefix)
    if already.get("ok"):
        pid = (already.get("hello") or {}).get("pid")
        if isinstance(pid, int) and daemon_ctl.runs_from(pid, [prefix]):
            print(f"a daemon from this install (pid {pid}, started by a plug-in) already "
                  f"answers at {already.get('endpoint')}; leaving it running (to run upgraded "
                  "code: python install.py --stop; a plug-in starts it again when needed)")
        else:
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


def chosen_prefix(given: Path | None, manifest: Manifest) -> Path:
    """--prefix, else the venv the last install used (its commands go on with it rather than
    making another), else .venv beside install.py."""
    if given is None:
        given = Path(manifest.prefix) if manifest.prefix else REPO / ".venv"
    return given.expanduser().resolve()


def install(args: argparse.Namespace, prefix: Path, manifest: Manifest) -> int:
    m = this_machine()
    if args.plugins_only:
        # pip (for the hosts' wheels) from the venv, else from the Python running us
        py = python_in(prefix) if python_in(prefix).exists() else Path(sys.executable)
    else:
        if manifest.prefix != str(prefix):
            refuse_foreign(prefix)  # (before it is recorded as the install's venv)
            if manifest.prefix:
                leave_previous(Path(manifest.prefix), prefix, manifest.created_venv)
            # recorded before the venv is made: a run that fails midway (a download cut
            # short) leaves a venv that --uninstall must still know it made
            manifest.prefix = str(prefix)
            manifest.created_venv = not python_in(prefix).exists()
            manifest.save()
        py = prepare(prefix, args.torch, [])
    manifest.save()
    errors, hosts = ([], []) if args.no_plugins else install_plugins(py, m, args, manifest)
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
    for line in final_lines(prefix, hosts):
        print(line)
    return 0


def final_lines(prefix: Path, hosts: list[str]) -> list[str]:
    """What install.py ends with: where the plug-ins' menus are (only for the hosts that got
    one) and the command line's full path (the venv is not on PATH)."""
    where = {"krita": "Krita (restart it, then Settings > Dockers > DeepDream)",
             "gimp": "GIMP (Filters > Artistic > DeepDream...)"}
    got = [where[h] for h in ("krita", "gimp") if h in hosts]
    lines = [f"done: dream in {' or '.join(got)}" if got else "done"]
    cli = script_in(prefix, "deepdream")
    if cli.exists():
        lines.append(f"command line: {_quoted(str(cli))} dream IN -o OUT   (not on PATH; "
                     f"{_quoted(str(cli))} --help lists the commands)")
    return lines


def _quoted(path: str) -> str:
    if os.name == "nt":
        return f'"{path}"' if " " in path else path
    return shlex.quote(path)


def uninstall(prefix: Path) -> int:
    if not Manifest.path().exists():
        print(f"nothing to uninstall: no {Manifest.path()} (install.py keeps it there)")
        return 0
    manifest = Manifest.load()
    venvs = [Path(manifest.prefix)] if manifest.prefix else []
    result = daemon_ctl.stop_daemon(Manifest.pid_file(), [*venvs, prefix])
    if result.answered:  # (stopped, or one answers that install.py leaves alone: say why)
        print(result.message)
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
        manifest = Manifest.load()
        prefix = chosen_prefix(args.prefix, manifest)
        if args.check:
            return check.run(prefix, manifest, targets(args, this_machine(), manifest))
        if args.stop:
            venvs = [Path(manifest.prefix)] if manifest.prefix else []
            print(daemon_ctl.stop_daemon(Manifest.pid_file(), [prefix, *venvs]).message)
            return 0
        if args.uninstall:
            return uninstall(prefix)
        return install(args, prefix, manifest)
    except (InstallError, TorchChoiceError, OSError) as e:
        print(f"install.py: error: {e}")
        return 1
