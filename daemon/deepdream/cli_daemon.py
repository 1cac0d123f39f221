"""The daemon's side of the command line: ``serve`` (its options, start and logging),
``keygen`` and ``dream --daemon``.

Kept apart from cli.py, which holds the in-process commands.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from deepdream_protocol import messages as m

from deepdream.server import MAX_PIXELS_LIMIT, ServeError, ServeOptions, Server
from deepdream.userdirs import COMPILE_CACHE_VAR, default_log_file, state_dir

log = logging.getLogger("deepdream.server")


def add_daemon_commands(sub: Any) -> None:
    """Register ``serve`` and ``keygen`` on the CLI's subparsers."""
    from deepdream.cli import add_precision_option
    from deepdream.security import default_key_dir

    p = sub.add_parser(
        "serve", help="run the daemon the Krita and GIMP plug-ins talk to",
        description="Keep the models warm and dream jobs sent over ZeroMQ by the plug-ins "
        "and 'deepdream dream --daemon'. Listens on loopback only, unless --bind names "
        "another address and --curve gives CurveZMQ keys. Stops on Ctrl+C or SIGTERM.")
    add_serve_arguments(p)
    add_precision_option(p)
    p.add_argument("--models-file", metavar="TOML",
                   help="extra models file (also DEEPDREAM_MODELS_FILE and the config folder)")
    p.set_defaults(run=serve_main)

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

    from deepdream.cli import CliError
    from deepdream.pixelformat import decode, float_frame, float_mask

    height, width, _ = image.shape
    pixels, fmt = float_frame(image)
    mask_bytes = None if mask is None else float_mask(mask)

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
    return decode(data, fmt, width, height)


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
    named = Path(models_file).expanduser().absolute()  # (as the registry names its source)
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


# -- deepdream serve ---------------------------------------------------------------------


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (no upper bound if None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value

    return parse


def _minutes(text: str) -> float:
    """An argparse type: a finite, non-negative number of minutes."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of minutes, 0 or more, not {text!r}")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``deepdream serve``; out-of-range values are usage errors (exit status 2)."""
    parser.add_argument("--port", type=_whole(1, 65535), default=m.DEFAULT_PORT,
                        help=f"TCP port to listen on (default {m.DEFAULT_PORT})")
    parser.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1; any other needs --curve)")
    parser.add_argument("--device", action="append", dest="devices", metavar="DEVICE",
                        help="device to dream on, one worker each; repeat for several "
                             "(default auto)")
    parser.add_argument("--preload", action="append", default=[], metavar="MODEL",
                        help="load MODEL at start so the first job is warm; repeatable")
    parser.add_argument("--max-pixels", type=_whole(1, MAX_PIXELS_LIMIT),
                        default=ServeOptions.max_pixels,
                        help="largest image accepted, in pixels (default 100 million; a "
                        "side under 32 pixels counts as 32, as a dream grows it)")
    parser.add_argument("--max-queue", type=_whole(1), default=ServeOptions.max_queue,
                        help="jobs that may wait; more are refused as busy (default 16)")
    parser.add_argument("--cache-mb", type=_whole(0), default=ServeOptions.cache_mb,
                        help="memory for warm models per device, MB (default 4096)")
    parser.add_argument("--unload-after", type=_minutes, default=0.0, metavar="MINUTES",
                        help="unload models unused this long (default 0: never)")
    parser.add_argument("--curve", type=Path, metavar="KEY_DIR",
                        help="require CurveZMQ with the keys in KEY_DIR (see 'deepdream keygen')")
    parser.add_argument("--log-file", type=Path,
                        help=f"log file (default {default_log_file()})")
    parser.add_argument("--compile", nargs="?", const="now",
                        choices=("auto", "ahead", "now", "off"),
                        help="NVIDIA GPUs: torch.compile the dream step, about 1.2x faster end "
                        "to end. 'ahead' (DEEPDREAM_COMPILE=ahead): a background process "
                        "compiles each new image size while the uncompiled step serves; "
                        "'auto' (the default): ahead where a CUDA GPU and Triton are found; "
                        "'now' (a bare --compile; DEEPDREAM_COMPILE=1): each new size first "
                        "compiles for a minute or more; 'off' (DEEPDREAM_COMPILE=0)")


def compile_mode(option: str | None, devices: Sequence[Any]) -> tuple[str | None, str]:
    """The compile mode ("now", "ahead" or None) of a daemon dreaming on ``devices``, from
    ``--compile``, else DEEPDREAM_COMPILE, and why, for the log.  "auto" (neither given)
    compiles ahead where it can help: on an NVIDIA GPU it took GoogLeNet's warm tries from 73
    to 60 ms (H100)."""
    from deepdream.engine import compile_ahead
    from deepdream.precision import compile_setting

    mode = compile_setting(option)
    if mode != "auto":
        return mode, f"--compile {option}" if option else "DEEPDREAM_COMPILE"
    return ("ahead" if compile_ahead.supported(devices) else None,
            "the default on an NVIDIA GPU; --compile off turns it off")


def serve_main(args: argparse.Namespace) -> int:
    """Run ``deepdream serve`` until SIGINT/SIGTERM; returns the exit status."""
    from deepdream.accel import keep_step_memory
    from deepdream.precision import PrecisionError, apply_speed_settings

    opts = ServeOptions(
        host=args.bind, port=args.port, models_file=getattr(args, "models_file", None),
        devices=tuple(args.devices or ("auto",)), preload=tuple(args.preload),
        max_pixels=args.max_pixels, max_queue=args.max_queue, cache_mb=args.cache_mb,
        unload_after_min=args.unload_after, curve_dir=args.curve,
        log_file=args.log_file or default_log_file(),
        recent_jobs=state_dir() / "recent-jobs.json")
    log_file = opts.log_file
    try:
        apply_speed_settings(args.precision, args.compile)
        keep_step_memory()  # process-wide: set before any thread starts allocating
        server = Server(opts)
    except (ServeError, PrecisionError) as exc:
        print(f"deepdream serve: {exc}", file=sys.stderr)
        # A daemon started by a plug-in has no terminal: the log file is where to look.
        with contextlib.suppress(OSError):
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} ERROR cannot start: {exc}\n")
        return 1
    setup_logging(log_file)
    from deepdream.engine import fastpath

    mode, why = compile_mode(args.compile, server.devices)
    fastpath.set_compile_mode(mode)
    if mode == "now":
        log.info("compiled steps on (--compile): on a CUDA GPU each new image size is "
                 "compiled before it dreams, which takes a while")
    elif mode == "ahead":
        log.info("compiled steps ahead on (%s): on a CUDA GPU each new image size is "
                 "compiled in a background process, then used", why)
    if mode is not None:
        log.info("compiled steps are kept in %s", os.environ.get(COMPILE_CACHE_VAR))
    def stop(*_: object) -> None:  # a second Ctrl-C or SIGTERM ends it at once
        server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    server.run()
    return 0


def setup_logging(path: Path) -> None:
    """Log to ``path`` (rotated) and to stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2**20, backupCount=3,
                                                        encoding="utf-8")
    stderr_handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger("deepdream")
    for handler in (file_handler, stderr_handler):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
