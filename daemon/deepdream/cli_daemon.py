"""The daemon's side of the command line: ``serve``, ``keygen`` and ``dream --daemon``.

Kept apart from cli.py, which holds the in-process commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

_LAYOUT_BY_CHANNELS = {1: "G", 2: "GA", 3: "RGB", 4: "RGBA"}


def add_daemon_commands(sub: Any) -> None:
    """Register ``serve`` and ``keygen`` on the CLI's subparsers."""
    from deepdream.cli import add_precision_option
    from deepdream.security import default_key_dir
    from deepdream.server import add_serve_arguments

    p = sub.add_parser(
        "serve", help="run the daemon the Krita and GIMP plug-ins talk to",
        description="Keep the models warm and dream jobs sent over ZeroMQ by the plug-ins "
        "and 'deepdream dream --daemon'. Listens on loopback only, unless --bind names "
        "another address and --curve gives CurveZMQ keys. Stops on Ctrl+C or SIGTERM.")
    add_serve_arguments(p)
    add_precision_option(p)
    p.add_argument("--models-file", metavar="TOML",
                   help="extra models file (also DEEPDREAM_MODELS_FILE and the config folder)")
    p.set_defaults(run=run_serve)

    p = sub.add_parser(
        "keygen", help="make CurveZMQ keys for a daemon reachable from other computers",
        description="Without --client: make the daemon's key pair in DIR. With --client NAME: "
        "make a key pair for one client computer and allow it in (copy NAME.key_secret and "
        "server.key into one folder on that computer, and name it in DEEPDREAM_CURVE_DIR or "
        "as curve_dir in its plug-in config). Existing keys are never overwritten.")
    p.add_argument("--dir", type=Path, default=default_key_dir(),
                   help=f"key folder (default {default_key_dir()})")
    p.add_argument("--client", metavar="NAME", help="make and allow a client key pair")
    p.set_defaults(run=run_keygen)


def run_serve(args: argparse.Namespace) -> int:
    from deepdream.server import serve_main

    return serve_main(args)


def run_keygen(args: argparse.Namespace) -> int:
    from deepdream.security import keygen

    try:
        made = keygen(args.dir, args.client)
    except (OSError, ValueError) as exc:
        print(f"deepdream keygen: {exc}", file=sys.stderr)
        return 1
    for path in made:
        print(path)
    return 0


def dream_via_daemon(endpoint: str, settings: dict[str, Any], image: np.ndarray,
                     mask: np.ndarray | None, progress: Any = None,
                     models_file: str | None = None,
                     specs: dict[str, Any] | None = None) -> np.ndarray:
    """Dream ``image`` (the engine's float sRGB array) in a running daemon.

    The pixels travel as float32 sRGB, exactly what the engine would get in-process, so the
    same seed gives the same result.  Daemon errors become one-line CLI errors.
    ``models_file`` (--models-file): when the dream's model is one it declares, the daemon
    must read that model from the same file (``check_daemon_models``; ``specs``: the
    file's models, when the caller has read them).
    """
    from deepdream_protocol.client import Client, DaemonError
    from deepdream_protocol.pixels import PixelFormat

    from deepdream.cli import CliError

    height, width, channels = image.shape
    fmt = PixelFormat(_LAYOUT_BY_CHANNELS[channels], "f32", "srgb")
    pixels = np.ascontiguousarray(image, dtype="<f4").tobytes()
    mask_bytes = None if mask is None else np.ascontiguousarray(mask, dtype="<f4").tobytes()

    def on_progress(_job: Any, info: dict[str, Any]) -> None:
        if progress is not None and info.get("octave"):
            progress(SimpleNamespace(**{k: info[k] for k in
                                        ("fraction", "octave", "octaves", "step", "steps")}))

    try:
        with Client(endpoint or None) as client:
            client.hello()
            if models_file:
                check_daemon_models(client.catalog(), client.endpoint, settings, models_file,
                                    specs)
            data = client.dream(settings, pixels, width, height, fmt, mask=mask_bytes,
                                mask_dtype="f32", on_progress=on_progress)
    except DaemonError as exc:
        raise CliError(f"daemon: {exc}") from None
    return np.frombuffer(data, dtype="<f4").reshape(height, width, channels).copy()


def check_daemon_models(catalog: dict[str, Any], endpoint: str, settings: dict[str, Any],
                        models_file: str, specs: dict[str, Any] | None = None) -> None:
    """CliError unless a daemon with ``catalog`` dreams ``settings``' model as the models
    file the user named (--models-file) declares it: a daemon reads its own models files
    (deepdream serve --models-file), and the file cannot travel to it.  A model the file
    does not declare is the daemon's to give, as it would be this process's."""
    from deepdream.cli import CliError
    from deepdream.engine import DreamSettings
    from deepdream.models import registry

    name = DreamSettings.from_dict(settings).model
    ours = (registry.available(models_file) if specs is None else specs).get(name)
    named = Path(models_file).expanduser()
    if ours is None or ours.source != str(named):
        return
    theirs = (catalog.get("models") or {}).get(name)
    source = theirs.get("source") if isinstance(theirs, dict) else None
    try:
        same = source is not None and Path(source).samefile(named)
    except OSError:
        same = False
    if same:
        return
    where = (f"has no model {name!r}" if theirs is None else
             f"reads model {name!r} from {source or 'elsewhere'}")
    raise CliError(f"--models-file {models_file}: the daemon at {endpoint} {where}, and a "
                   f"daemon reads only its own models files; start it with 'deepdream serve "
                   f"--models-file {named.resolve()}', or leave out --models-file to use the "
                   "daemon's models")
