"""The ``deepdream`` command line: ``dream`` an image file, list the ``models``.

Other subcommands (``serve`` …) register themselves in ``build_parser``.
Every user error is one line on stderr and exit code 2, and no output file is written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import numpy as np
from deepdream_protocol.messages import number
from deepdream_protocol.settings import BY_NAME

from deepdream.precision import (
    PRECISION_ALIASES,
    PRECISIONS,
    PrecisionError,
    apply_speed_settings,
    compile_setting,
)
from deepdream.userdirs import keep_compiled_steps

if TYPE_CHECKING:  # (imageio loads PIL: only when a command reads an image)
    from deepdream.imageio import ImageInfo

EXIT_USAGE = 2


class CliError(ValueError):
    """A problem with the command line's own inputs (mask size, --max-size)."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the user's to fix: reported in one line, never with a traceback."""
    from deepdream.devices import DeviceError
    from deepdream.engine import DreamError, SettingsError
    from deepdream.imageio import ImageIOError
    from deepdream.models import ModelError
    from deepdream.zoom import ZoomError

    return (CliError, DeviceError, DreamError, SettingsError, ImageIOError, ModelError,
            ZoomError, PrecisionError)


def _help(name: str) -> str:
    s = BY_NAME[name]
    bounds = ""
    if s.minimum is not None:
        bounds = f", {number(s.minimum)} to {number(s.maximum)}"
    return f"{s.help} (default {s.default}{bounds})"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the help to read (exit code 2), not
    the whole usage block; its subcommands' parsers are of this class too."""

    commands: dict[str, argparse.ArgumentParser]  # the subcommands' parsers, by name

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # told by the subcommand's parser, which knows the options it takes
            command = getattr(self, "commands", {}).get(getattr(parsed, "command", None), self)
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="deepdream",
        description="Dream images with a neural network (DeepDream), from the command line "
        "or for the Krita and GIMP plug-ins.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_dream(sub)
    _add_models(sub)
    from deepdream.cli_daemon import add_daemon_commands

    add_daemon_commands(sub)  # serve, keygen
    from deepdream.cli_looks import add_commands

    add_commands(sub, lambda p: add_dream_options(p, daemon=False))  # presets, classes, zoom
    parser.commands = sub.choices
    return parser


def _add_dream(sub: Any) -> None:
    p = sub.add_parser(
        "dream", help="dream an image file and save the result",
        description="Dream IN and save the result as OUT (PNG, JPEG or TIFF; 16-bit PNG and "
        "TIFF stay 16-bit, gray stays gray, transparency is kept).",
    )
    p.add_argument("input", metavar="IN", help="image to dream (PNG, JPEG, TIFF, …)")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="where to save the result; the type follows the extension "
                   "(.png, .jpg, .tif)")
    add_dream_options(p)
    p.add_argument("--mask", metavar="FILE",
                   help="gray image of the same size: white = dream fully, black (or "
                   "transparent) = leave untouched, gray = in between")
    p.add_argument("--max-size", type=int, metavar="PIXELS",
                   help="shrink the image first so its longer side is at most this many "
                   "pixels (the result has that size); makes quick previews fast")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar, and no notes on how an unusual image was read")
    p.add_argument("--daemon", nargs="?", const="", metavar="ENDPOINT", type=_endpoint,
                   help="dream in a running 'deepdream serve' instead of in this process, "
                   "e.g. --daemon tcp://127.0.0.1:5599; without ENDPOINT (put --daemon "
                   "last) it uses DEEPDREAM_ENDPOINT, the client config or that default")
    p.set_defaults(run=run_dream)


def _endpoint(value: str) -> str:
    """--daemon's value; an image file there is the input it swallowed (--daemon IN -o OUT
    was told 'the following arguments are required: IN')."""
    if "://" not in value and os.path.exists(value):
        raise argparse.ArgumentTypeError(
            f"took {value!r} as the daemon's endpoint; put --daemon last, or give it one "
            "(tcp://HOST:PORT)")
    return value


