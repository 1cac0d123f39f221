"""Objectives beyond "amplify a layer": neuron, class, guide image and ranked channels.

Each is an ``objectives.Objective`` (compose with ``+`` and ``weight * objective``) over the
model's activations ``{layer name: (N, C, H, W)}``; class objectives read
``features["logits"]``, which a model with its classifier provides as a last stage.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from .objectives import Features, Objective, mean_square
from .tiling import ROLL

LOGITS = "logits"


class ObjectiveError(ValueError):
    """A bad objective option; the message is one line saying what to change."""


def _layer(feats: Features, layer: str) -> Tensor:
    if layer not in feats:
        raise ObjectiveError(f"objective needs layer {layer!r}, which was not computed")
    return feats[layer]


# --- neuron ------------------------------------------------------------------------------


def neuron(layer: str, channel: int, x: float = 0.5, y: float = 0.5) -> Objective:
    """One channel at one position; ``x``/``y`` are fractions of the width/height (0..1),
    so the same neuron is hit at every octave's size."""
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ObjectiveError(f"neuron position must be fractions in 0..1, not {x},{y}")

    def objective(feats: Features) -> Tensor:
        act = _layer(feats, layer)
        if not 0 <= channel < act.shape[1]:
            raise ObjectiveError(f"layer {layer} has channels 0..{act.shape[1] - 1}, "
                                 f"not {channel}")
        ry, rx = ROLL.get()
        iy = _rolled(y, ry, act.shape[2])
        ix = _rolled(x, rx, act.shape[3])
        return act[:, channel, iy, ix].float().mean()

    return Objective((layer,), objective)


def _rolled(at: float, roll: float, n: int) -> int:
    """Index of the position ``at`` (a fraction) among ``n`` cells of a picture rolled back
    by ``roll`` (a fraction of its side)."""
    return min(n - 1, round((at * (n - 1) - roll * n) % n))


def parse_neuron(spec: str, default_layer: str) -> tuple[str, int, float, float]:
    """``[LAYER:]CHANNEL[@X,Y]`` -> (layer, channel, x, y); X, Y fractions, centre default."""
    m = re.fullmatch(r"\s*(?:([^:@\s]+)\s*:)?\s*(\d+)\s*(?:@\s*([\d.]+)\s*,\s*([\d.]+))?\s*",
                     spec)
    if not m:
        raise ObjectiveError(f"neuron must look like [LAYER:]CHANNEL[@X,Y], not {spec!r}")
    layer, channel, x, y = m.groups()
    fx, fy = (float(x), float(y)) if x is not None else (0.5, 0.5)
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        raise ObjectiveError(f"neuron position {x},{y} must be fractions in 0..1")
    return layer or default_layer, int(channel), fx, fy


