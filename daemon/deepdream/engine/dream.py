"""The DeepDream loop: octaves from small to full size, the dreamed detail carried between
them, and gradient-ascent steps with a random roll each step."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from .. import accel
from ..models.network import DreamModel
from . import fastpath, looks
from .from_noise import noise_steps, visualize
from .objectives import Objective, layers_l2
from .priors import keep_in_range
from .settings import DreamSettings, SettingsError
from .tiling import (
    ALIGN,
    MIN_TILE,
    auto_tile,
    gradient,
    input_too_small,
    min_input_side,
    mirror_pad,
    pad_offset,
    random_offsets,
)

log = logging.getLogger(__name__)

MIN_OCTAVE_SIDE = 32  # smaller octaves hold too few pixels to add anything
# ``step`` counts in 0..255 levels, as in the original DeepDream, so 1.5 keeps its look
_STEP_UNIT = 1.0 / 255.0
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])  # Rec. 709, on encoded values


class DreamError(ValueError):
    """The image or mask cannot be dreamed; the message is one line."""


class OutOfMemory(DreamError):
    """The device had too little memory for the image, even in the smallest tiles."""

    @classmethod
    def on(cls, device: torch.device, size: tuple[int, int], tile: int | None = None
           ) -> OutOfMemory:
        h, w = size
        tiles = f", even in {tile}-pixel tiles" if tile is not None else ""
        uses = "the GPU" if device.type != "cpu" else "memory"
        return cls(f"out of memory on {device} for a {w}x{h} dream{tiles}; dream a smaller "
                   f"layer or selection, or close programs that use {uses}")


class _TileOutOfMemory(Exception):
    """A tile's gradient did not fit in memory: a smaller tile may."""


class Cancelled(Exception):
    """The cancel callback asked to stop."""


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1 of all steps
    octave: int  # 1-based
    octaves: int
    step: int  # 1-based within the octave
    steps: int


def octave_sizes(
    height: int, width: int, octaves: int, scale: float, min_side: int = MIN_OCTAVE_SIDE
) -> list[tuple[int, int]]:
    """Sizes from smallest to full, each once; octaves whose short side would be under
    ``min_side`` are left out (the full size always stays).  (A scale near 1 rounds to the
    full size: that octave is the last one, not a second full-size octave, whose detail the
    last would add to the image again.)"""
    sizes = []
    for i in range(octaves - 1, 0, -1):
        f = scale ** -i
        size = (max(1, round(height * f)), max(1, round(width * f)))
        if min(size) >= min_side and size not in sizes and size != (height, width):
            sizes.append(size)
    return sizes + [(height, width)]


def build_objective(model: DreamModel, settings: DreamSettings) -> Objective:
    """The layer-L2 objective the settings ask for, checked against the model."""
    layers = settings.layers or ((model.spec.default_layer, 1.0),)
    for name, _ in layers:
        looks.check_layer(model, name, settings.preset)
    if settings.channels:
        for name, _ in layers:
            n = model.spec.layers[name]
            bad = [c for c in settings.channels if c >= n]
            if bad:
                raise SettingsError(
                    f"channel {bad[0]} is out of range for {name!r}, which has {n} channels "
                    f"(0-{n - 1})"
                )
    extra = looks.extra_objective(model, settings, layers)  # neuron / class / guide / rank
    return extra if extra is not None else layers_l2(layers, settings.channels)


def dream(
    image: np.ndarray | torch.Tensor,
    model: DreamModel,
    settings: DreamSettings,
    mask: np.ndarray | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    objective: Objective | None = None,
) -> np.ndarray | torch.Tensor:
    """Dream ``image`` (H, W, C) float sRGB in [0, 1], C = 1 (G), 2 (GA), 3 (RGB), 4 (RGBA): a
    numpy array, or a torch tensor on any device (the daemon decodes 8-bit frames on the GPU).

    Returns a new array of the same kind, shape, dtype and device: alpha untouched (from
    noise, a picture of its own, made opaque where it is dreamed), ``mask
    (H, W) in [0, 1] feathering the dream in (0 = the input exactly), ``settings.strength``
    blended.  ``objective`` replaces the settings' layer objective (for composed objectives).
    """
    _check_image(image)
    as_numpy = isinstance(image, np.ndarray)
    pixels = _tensor_view(image) if as_numpy else image
    weight = _blend_weight(pixels, mask, settings.strength)
    if objective is None:
        objective = build_objective(model, settings)
    try:
        if weight is None or settings.iterations == 0:  # nothing would change: spare the
            # work (from noise too: no step, no picture of its own)
            out = pixels.clone(memory_format=torch.contiguous_format)
        else:
            out = _dreamed(pixels, weight, model, objective, settings, progress, cancel)
    except (RuntimeError, MemoryError) as exc:  # (torch.OutOfMemoryError is a RuntimeError)
        if not accel.out_of_memory(exc):
            raise
        out = None
    if out is None:  # out of the except block: the failed dream's tensors went with it
        accel.release_device_cache(model.device)
        raise OutOfMemory.on(model.device, tuple(pixels.shape[:2]))
    if not as_numpy:
        return out
    result = out.numpy()
    return result if result.dtype == image.dtype else result.astype(image.dtype)


