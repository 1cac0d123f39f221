"""The looks options wired into the dream loop: which objective, and what each step does
with the gradient (transform, smoothing, normalisation, penalties, keep-colours, seamless).

``dream.py`` calls these hooks; with every option at its default they reduce to the plain
DeepDream step.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from deepdream_protocol.settings import missing_guide
from torch import Tensor

from ..models.network import DreamModel
from . import objectives_extra as ox
from .objectives import Objective
from .priors_extra import (
    NORMS,
    blur,
    keep_colors,
    l2_step,
    luma_only,
    normalize,
    random_affine,
    resize_wrapped,
    smoothing_sigma,
    tv_step,
)
from .settings import DreamSettings, SettingsError
from .tiling import min_input_side, mirror_pad

# Per-step strength of the penalties for a weight of 1: diffusion rate (TV) and fraction
# pulled to grey (L2); weights go up to 10.
TV_RATE = 0.02
L2_RATE = 0.002


def check_settings(settings: DreamSettings) -> None:
    """Checks that need no model (run by DreamSettings.from_dict)."""
    if settings.norm not in NORMS:
        raise SettingsError(f"norm must be one of {', '.join(NORMS)}, not {settings.norm!r}")
    if settings.rank and settings.channels:
        raise SettingsError("give either channels or rank (automatic channels), not both")
    if settings.neuron:
        try:
            ox.parse_neuron(settings.neuron, "layer")
        except ox.ObjectiveError as exc:
            raise SettingsError(str(exc)) from None
        if settings.seamless:  # (its texture is moved around the torus at every step)
            raise SettingsError("a neuron sits at one place, and a seamless texture has "
                                "none: turn off seamless or clear the neuron")


def uses_extra_objective(settings: DreamSettings) -> bool:
    return bool(settings.neuron or settings.classes or settings.guide or settings.rank)


def check_layer(model: DreamModel, layer: str, preset: str = "") -> None:
    """A SettingsError naming the model's layers unless it has ``layer`` (and the
    ``preset`` when the layer is its own: presets name GoogLeNet's layers)."""
    if layer not in model.spec.layers:
        from .presets import PRESETS
        from .settings import parse_layers

        named = PRESETS[preset].settings.get("layer") if preset in PRESETS else None
        source = (f", which preset {preset!r} names" if named is not None and
                  layer in dict(parse_layers(named)) else "")
        raise SettingsError(f"model {model.name!r} has no layer {layer!r}{source}; choose one "
                            f"of {', '.join(model.spec.layers)}")


def class_names(model: DreamModel) -> tuple[str, ...]:
    """Names of the model's classes where they are known offline (ImageNet's 1000)."""
    if model.num_classes == 1000:
        return ox.imagenet_categories()
    return tuple(f"#{i}" for i in range(model.num_classes))


def _class_indices(model: DreamModel, spec: str) -> list[int]:
    try:
        return ox.resolve_classes(spec, class_names(model))
    except ox.ObjectiveError:
        if model.num_classes == 1000:
            raise
        raise SettingsError(f"model {model.name!r} has {model.num_classes} classes without "
                            f"names here: give class numbers like #12, not {spec!r}") from None


def extra_objective(model: DreamModel, settings: DreamSettings,
                    layers: Sequence[tuple[str, float]]) -> Objective | None:
    """The objective the neuron / class / guide / rank settings ask for, summed (each
    replaces the plain layer objective); None when none is set.  ``layers``: the dream's
    (layer, weight) pairs, already checked against the model (dream.build_objective)."""
    if not uses_extra_objective(settings):
        return None
    main = layers[0][0]
    parts: list[Objective] = []
    try:
        if settings.neuron:
            layer, channel, x, y = ox.parse_neuron(settings.neuron, main)
            check_layer(model, layer)  # the neuron's own layer
            n = model.spec.layers[layer]
            if channel >= n:
                raise SettingsError(f"neuron channel {channel} is out of range for {layer!r}, "
                                    f"which has {n} channels (0-{n - 1})")
            parts.append(ox.neuron(layer, channel, x, y))
        if settings.classes:
            if not model.has_logits and not model.arch_has_head:
                raise SettingsError(
                    f"model {model.name!r} cannot aim at a class: a {model.spec.arch} keeps no "
                    "classifier here (VGG's would hold 470 MB through every dream); use a "
                    "GoogLeNet, resnet50 or inception_v3")
            if not model.has_logits:
                raise SettingsError(f"model {model.name!r} has no classifier (trunk-only "
                                    "weights, or one for another number of classes than "
                                    f"{model.spec.arch}'s), so it cannot aim at a class")
            parts.append(ox.class_logits(_class_indices(model, settings.classes)))
        if settings.guide:
            parts.append(ox.guide(main, guide_vectors(model, settings.guide, main)))
        if settings.rank:
            for name, weight in layers:
                if abs(settings.rank) > model.spec.layers[name]:
                    raise SettingsError(f"rank {settings.rank}: layer {name!r} has only "
                                        f"{model.spec.layers[name]} channels")
                parts.append(weight * ox.ranked_channels(name, settings.rank))
    except ox.ObjectiveError as exc:
        raise SettingsError(str(exc)) from None
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def guide_vectors(model: DreamModel, path: str, layer: str,
                  read_image: Callable[[str], object] | None = None) -> Tensor:
    """Feature vectors of the guide image file at ``layer`` (the guide downscaled)."""
    if read_image is None:
        from ..imageio import read_image as read_file  # the CLI's image reader

        def read_image(p: str) -> object:
            return read_file(p, max_side=ox.GUIDE_MAX_SIDE)[0]
    if not Path(path).is_file():
        raise SettingsError(missing_guide(path))
    try:
        image = read_image(path)
    except ValueError as exc:
        raise SettingsError(f"cannot read guide image: {exc}") from None
    x = torch.as_tensor(image, dtype=torch.float32)
    x = x[..., :3] if x.shape[2] >= 3 else x[..., :1].expand(-1, -1, 3)  # alpha dropped
    # downscaled where it was read, so only the small guide goes to the device
    x = ox.prepare_guide(x.permute(2, 0, 1)[None]).to(model.device)
    # a guide too small (or thin) for the layer is grown with mirrored copies of itself, as
    # an image to dream is (the network's windows would not fit it)
    need = min_input_side(model, (layer,)) or 1
    h, w = x.shape[2:]
    if h < need or w < need:
        x = mirror_pad(x[0].permute(1, 2, 0), max(h, need), max(w, need)).permute(2, 0, 1)[None]
    with torch.no_grad():
        act = model(x, [layer])[layer]
    return ox.guide_vectors(act)