def add_dream_options(p: Any, daemon: bool = True) -> None:
    """The dream settings' options, shared by ``dream`` and ``zoom`` (``daemon``: the
    command has --daemon)."""
    p.add_argument("--model", help=_help("model"))
    p.add_argument("--layer", action="append", metavar="NAME[:WEIGHT]",
                   help="layer to amplify, optionally with a weight; repeat it to mix "
                   "several layers (default: the model's usual layer, inception4c for "
                   "googlenet; 'deepdream models' lists them)")
    p.add_argument("--channels", metavar="LIST",
                   help="only amplify these channels of the layer, e.g. '3,7,10-12' "
                   "(default: all)")
    p.add_argument("--octaves", type=int, help=_help("octaves"))
    p.add_argument("--octave-scale", type=float, help=_help("octave_scale"))
    p.add_argument("--iterations", type=int, help=_help("iterations"))
    p.add_argument("--step", type=float, help=_help("step") + "; in 0-255 levels")
    p.add_argument("--jitter", type=int, help=_help("jitter"))
    p.add_argument("--seed", type=int, help=_help("seed"))
    p.add_argument("--strength", type=float, help=_help("strength"))
    p.add_argument("--tile", type=int, metavar="PIXELS",
                   help="dream big images in tiles of this size to bound memory; 0 picks "
                   "one from the free memory (default 0)")
    p.add_argument("--device", default="auto",
                   help="where to compute: auto (GPU if there is one), cpu, cuda, cuda:N "
                   "or mps (default auto)")
    add_precision_option(p)
    p.add_argument("--models-file", metavar="TOML",
                   help="extra models file (see 'deepdream models --help'); also read from "
                   "DEEPDREAM_MODELS_FILE and the user's config folder" + (
                       ". A daemon reads its own (deepdream serve --models-file): with "
                       "--daemon, a model this file declares is refused unless the daemon "
                       "has it from the same file" if daemon else ""))
    from deepdream.cli_looks import add_look_options

    add_look_options(p)


def _add_models(sub: Any) -> None:
    from deepdream_protocol.launcher import config_dir  # torch-free: --help stays quick

    p = sub.add_parser(
        "models", help="list the models and their dreamable layers",
        description="List the models and the layers you can dream with (channel counts in "
        "brackets). Custom models are declared in a TOML file, read from "
        f"{config_dir() / 'models.toml'}, from DEEPDREAM_MODELS_FILE and from "
        "--models-file, e.g.:  [models.hed-vgg16]  arch = \"vgg16\"  weights = "
        "\"/path/vgg16-hed.pth\"  preprocess = \"caffe\"",
    )
    p.add_argument("name", nargs="?", help="show only this model")
    p.add_argument("--models-file", metavar="TOML", help="extra models file to read")
    p.set_defaults(run=run_models)


def add_precision_option(p: Any) -> None:
    p.add_argument("--precision", choices=(*PRECISIONS, *PRECISION_ALIASES),
                   help="compute precision: auto uses bf16/fp16 where one step stays as close "
                   "to float32 as 8-bit rounding of the photo moves it; float32 always; "
                   "float16 on a CPU is slower than float32 (default auto, or "
                   "DEEPDREAM_PRECISION)")