def _dreamed(
    pixels: torch.Tensor,
    weight: torch.Tensor | float,
    model: DreamModel,
    objective: Objective,
    settings: DreamSettings,
    progress: Callable[[Progress], None] | None,
    cancel: Callable[[], bool] | None,
) -> torch.Tensor:
    """dream()'s work on a tensor, returned on the tensor's own device."""
    h, w, c = pixels.shape
    colour = pixels[..., :3] if c >= 3 else pixels[..., :1].expand(h, w, 3)
    finite = bool(torch.isfinite(colour).all())
    if not finite:
        # (the command line and the daemon clean what they read; a caller of dream() may
        # not) one NaN would spread through every convolution to the whole dream
        colour = _cleaned(colour.float())
    dreamed = dream_rgb(colour, model, objective, settings, progress, cancel)
    if dreamed.untyped_storage().data_ptr() in (pixels.untyped_storage().data_ptr(),
                                                colour.untyped_storage().data_ptr()):
        dreamed = dreamed.clone()  # the blend below works in place on ``dreamed``
    if c < 3:
        # gray gets the dream's change in luma: the unchanged keep their value exactly
        # (g·0.2126 + g·0.7152 + g·0.0722 in float32 is not always g)
        dreamed -= colour.to(dreamed.dtype)  # (float64 input: the change is exactly 0)
        dreamed = colour[..., :1] + (dreamed @ _LUMA.to(dreamed.device))[..., None]
    del colour
    n = dreamed.shape[2]
    source = pixels[..., :n]
    # the blend in float32 (float64 for float64 input), cast to the input's type once after
    dreamed = dreamed.to(torch.promote_types(dreamed.dtype, pixels.dtype))
    # what the dream is blended over: cleaned too (dreamed - inf, weighed, + inf is NaN)
    under = source if finite else _cleaned(source.to(dreamed.dtype))
    if settings.seamless and (isinstance(weight, torch.Tensor) or weight != 1.0):
        # the input as it was made to tile, or its seam comes back where it shows through
        planar = under.permute(2, 0, 1)[None].to(dreamed.dtype)  # (half: no CPU pools)
        under = looks.make_tileable(planar)[0].permute(1, 2, 0)
    if isinstance(weight, torch.Tensor):
        w = weight[..., None]
        _mix(dreamed, under, w)
        # where the mask is 0, the input exactly (the mix alone would turn an inf into NaN)
        torch.where(w > 0, dreamed, source, out=dreamed)
    elif weight != 1.0:
        _mix(dreamed, under, weight)
    if n == c and dreamed.dtype == pixels.dtype:
        return dreamed.contiguous()  # RGB / G: the dream is the output
    out = torch.empty(pixels.shape, dtype=pixels.dtype, device=pixels.device)
    out[..., :n] = dreamed
    out[..., n:] = pixels[..., n:]  # the input's own alpha, bit for bit
    if settings.from_noise and c in (2, 4):
        # a picture of its own, not of the input: opaque where it is dreamed (a new,
        # transparent layer used to get an invisible dream)
        alpha = out[..., n:]
        alpha += (1 - alpha) * (weight[..., None] if isinstance(weight, torch.Tensor)
                                else weight)
    return out


def _cleaned(x: torch.Tensor) -> torch.Tensor:
    """``x`` with NaN as 0 and ±inf as 1 and 0: colours a network (and a blend) can use."""
    return torch.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0)


def _mix(dreamed: torch.Tensor, source: torch.Tensor, weight: torch.Tensor | float) -> None:
    """dreamed = source + weight * (dreamed - source), in place (no full-size temporaries)."""
    dreamed -= source
    dreamed *= weight
    dreamed += source