# --- class -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet class names in index order (shipped with torchvision, offline)."""
    from torchvision.models import GoogLeNet_Weights

    return tuple(GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"])


def _words(name: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9']+", name.lower()))


def matching_classes(search: str, categories: Sequence[str]) -> list[int]:
    """What ``deepdream classes SEARCH`` lists: names holding the text, and the names that
    ``--class SEARCH`` would take by their words ("tabby cat" lists tabby)."""
    needle, words = search.strip().lower(), _words(search)
    return [i for i, c in enumerate(categories)
            if needle in c.lower() or (words and (_words(c) <= words or words <= _words(c)))]


def resolve_class(name: str, categories: Sequence[str]) -> int:
    """One class name (case-insensitive) or index -> index.

    A name matches exactly, else the one class whose words are all in it ("tabby cat" ->
    "tabby") or that has all of its words ("goldfish"); otherwise the error suggests the
    closest names.
    """
    query = name.strip()
    if re.fullmatch(r"#?\d+", query):
        index = int(query.lstrip("#"))
        if index >= len(categories):
            raise ObjectiveError(f"class index {index} is out of range 0..{len(categories) - 1}")
        return index
    lowered = [c.lower() for c in categories]
    exact = [i for i, c in enumerate(lowered) if c == query.lower()]
    if len(exact) == 1:
        return exact[0]
    words = _words(query)
    if not exact and words:
        inside = [i for i, c in enumerate(categories) if _words(c) <= words]
        around = [i for i, c in enumerate(categories) if words <= _words(c)]
        for candidates in (inside, around):
            if len(candidates) == 1:
                return candidates[0]
        exact = inside or around
    if exact:
        options = ", ".join(f"{categories[i]} (#{i})" for i in exact[:8])
        raise ObjectiveError(f"class {name!r} is ambiguous: {options}; give one name or #index")
    close = difflib.get_close_matches(query.lower(), lowered, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(categories[lowered.index(c)]) for c in close)}?" \
        if close else "; 'deepdream classes' lists them"
    raise ObjectiveError(f"unknown class {name!r}{hint}")


def resolve_classes(spec: str | Sequence[str], categories: Sequence[str]) -> list[int]:
    """Comma-separated names (or a list of them) -> class indices, in order, no repeats."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n for n in (s.strip() for s in names) if n]
    if not names:
        raise ObjectiveError("no class named; give one or more class names")
    out: list[int] = []
    for n in names:
        i = resolve_class(n, categories)
        if i not in out:
            out.append(i)
    return out


def class_logits(indices: Sequence[int]) -> Objective:
    """Mean logit of the given classes (pre-softmax: pushes the class up, not others down)."""
    index = list(indices)

    def objective(feats: Features) -> Tensor:
        logits = feats.get(LOGITS)
        if logits is None:
            raise ObjectiveError("class objective needs the model's classifier, which is "
                                 "missing (trunk-only weights)")
        if max(index) >= logits.shape[1]:
            raise ObjectiveError(f"the classifier has {logits.shape[1]} classes, "
                                 f"class #{max(index)} is out of range")
        return logits[:, index].float().mean()

    return Objective((LOGITS,), objective)


# --- guide image -------------------------------------------------------------------------

GUIDE_MAX_SIDE = 224  # Google's guide images were 224 px; the layer sees the same scale
GUIDE_MAX_VECTORS = 4096  # enough variety, and the (positions x vectors) product stays small


def guide_size(height: int, width: int, max_side: int = GUIDE_MAX_SIDE) -> tuple[int, int]:
    """The guide's size for feature extraction: longer side at most ``max_side``, never
    enlarged, aspect kept."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def guide_vectors(guide_act: Tensor, max_vectors: int = GUIDE_MAX_VECTORS) -> Tensor:
    """A guide image's activation (1, C, H, W) -> its feature vectors (C, M), evenly
    subsampled to at most ``max_vectors``; detached (the guide is fixed)."""
    vectors = guide_act.detach()[0].flatten(1)
    if vectors.shape[1] > max_vectors:
        pick = torch.linspace(0, vectors.shape[1] - 1, max_vectors).round().long()
        vectors = vectors[:, pick.to(vectors.device)]
    return vectors


def prepare_guide(image: Tensor, max_side: int = GUIDE_MAX_SIDE) -> Tensor:
    """Guide image (1, C, H, W) in [0, 1] downscaled (area average) for feature extraction."""
    h, w = guide_size(image.shape[2], image.shape[3], max_side)
    if (h, w) == tuple(image.shape[2:]):
        return image
    return F.interpolate(image, size=(h, w), mode="area")


def guide(layer: str, vectors: Tensor) -> Objective:
    """Google's guided dreaming: each position's activation vector is pulled towards the
    guide feature it is most similar to (largest dot product)."""

    def objective(feats: Features) -> Tensor:
        act = _layer(feats, layer)
        if act.shape[1] != vectors.shape[0]:
            raise ObjectiveError(f"guide features have {vectors.shape[0]} channels, layer "
                                 f"{layer} has {act.shape[1]}")
        x = act.float().flatten(2)  # (N, C, P)
        g = vectors.float()
        best = torch.einsum("ncp,cm->npm", x.detach(), g).argmax(-1)  # (N, P)
        target = g.t()[best]  # (N, P, C)
        return torch.einsum("ncp,npc->", x, target) / x.shape[2]

    return Objective((layer,), objective)


# --- channel ranking ---------------------------------------------------------------------


def rank_channels(act: Tensor, count: int) -> list[int]:
    """The ``count`` channels with the highest mean activation (``count`` < 0: the lowest
    of those that respond at all: a channel that is zero everywhere, as many are after a
    ReLU, has no gradient, and a dream of only such channels would change nothing)."""
    if count == 0:
        raise ObjectiveError("channel ranking needs a non-zero count")
    channels = act.shape[1]
    if abs(count) > channels:
        raise ObjectiveError(f"cannot rank {abs(count)} channels: the layer has {channels}")
    act = act.detach()
    means = act.mean(dim=(0, 2, 3))
    if count > 0:
        return means.argsort(descending=True)[:count].tolist()
    alive = (act.abs().amax(dim=(0, 2, 3)) > 0).nonzero().flatten()
    if alive.numel() == 0:
        raise ObjectiveError("no channel of the layer responds to this image; nothing to "
                             "amplify (try another layer)")
    return alive[means[alive].argsort()][:-count].tolist()  # (fewer if fewer respond)


def ranked_channels(layer: str, count: int) -> Objective:
    """Amplify the layer's ``count`` strongest (weakest if negative) channels for this image.

    The channels are chosen on the first call (the first, smallest octave of the original
    image) and kept, so every later step pushes the same ones.
    """
    if count == 0:
        raise ObjectiveError("channel ranking needs a non-zero count")
    chosen: list[int] = []

    def objective(feats: Features) -> Tensor:
        act = _layer(feats, layer)
        if not chosen:
            chosen.extend(rank_channels(act, count))
        return mean_square(act[:, chosen])

    out = Objective((layer,), objective)
    out.channels = chosen  # type: ignore[attr-defined]  # filled on first use, for reports
    return out