def apply_precision(args: argparse.Namespace) -> None:
    """--precision and the other speed settings for a command that dreams here; with
    --daemon, the options that only apply here are refused."""
    if getattr(args, "daemon", None) is not None and getattr(args, "device", "auto") != "auto":
        raise CliError("--device applies to dreams in this process; a daemon has its own "
                       "(deepdream serve --device)")
    if getattr(args, "daemon", None) is not None and args.precision:
        raise CliError("--precision applies to dreams in this process; a daemon has its own "
                       "(deepdream serve --precision)")
    apply_speed_settings(args.precision)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a closed terminal, `timeout`, a logout), raised where the run is
    so that it ends as Ctrl-C ends it: temporary files removed, a daemon's job cancelled."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def ended_as_by_ctrl_c(wanted: bool = True) -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into ``Terminated`` while the block runs (main thread only;
    the handlers before are put back after)."""
    import signal
    import threading

    # (one ignored stays so: `nohup deepdream dream ...` must outlive its terminal)
    kinds = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
             and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN]
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    before = {kind: signal.signal(kind, terminate) for kind in kinds}
    try:
        yield
    finally:
        for kind, handler in before.items():
            signal.signal(kind, signal.SIG_DFL if handler is None else handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help (or a usage error): its text may go into a closed pipe too
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_after_closed_stdout()
        raise
    with contextlib.suppress(PrecisionError):  # (apply_precision says why, in one line)
        mode = compile_setting(getattr(args, "compile", None))  # (auto: serve's default)
        if mode in ("now", "ahead") or (mode == "auto" and args.command == "serve"):
            keep_compiled_steps()  # (before torch loads: its compiler fixes the folder then)
    try:
        with ended_as_by_ctrl_c(args.command != "serve"):  # (serve stops on its own terms)
            if hasattr(args, "precision") and args.command != "serve":  # serve logs its own
                apply_precision(args)  # (a bad speed setting: one line before any work)
            code = int(args.run(args) or 0)
            sys.stdout.flush()  # (into a closed pipe, e.g. `| head`: fails here, not at exit)
        return code
    except Terminated as exc:
        print("deepdream: terminated", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("deepdream: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # e.g. an output folder that does not exist or is read-only
        if isinstance(exc, BrokenPipeError) and _stdout_closed():
            return _quiet_after_closed_stdout()
        where = f": {exc.filename}" if exc.filename else ""
        print(f"deepdream: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        print(f"deepdream: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


#: the exit status of a program whose output pipe closed (SIGPIPE's, as `yes | head` gives)
EXIT_BROKEN_PIPE = 128 + 13


def _stdout_closed() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone: what a BrokenPipeError
    means after `deepdream models | head`, rather than a lost daemon connection."""
    import stat

    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return False
    try:
        import select

        poller = select.poll()
    except (ImportError, AttributeError):  # Windows: a pipe is all it can tell
        return True
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _quiet_after_closed_stdout() -> int:
    """End quietly, as `cat` or `ls` do when the reader of their output has gone."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail
    return EXIT_BROKEN_PIPE


# --- dream -------------------------------------------------------------------------------


def dream_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings dict the command line's options give (only what was set)."""
    d: dict[str, Any] = {}
    for name in ("model", "octaves", "octave_scale", "iterations", "step", "jitter", "seed",
                 "strength", "tile", "channels"):
        value = getattr(args, name)
        if value is not None:
            d[name] = value
    if args.layer:
        d["layer"] = ",".join(args.layer)
    d["device"] = args.device
    from deepdream.cli_looks import look_settings

    d.update(look_settings(args))
    return d


def run_dream(args: argparse.Namespace) -> int:
    from deepdream import imageio
    from deepdream.devices import pick_device
    from deepdream.engine import DreamSettings, dream
    from deepdream.models import registry

    wanted = dream_settings(args)
    settings = DreamSettings.from_dict(wanted)  # a bad option fails before any work
    fmt = imageio.output_format(args.output)  # a bad extension fails before any work
    refuse_overwriting_inputs(args.output, **{"input": args.input, "mask": args.mask,
                                              "guide image": args.guide})
    specs = None  # (read once: check_daemon_models is given them)
    if args.daemon is not None and args.models_file:
        specs = registry.available(args.models_file)  # a missing or broken file fails first
    image, info = read_input(args)
    image = imageio.fitted_to(fmt, image)
    imageio.check_output(args.output, image.shape[2])  # a bad output fails before the dream
    mask = None
    if args.mask:
        mask = read_mask(args.mask, image.shape[:2])
    if args.max_size is not None:
        image, mask = shrink(image, mask, args.max_size)
    bar = None if args.quiet or not sys.stderr.isatty() else ProgressBar(sys.stderr)
    try:
        if args.daemon is not None:
            from deepdream.cli_daemon import dream_via_daemon

            out = dream_via_daemon(args.daemon, wanted, image, mask, bar,
                                   args.models_file, specs)
        else:
            model = registry.load(settings.model, pick_device(settings.device),
                                  args.models_file)
            out = dream(image, model, settings, mask=mask, progress=bar)
    finally:  # (an error or Ctrl-C is then said on a line of its own)
        if bar is not None:
            bar.done()
    imageio.write_image(args.output, out, bits=info.bits, icc_profile=info.icc_profile,
                        dpi=info.dpi, exif=info.exif)
    return 0


