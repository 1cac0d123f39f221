"""Command-line parts of the looks: the look options of ``dream`` and ``zoom``, and the
``presets``, ``classes`` and ``zoom`` subcommands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deepdream_protocol.settings import BY_NAME

# option -> settings key, for the look options that take a value
_VALUED = {"preset": "preset", "norm": "norm", "smooth": "smooth", "tv": "tv", "l2": "l2",
           "classes": "classes", "guide": "guide", "neuron": "neuron", "rank": "rank"}
_SWITCHES = ("transform", "keep_colors", "seamless", "from_noise")


def _help(name: str) -> str:
    s = BY_NAME[name]
    if s.kind is bool:  # a switch: off unless given (or a preset turns it on)
        return s.help
    if s.kind is str:
        return f"{s.help} (default {s.default!r})" if s.default else s.help
    return f"{s.help} (default {s.default:g}, {s.minimum:g} to {s.maximum:g})"


def add_look_options(p: argparse.ArgumentParser) -> None:
    """The look options shared by ``dream`` and ``zoom``."""
    g = p.add_argument_group("looks")
    g.add_argument("--preset", metavar="NAME",
                   help="a named look ('deepdream presets' lists them); options given "
                   "explicitly override it")
    g.add_argument("--norm", choices=("mean", "std", "laplacian"), help=_help("norm"))
    g.add_argument("--smooth", type=float, metavar="PIXELS", help=_help("smooth"))
    g.add_argument("--tv", type=float, metavar="WEIGHT", help=_help("tv"))
    g.add_argument("--l2", type=float, metavar="WEIGHT", help=_help("l2"))
    # each switch has its --no- form too, to turn off what a preset turns on
    switch = argparse.BooleanOptionalAction
    g.add_argument("--transform", action=switch, default=None, help=_help("transform"))
    g.add_argument("--keep-colors", "--keep-colours", dest="keep_colors", action=switch,
                   default=None, help=_help("keep_colors"))
    g.add_argument("--seamless", action=switch, default=None, help=_help("seamless"))
    g.add_argument("--from-noise", dest="from_noise", action=switch, default=None,
                   help=_help("from_noise") + "; the input gives only the size")
    g.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="push towards this ImageNet class (repeat for several; 'deepdream "
                   "classes' lists them); replaces the plain layer objective; --class '' "
                   "drops a preset's classes")
    g.add_argument("--guide", metavar="FILE", help=_help("guide"))
    g.add_argument("--neuron", metavar="[LAYER:]CHANNEL[@X,Y]",  # (the help's start, again)
                   help="dream " + _help("neuron").split(": ", 1)[-1])
    g.add_argument("--rank", type=int, metavar="N", help=_help("rank"))


def look_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the look options give (only those set)."""
    d: dict[str, Any] = {}
    for option, key in _VALUED.items():
        value = getattr(args, option, None)
        if value is not None:
            d[key] = ", ".join(value) if isinstance(value, list) else value
    for key in _SWITCHES:
        value = getattr(args, key, None)
        if value is not None:  # (--no-seamless: False, over a preset's True)
            d[key] = value
    return d


def add_commands(sub: Any, add_dream_options: Any) -> None:
    """Register ``presets``, ``classes`` and ``zoom``; ``add_dream_options(p)`` adds the
    dream options (model, layer, steps...) to a parser."""
    p = sub.add_parser("presets", help="list the named looks",
                       description="List the presets for --preset, each with what it does.")
    p.add_argument("-v", "--verbose", action="store_true", help="show each preset's settings")
    p.set_defaults(run=run_presets)

    p = sub.add_parser("classes", help="list the ImageNet classes for --class",
                       description="List the ImageNet classes --class accepts (index and name); "
                       "with SEARCH, only those whose name contains it, or that --class "
                       "SEARCH would take by its words ('tabby cat' lists tabby).")
    p.add_argument("search", nargs="?", help="only classes whose name contains this (or "
                   "that --class would take by its words)")
    p.set_defaults(run=run_classes)

    p = sub.add_parser(
        "zoom", help="make a zoom animation: dream, zoom in, dream again",
        description="The DeepDream feedback loop: dream IN, zoom into the result (and turn "
        "it), dream that, and so on, writing numbered PNG frames into FRAMES_DIR. Frames "
        "already there are kept, so an interrupted run continues where it stopped. Takes the "
        "same dream options as 'deepdream dream'; each frame's seed is --seed plus its number. "
        "With --from-noise only the first frame is dreamed from noise.",
    )
    p.add_argument("input", metavar="IN", help="first image (PNG, JPEG, TIFF, …)")
    p.add_argument("-o", "--output", metavar="FRAMES_DIR", required=True,
                   help="folder for frame_00000.png, frame_00001.png, …")
    p.add_argument("--frames", type=int, default=30, help="how many frames (default 30)")
    p.add_argument("--zoom", type=float, default=1.04,
                   help="zoom factor per frame, 1.04 = 4%% closer (default 1.04)")
    p.add_argument("--rotate", type=float, default=0.0, metavar="DEG",
                   help="degrees to turn per frame, counter-clockwise (default 0)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no per-frame lines, and no notes on how an unusual image was read")
    add_dream_options(p)
    p.set_defaults(run=run_zoom)


def run_presets(args: argparse.Namespace) -> int:
    from deepdream.engine.presets import PRESETS

    width = max(len(n) for n in PRESETS)
    for preset in PRESETS.values():
        print(f"{preset.name:<{width}}  {preset.description}")
        if args.verbose:
            print(" " * (width + 2) + ", ".join(f"{k}={v}" for k, v in preset.settings.items()))
    return 0


def run_classes(args: argparse.Namespace) -> int:
    from deepdream.engine.objectives_extra import imagenet_categories, matching_classes

    names = imagenet_categories()
    found = [(i, names[i]) for i in matching_classes(args.search or "", names)]
    for i, name in found:
        print(f"{i:4d}  {name}")
    if not found:  # (as grep: nothing found is exit status 1)
        print(f"deepdream: no ImageNet class name matches {args.search!r}", file=sys.stderr)
        return 1
    return 0


def run_zoom(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from deepdream.cli import dream_settings, read_input
    from deepdream.devices import pick_device
    from deepdream.engine import DreamSettings, dream
    from deepdream.models import registry
    from deepdream.zoom import check_folder, check_options, run_zoom

    check_options(args.frames, args.zoom, args.rotate)
    settings = DreamSettings.from_dict(dream_settings(args))
    check_folder(args.output)
    image, info = read_input(args)
    model = registry.load(settings.model, pick_device(settings.device), args.models_file)

    def dream_frame(img: Any, index: int) -> Any:
        # from noise, only the first frame: the others dream the zoomed last one (a dream
        # from noise ignores its pixels, so every frame would be an unrelated picture)
        return dream(img, model, replace(settings, seed=(settings.seed + index) % 2**31,
                                         from_noise=settings.from_noise and index == 0))

    def report(index: int, path: Any, skipped: bool) -> None:
        if not args.quiet:
            print(f"{path} ({'already there' if skipped else 'dreamed'})", file=sys.stderr)

    # where it runs (device, tile size) is no part of what the frames are
    made_with = {k: v for k, v in settings.to_dict().items() if k not in ("device", "tile")}
    run_zoom(image, args.output, args.frames, args.zoom, args.rotate, dream_frame,
             bits=info.bits, on_frame=report, settings=made_with, icc_profile=info.icc_profile)
    return 0