def tile_size(settings: DreamSettings, tile: int, size: tuple[int, int]) -> int:
    """A neuron sits at one position of the whole image, which tiles would each put at
    their own centre: dream it untiled."""
    return max(tile, *size) if settings.neuron else tile


# --- seamless ----------------------------------------------------------------------------


def make_tileable(x: Tensor, band: float = 0.125) -> Tensor:
    """Even out the jump between opposite edges of (1, 3, H, W): within a band along each
    edge, half the (lightly smoothed) difference is added on one side and taken on the other,
    so the wrap-around continues like the interior does."""
    out = x.clone()
    for dim in (3, 2):  # across the left/right edges, then top/bottom
        n = out.shape[dim]
        b = max(1, int(n * band))
        first, last = out.narrow(dim, 0, 1), out.narrow(dim, n - 1, 1)
        jump = last - first  # how far the wrap-around jumps
        along = 2 if dim == 3 else 3  # smooth the jump along the edge, not across it
        k = max(1, out.shape[along] // 32)
        if k > 1:
            pad = (k, k, 0, 0) if along == 3 else (0, 0, k, k)
            jump = F.avg_pool2d(F.pad(jump, pad, mode="circular"),
                                (1, 2 * k + 1) if along == 3 else (2 * k + 1, 1), stride=1)
        ramp = 1.0 - torch.arange(b, device=x.device, dtype=x.dtype) / b
        shape = [1, 1, 1, 1]
        shape[dim] = b
        ramp = ramp.view(shape)
        out.narrow(dim, 0, b).add_(0.5 * jump * ramp)
        out.narrow(dim, n - b, b).sub_(0.5 * jump * ramp.flip(dim))
    return out.clamp_(0.0, 1.0)


def resize(x: Tensor, size: tuple[int, int], seamless: bool) -> Tensor:
    """Octave resize; periodic for seamless dreams so the edges do not clamp."""
    down = size[0] < x.shape[2]
    if seamless:
        if down:  # antialias: blur away what the smaller size cannot hold, edges wrapped
            ratio = x.shape[2] / size[0]
            x = blur(x, 0.5 * math.sqrt(ratio * ratio - 1.0), wrap=True)
        return resize_wrapped(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=down)


def seamless_offset(rng: random.Random, offset: tuple[int, int], size: tuple[int, int],
                    seamless: bool) -> tuple[int, int]:
    """Seamless dreams roll anywhere on the torus each step, so the network sees across the
    image's edges as often as across any other line."""
    if not seamless:
        return offset
    return offset[0] + rng.randrange(size[0]), offset[1] + rng.randrange(size[1])


# --- the step ----------------------------------------------------------------------------


class Stepper:
    """Turns the objective's gradient into the step direction the settings ask for."""

    def __init__(self, settings: DreamSettings) -> None:
        self.s = settings
        self.gen = torch.Generator().manual_seed(settings.seed)

    def direction(self, x: Tensor, grad: Callable[[Tensor], Tensor], step: int,
                  steps: int) -> Tensor:
        """``grad(image)`` is d objective / d image; returns the normalised ascent step."""
        s = self.s
        if s.transform:
            xr = x.detach().requires_grad_(True)
            with torch.enable_grad():
                view = random_affine(xr, self.gen, wrap=s.seamless)
            (g,) = torch.autograd.grad(view, xr, grad(view.detach()))
        else:
            g = grad(x)
        if s.smooth > 0:
            g = blur(g, smoothing_sigma(s.smooth, step, steps), wrap=True)
        d = normalize(g, s.norm, wrap=s.seamless)
        return luma_only(d) if s.keep_colors else d

    def after_step(self, x: Tensor) -> Tensor:
        """The penalties as their own small descent steps on the image, in place (a fixed
        rate, unlike the normalised dream step, so they settle instead of oscillating)."""
        tv_step(x, self.s.tv * TV_RATE, wrap=self.s.seamless)
        return l2_step(x, self.s.l2 * L2_RATE)


def finish(dreamed: Tensor, source: Tensor, settings: DreamSettings) -> Tensor:
    """After the last step: the original chroma back for keep-colours."""
    return keep_colors(dreamed, source) if settings.keep_colors else dreamed