def _tensor_view(image: np.ndarray) -> torch.Tensor:
    """The array as a tensor sharing its memory where torch can view it (native-order float16,
    32 or 64, writable, no negative strides); otherwise a copy, in float32 for other float
    types.  dream() only reads it."""
    kind = image.dtype.newbyteorder("=")
    if kind.type not in (np.float16, np.float32, np.float64):
        kind = np.dtype(np.float32)
    if image.dtype == kind and image.flags.writeable and min(image.strides) >= 0:
        return torch.from_numpy(image)
    return torch.from_numpy(np.array(image, dtype=kind))


def _check_image(image: np.ndarray | torch.Tensor) -> None:
    if (not isinstance(image, np.ndarray | torch.Tensor) or image.ndim != 3
            or image.shape[2] not in (1, 2, 3, 4)):
        shape = tuple(getattr(image, "shape", ())) or None
        raise DreamError(f"image must be an (H, W, C) array with C in 1..4, not shape {shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise DreamError("image is empty (zero width or height)")
    floating = (image.dtype.is_floating_point if isinstance(image, torch.Tensor)
                else image.dtype.kind == "f")
    if not floating:
        raise DreamError(f"image must hold floats in [0, 1], not {image.dtype}")


def _blend_weight(
    image: torch.Tensor, mask: np.ndarray | None, strength: float
) -> torch.Tensor | float | None:
    """Weight of the dream: per pixel (H, W) float32 on the image's device with a mask, else
    the strength alone; None when it is zero everywhere."""
    h, w = image.shape[:2]
    if mask is None:
        return float(strength) if strength > 0 else None
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim == 3 and mask.shape[:2] == (h, w):
        raise DreamError(f"mask has {mask.shape[2]} channels; give a mask of one channel "
                         "(0 keeps the image, 1 dreams it)")
    if mask.shape != (h, w):
        raise DreamError(
            f"mask is {_size(mask.shape)} but the image is {w}x{h}; give a mask of the "
            "image's size"
        )
    weight = np.clip(np.nan_to_num(mask.astype(np.float32)), 0.0, 1.0) * np.float32(strength)
    return torch.from_numpy(weight).to(image.device) if weight.any() else None


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}" if len(shape) >= 2 else str(shape)


