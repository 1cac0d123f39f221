"""Build, cache and enter a Debian 13 (trixie) root holding real GIMP 3 and Krita.

Debian 12 ships only GIMP 2.10, so the host tests run the real programs in a
debootstrapped trixie root entered with chroot.  The root is built once (about two
minutes) and cached; a marker file records the package set it was built with, so a
changed list rebuilds it.  A file lock keeps two test processes from building at once.

Usable as a script too: ``python tests/hosts/trixie_root.py`` builds (or checks) it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

PACKAGES = (
    "gimp python3-gi gir1.2-gimp-3.0 python3-zmq python3-msgpack python3-numpy "
    "krita python3-pyqt5 python3-pyqt6 "  # (PyQt6: the plug-in's Qt side as Krita 6 runs it)
    "xvfb xauth xdotool x11-apps imagemagick fonts-dejavu-core procps"
).split()
HOST_PACKAGES = ("debootstrap", "xvfb")
ROOT = Path(os.environ.get("DEEPDREAM_HOST_ROOT", "/var/cache/deepdream-tests/trixie"))
_MARKER = ".deepdream-root-ok"
_MOUNTS = ("proc", "dev", "dev/pts", "sys")


def missing_requirement() -> str | None:
    """Why the host tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "host tests need root (debootstrap and chroot)"
    if shutil.which("debootstrap") is None and shutil.which("apt-get") is None:
        return "host tests need debootstrap (or apt-get to install it)"
    return None


def _digest() -> str:
    return hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:16]


def _log(msg: str) -> None:
    print(f"[trixie-root] {msg}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], **kw: object) -> None:
    _log(" ".join(cmd))
    subprocess.run(cmd, check=True, **kw)  # type: ignore[arg-type]


def _ensure_host_tools() -> None:
    missing = [p for p in HOST_PACKAGES if shutil.which(p if p != "xvfb" else "Xvfb") is None]
    if missing:
        _run(["apt-get", "update", "-q"])
        _run(["apt-get", "install", "-y", "-q", *missing],
             env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/mounts") as f:
        return any(line.split()[1] == target for line in f)


def mount(root: Path = ROOT) -> None:
    """Bind the kernel file systems the programs need (idempotent)."""
    for sub in _MOUNTS:
        target = root / sub
        target.mkdir(parents=True, exist_ok=True)
        if not _mounted(target):
            src = "/" + sub
            if sub == "proc":
                subprocess.run(["mount", "-t", "proc", "proc", str(target)], check=True)
            else:
                subprocess.run(["mount", "--bind", src, str(target)], check=True)


def umount(root: Path = ROOT) -> None:
    for sub in reversed(_MOUNTS):
        target = root / sub
        if target.exists() and _mounted(target):
            subprocess.run(["umount", "-l", str(target)], check=False)


def ensure_root(root: Path = ROOT) -> Path:
    """Return a ready root, building it first if it is absent or stale."""
    reason = missing_requirement()
    if reason:
        raise RuntimeError(reason)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / (root.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = root / _MARKER
        if marker.exists() and marker.read_text().strip() == _digest():
            mount(root)
            return root
        _ensure_host_tools()
        if not (root / "usr/bin/apt-get").exists():
            if root.exists():
                umount(root)
                shutil.rmtree(root)
            _run(["debootstrap", "--variant=minbase", "trixie", str(root)])
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        mount(root)
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8"}
        _run(["chroot", str(root), "apt-get", "update", "-q"], env=env)
        _run(["chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends",
              *PACKAGES], env=env)
        _run(["chroot", str(root), "apt-get", "clean"], env=env)
        marker.write_text(_digest() + "\n")
        return root


def run_in_root(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    root: Path = ROOT,
    timeout: float = 600,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv inside the root (chroot) and capture its output as text.  A run that
    outlasts ``timeout`` fails with the end of what it printed (where a host hung)."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8",
            "HOME": "/root"}
    base.update(env or {})
    # its own process group, so that a timeout ends all of it (xvfb-run's Xvfb and the
    # GUI program under it are grandchildren, left running by a kill of the child alone)
    with subprocess.Popen(["chroot", str(root), *argv], env=base, text=True,
                          stdin=None if input is None else subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise RanTooLong(argv, timeout, out, err) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class RanTooLong(AssertionError):
    """A run in the root that outlasted its timeout (killed), with what it printed."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: str, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} ran past {timeout:g} s; its output last:\n"
                         f"{stdout[-3000:]}\n-- stderr --\n{stderr[-3000:]}")
        self.stdout, self.stderr = stdout, stderr


@contextlib.contextmanager
def host_dir(name: str, root: Path = ROOT) -> Iterator[tuple[Path, str]]:
    """A fresh folder inside the root: (path on this machine, path inside the root)."""
    inside = f"/tmp/{name}"
    outside = root / inside.lstrip("/")
    if outside.exists():
        shutil.rmtree(outside)
    outside.mkdir(parents=True)
    yield outside, inside


if __name__ == "__main__":
    print(ensure_root())
