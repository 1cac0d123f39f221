"""Small scripts run with the venv's python: they need torch, pyzmq and msgpack, which the
Python running install.py may not have. Each prints one JSON line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

DAEMON_HELLO = r"""
import json, sys
from deepdream_protocol.client import Client
out = {"ok": False}
try:
    c = Client(timeout=float(sys.argv[1]))
    out["endpoint"] = c.endpoint
    try:
        out.update(ok=True, hello=c.hello())
    finally:
        c.close()
except Exception as e:
    out.update(ok=False, error=f"{type(e).__name__}: {e}")
print(json.dumps(out, default=str))
"""

LOG_FILE = r"""
import json
from deepdream.userdirs import default_log_file
print(json.dumps({"log": str(default_log_file())}))
"""

WEIGHTS = r"""
import json
from deepdream.models.archs import ARCHS
from deepdream.models.registry import DEFAULT_MODEL, get_spec
from deepdream.models.weights import torchvision_checkpoint
spec = get_spec(DEFAULT_MODEL)
out = {"model": DEFAULT_MODEL}
if spec.weights == "torchvision":
    url, path = torchvision_checkpoint(ARCHS[spec.arch])
    out.update(url=url, path=str(path), present=path.exists())
else:
    out.update(path=spec.weights, present=spec.weights == "random" or
               __import__("os").path.exists(spec.weights))
print(json.dumps(out))
"""


def run_probe(py: Path, script: str, *args: str, timeout: float = 120) -> dict:
    """The probe's JSON answer, or {"error": ...} when it could not run."""
    try:
        r = subprocess.run([str(py), "-c", script, *args], capture_output=True, text=True,
                           timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    lines = r.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (ValueError, IndexError):
        err = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": err}