def dream_rgb(
    rgb: torch.Tensor,
    model: DreamModel,
    objective: Objective,
    settings: DreamSettings,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """The octave loop on an (H, W, 3) tensor; returns the dreamed (H, W, 3) float32 tensor on
    ``rgb``'s device.  When a tile's gradient runs out of memory, the dream starts again in
    tiles of half the size, down to MIN_TILE, before it gives up with OutOfMemory.

    An image smaller than the layers need (a small selection) is dreamed grown with mirrored
    copies of itself to the smallest size the network runs on (found once per model and set
    of layers), and cut back out; octaves smaller than that are left out.  Images and octaves
    the network runs on are dreamed exactly as they always were.  A seamless dream cannot be
    cut out of a bigger one, so a small one is refused (DreamError, one line)."""
    h, w = rgb.shape[:2]
    need = min_input_side(model, objective.layers)
    if need is None:  # not the image's size: nothing up to a big tile runs
        raise _too_small((h, w), 1, objective)
    min_side = max(MIN_OCTAVE_SIDE, need)
    if h >= need and w >= need:
        return _dream_rgb(rgb, model, objective, settings, progress, cancel, min_side)
    if settings.seamless:  # a part cut from a bigger dream would not wrap around
        raise DreamError(
            f"a seamless texture needs at least {need}x{need} pixels for the layer(s) "
            f"{', '.join(sorted(objective.layers))}, not {w}x{h}; use a bigger image or a "
            "shallower layer")
    grown_h, grown_w = max(h, need), max(w, need)
    log.info("dreaming a %dx%d image grown to %dx%d, the smallest size %s runs on",
             w, h, grown_w, grown_h, ", ".join(sorted(objective.layers)))
    out = _dream_rgb(mirror_pad(rgb, grown_h, grown_w), model, objective, settings, progress,
                     cancel, min_side)
    top, left = pad_offset(h, grown_h), pad_offset(w, grown_w)
    return out[top:top + h, left:left + w].contiguous()


def _dream_rgb(
    rgb: torch.Tensor,
    model: DreamModel,
    objective: Objective,
    settings: DreamSettings,
    progress: Callable[[Progress], None] | None,
    cancel: Callable[[], bool] | None,
    min_side: int,
) -> torch.Tensor:
    """dream_rgb's work, its octaves' short sides at least ``min_side``."""
    h, w = rgb.shape[:2]
    tile = looks.tile_size(settings, settings.tile or auto_tile(model), (h, w))
    if settings.from_noise:  # the image's size only: its pixels need not reach the device
        noise = _from_noise(model, objective, settings, (h, w), tile, progress, cancel)
        return torch.from_numpy(noise).to(rgb.device)
    held = _held(progress)  # one for every try
    while True:
        try:
            fast_forms = fastpath.fast_forms_used(model)  # (before the try: it may change)
            out, graphs = _octaves(rgb, model, objective, settings, tile, held, cancel,
                                   min_side)
        except _TileOutOfMemory:
            # out of the except block, the failed try's tensors go with its traceback
            tile = _smaller_tile(model, settings, tile, (h, w))
            continue
        if not (graphs and fast_forms and _fast_forms_failed(out, rgb, model)):
            return out.to(rgb.device)
        del out  # (not held on the device through the next try)


def _too_small(size: tuple[int, int], octave: int, objective: Objective) -> DreamError:
    return DreamError(
        f"the image is too small ({size[1]}x{size[0]} at octave {octave}) for the layer(s) "
        f"{', '.join(sorted(objective.layers))}; use a bigger image or a shallower layer")


def _fast_forms_failed(out: torch.Tensor, rgb: torch.Tensor, model: DreamModel) -> bool:
    """For a dream whose octaves ran as CUDA graphs holding rewrites.py's fast forms: if it
    came out non-finite from a finite image, they are turned off for the model (its graphs
    dropped, so the next try captures the plain forms), and the dream should run again.  A
    guard for what no check at load time covers (cuDNN's fused call reads its output buffer
    as a zero-weighted input; uninitialised memory holding NaN would leak through)."""
    if bool(torch.isfinite(out).all()) or not bool(torch.isfinite(rgb).all()):
        return False
    log.error("a dream on %s came out non-finite with the rewritten modules of %s; dreaming "
              "again without them", model.device, model.name)
    model.plain_forms = True  # type: ignore[assignment]
    fastpath.forget(model)
    return True


def _held(progress: Callable[[Progress], None] | None) -> Callable[[Progress], None] | None:
    """``progress`` whose fraction never goes back: a retry in smaller tiles starts over, and
    the host's bar holds where it was (still hearing from the job) until the retry passes it."""
    if progress is None:
        return None
    best = 0.0

    def report(p: Progress) -> None:
        nonlocal best
        best = max(best, p.fraction)
        progress(replace(p, fraction=best))

    return report


def _smaller_tile(model: DreamModel, settings: DreamSettings, tile: int,
                  size: tuple[int, int]) -> int:
    """Half the tile a try ran out of memory with, its cached memory released; or OutOfMemory."""
    fastpath.forget(model)
    accel.release_device_cache(model.device)
    if settings.neuron:  # dreamed untiled: no smaller piece to try
        raise OutOfMemory.on(model.device, size)
    tile = min(tile, max(size))  # the tile the try used
    if tile <= MIN_TILE:
        raise OutOfMemory.on(model.device, size, tile)
    smaller = max(MIN_TILE, tile // 2 // ALIGN * ALIGN)
    log.warning("out of memory on %s dreaming %dx%d in %d-pixel tiles; trying %d-pixel tiles",
                model.device, size[1], size[0], tile, smaller)
    return smaller


def _cancel_check(cancel: Callable[[], bool] | None) -> Callable[[], None]:
    """A function that raises Cancelled once ``cancel()`` is true (checked between steps,
    and between the tiles of one)."""
    def check() -> None:
        if cancel is not None and cancel():
            raise Cancelled()
    return check


def _tile_gradient(x: torch.Tensor, model: DreamModel, objective: Objective, tile: int,
                   offset: tuple[int, int],
                   between_tiles: Callable[[], None] | None = None) -> torch.Tensor:
    """``gradient``, its running out of memory told apart (the one a smaller tile can cure)."""
    try:
        return gradient(x, model, objective, tile, offset, between_tiles=between_tiles)
    except (RuntimeError, MemoryError) as exc:
        if not accel.out_of_memory(exc):
            raise
    raise _TileOutOfMemory()  # (outside the except: no reference to the failed tensors)


def _octaves(
    rgb: torch.Tensor,
    model: DreamModel,
    objective: Objective,
    settings: DreamSettings,
    tile: int,
    progress: Callable[[Progress], None] | None,
    cancel: Callable[[], bool] | None,
    min_side: int = MIN_OCTAVE_SIDE,
) -> tuple[torch.Tensor, bool]:
    """dream_rgb's one try at ``tile``: the dreamed (H, W, 3) image on the model's device
    (the caller checks it there, then moves it), and whether any octave ran as CUDA
    graphs."""
    h, w = rgb.shape[:2]
    # On the CPU (and for a frame decoded on the device) this is a view of the caller's
    # pixels: no full-size copy of the input.
    source = rgb.to(model.device, torch.float32).permute(2, 0, 1)[None]
    sizes = octave_sizes(h, w, settings.octaves, settings.octave_scale, min_side)
    if settings.seamless:
        source = looks.make_tileable(source)
    original = source  # (tileable: its colours kept, keep-colours keeps the seam away too)
    stepper = looks.Stepper(settings)  # transform, smoothing, norm, penalties, keep-colours
    rng = random.Random(settings.seed)
    steps = settings.iterations
    total = max(1, len(sizes) * steps)

    def step_done(octave: int, step: int) -> None:  # both 0-based
        if progress is not None:
            done = octave * steps + step + 1
            progress(Progress(done / total, octave + 1, len(sizes), step + 1, steps))

    check_cancel = _cancel_check(cancel)

    def graph_step_done(octave: int, step: int) -> None:
        step_done(octave, step)
        if step + 1 < steps:
            check_cancel()

    x: torch.Tensor | None = None  # the dreamed detail, then base + detail
    graphs = False
    for o, size in enumerate(sizes):
        base = source if size == (h, w) else looks.resize(source, size, settings.seamless)
        if x is None:
            x = base.clone()
        else:  # x held the detail of the previous octave
            x = looks.resize(x, size, settings.seamless).add_(base)
        check_cancel()
        # classic step on CUDA: the octave's steps as CUDA graph replays (fastpath.py)
        fast = fastpath.octave_in_one_graph(
            x, model, objective, settings, rng, size, tile, settings.step * _STEP_UNIT,
            on_step=lambda s, o=o: graph_step_done(o, s))
        graphs = graphs or fast
        for s in range(0 if fast else steps):
            check_cancel()
            offset = random_offsets(rng, size[0], size[1], tile, settings.jitter)
            offset = looks.seamless_offset(rng, offset, size, settings.seamless)
            try:
                g = stepper.direction(
                    x, lambda v, off=offset: _tile_gradient(v, model, objective, tile, off,
                                                            check_cancel),
                    s, steps)
            except RuntimeError as exc:
                if not input_too_small(exc):
                    raise
                raise _too_small(size, o + 1, objective) from None
            x.add_(g, alpha=settings.step * _STEP_UNIT)
            del g
            stepper.after_step(x)  # TV / L2 penalties
            keep_in_range(x)
            step_done(o, s)
        if o < len(sizes) - 1:
            x.sub_(base)  # keep only the detail for the next octave
    assert x is not None
    x = looks.finish(x, original, settings)
    rgb_out = x[0].permute(1, 2, 0).float()
    if rgb_out.device.type != "cpu":
        # interleave on the device, where it is nearly free, so a copy to the host is one
        # contiguous transfer and the host gets an (H, W, 3) array its passes run fast on (a
        # planar one is ~1.5x slower to blend).  On the CPU no copy is forced: x mostly lies
        # interleaved already (a clone of the permuted input) and dream() takes any layout.
        rgb_out = rgb_out.contiguous()
    return rgb_out, graphs


def _from_noise(
    model: DreamModel,
    objective: Objective,
    settings: DreamSettings,
    size: tuple[int, int],
    tile: int,
    progress: Callable[[Progress], None] | None,
    cancel: Callable[[], bool] | None,
) -> np.ndarray:
    """Feature visualisation: the image's size only, its pixels unused."""
    n = noise_steps(settings.iterations, settings.octaves)

    check_cancel = _cancel_check(cancel)

    def on_step(s: int) -> None:
        check_cancel()
        if progress is not None:
            progress(Progress((s + 1) / n, 1, 1, s + 1, n))

    try:
        return visualize(model, objective, size[0], size[1], n, settings.step, settings.seed,
                         tile, jitter=settings.jitter, transform=True, on_step=on_step,
                         between_tiles=check_cancel)
    except RuntimeError as exc:
        if not input_too_small(exc):
            raise
    raise _too_small(size, 1, objective)  # (outside the except: the failed step's tensors go)