def refuse_overwriting_inputs(output: str, **inputs: str | None) -> None:
    """CliError if ``output`` is one of the ``inputs`` (what each is -> its file; the same
    file by any name)."""
    for what, source in inputs.items():
        if source is None:
            continue
        try:
            same = os.path.samefile(output, source)
        except OSError:  # one of them does not exist (yet): it cannot be the other
            same = False
        if same:
            raise CliError(f"{output} is the {what} file {source}; give another output name "
                           "so the original is kept")


def read_input(args: argparse.Namespace) -> tuple[np.ndarray, ImageInfo]:
    """``args.input`` read for ``dream`` or ``zoom``, telling (unless ``--quiet``) how an
    unusual image was read: deep TIFF samples scaled, only an animation's first frame."""
    from deepdream import imageio

    image, info = imageio.read_image(args.input)
    if info.note and not args.quiet:
        print(f"deepdream: note: {info.note}", file=sys.stderr)
    return image, info


def read_mask(path: str, shape: tuple[int, int]) -> np.ndarray:
    """A mask file as (H, W) in [0, 1]: its gray value (colour masks by luma), times its
    alpha where it has one."""
    from deepdream import imageio

    try:
        mask, _ = imageio.read_image(path)
    except imageio.ImageIOError as exc:
        raise CliError(f"mask {exc}") from None
    if mask.shape[:2] != shape:
        raise CliError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{shape[1]}x{shape[0]}; give a mask of the image's size"
        )
    if mask.shape[2] >= 3:
        gray = mask[..., :3] @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    else:
        gray = mask[..., 0]
    if mask.shape[2] in (2, 4):  # painted on a transparent layer: the clear part is untouched
        gray = gray * mask[..., -1]
    return gray


def shrink(
    image: np.ndarray, mask: np.ndarray | None, max_size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale image (and mask) down so the longer side is at most ``max_size``."""
    import torch
    import torch.nn.functional as F

    if max_size < 1:
        raise CliError(f"--max-size must be at least 1, not {max_size}")
    h, w = image.shape[:2]
    if max(h, w) <= max_size:
        return image, mask
    f = max_size / max(h, w)
    size = (max(1, round(h * f)), max(1, round(w * f)))

    def resize(a: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]
        t = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
        return t[0].permute(1, 2, 0).clamp(0, 1).numpy()

    return resize(image), (resize(mask[..., None])[..., 0] if mask is not None else None)


class ProgressBar:
    """One self-overwriting line: bar, percent, octave/step, time left."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream, self.width, self.start = stream, width, time.monotonic()
        self.drawn = False

    def __call__(self, p: Any) -> None:
        self.drawn = True
        filled = int(p.fraction * self.width)
        elapsed = time.monotonic() - self.start
        left = elapsed / p.fraction * (1 - p.fraction) if p.fraction > 0 else 0.0
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {p.fraction * 100:3.0f}%  "
            f"octave {p.octave}/{p.octaves}  step {p.step}/{p.steps}  {left:4.0f}s left "
        )
        self.stream.flush()

    def done(self) -> None:
        """End the bar's line (if it drew one)."""
        if self.drawn:
            self.drawn = False
            self.stream.write("\n")
            self.stream.flush()


# --- models ------------------------------------------------------------------------------


def run_models(args: argparse.Namespace) -> int:
    from deepdream.models import registry
    from deepdream.models.weights import missing_weights

    specs = registry.available(args.models_file)
    if args.name is not None:
        specs = {args.name: registry.get_spec(args.name, specs=specs)}
    for spec in specs.values():
        weights = spec.weights if spec.weights in ("torchvision", "random") else "file"
        print(f"{spec.name}  ({spec.arch}, weights: {weights}, preprocess: "
              f"{spec.preprocess}, default layer: {spec.default_layer})")
        if spec.description:
            print(f"    {spec.description}")
        if spec.source != "built-in":
            print(f"    from {spec.source}")
        missing = missing_weights(Path(spec.weights)) if weights == "file" else None
        if missing:  # (said before a dream)
            print(f"    {missing}: this model cannot dream")
        print("    layers: " + ", ".join(f"{n} ({c})" for n, c in spec.layers.items()))
    return 0
