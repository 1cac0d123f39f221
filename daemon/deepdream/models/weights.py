"""Getting trained weights into a trunk: torchvision's cache, user files, or seeded random."""

from __future__ import annotations

import os
import pickle
import urllib.error
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from deepdream_protocol.messages import first_line
from torch import nn

from .archs import Arch


class ModelError(ValueError):
    """A model cannot be found, built or loaded; the message is one line with the fix."""


def build_random(arch: Arch, seed: int) -> nn.Module:
    """The architecture with random weights drawn from ``seed``, not touching global RNG.

    Convolutions get He initialisation: torchvision's own small-std init makes activations
    vanish with depth (1e-17 at GoogLeNet's inception4c), and a random network used for
    checks must still respond to its input at every layer.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = arch.build()
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        return net


def torchvision_checkpoint(arch: Arch) -> tuple[str, Path]:
    """URL of torchvision's default weights for ``arch`` and where its cache keeps them."""
    weights = getattr(torchvision.models, arch.weights_enum).DEFAULT
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    return weights.url, path


def load_torchvision_weights(arch: Arch, net: nn.Module) -> bool:
    """Load torchvision's pretrained weights, downloading them into TORCH_HOME once; True
    when the classifier head came with them."""
    url, path = torchvision_checkpoint(arch)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(path), progress=False)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise ModelError(
                f"could not download the {arch.name} weights ({_reason(exc)}); on a machine "
                f"without internet, fetch {url} and save it as {path}"
            ) from None
    return load_file_weights(arch, net, path)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # a URLError's cause (an OSError), else words
    return first_line(reason if isinstance(reason, BaseException) else exc)


def _torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (torch.jit.save: code beside the tensors),
    told before torch.load, which warns of one before it refuses it."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _unreadable(path: Path, exc: BaseException) -> str:
    """Why torch.load refused ``path``, in words for its user: torch's own are a bare number
    for a text file, or advice to load with weights_only=False, which a models file cannot."""
    first = first_line(exc)
    try:
        with open(path, "rb") as f:
            head = f.read(10)
    except OSError:  # (no permission to read it: torch's words say so)
        return first
    if head[8:10] == b'{"':  # safetensors: a header's length, then the header's JSON
        return ("it is a safetensors file, which is not read here; save the weights with "
                "torch.save(model.state_dict(), path)")
    if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":  # torch.save's zip, a legacy pickle
        return "it is not a PyTorch weights file (what torch.save writes)"
    if isinstance(exc, pickle.UnpicklingError):  # weights_only met something besides tensors
        return ("it holds more than tensors (a whole pickled model?); save the model's "
                "state_dict() instead")
    return first


#: where training scripts keep a network's state_dict inside a checkpoint
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net")


def missing_weights(path: Path) -> str | None:
    """Why ``path`` is no weights file to read ("weights file P does not exist"), or None."""
    if path.is_file():
        return None
    return f"weights file {path} {'is a folder' if path.is_dir() else 'does not exist'}"


def load_file_weights(arch: Arch, net: nn.Module, path: Path) -> bool:
    """Load a state_dict file (full network or trunk only), checking every key and shape;
    True when it also held the classifier head (see ``load_head``)."""
    missing = missing_weights(path)
    if missing:
        raise ModelError(f"{missing}; fix the path in the models file")
    if _torchscript(path):  # (torch's own answer suggests an unsafe load)
        raise ModelError(f"cannot read weights file {path}: it is a TorchScript archive "
                         "(torch.jit.save); save the model's state_dict() instead")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise ModelError(f"cannot read weights file {path}: {_unreadable(path, exc)}") from None
    # a training checkpoint keeps the weights under a key of its own, beside its optimiser's
    inner = next((state[k] for k in _CHECKPOINT_KEYS if isinstance(state, Mapping)
                  and isinstance(state.get(k), Mapping)), None)
    if inner is not None:
        state = inner
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ModelError(f"weights file {path} does not hold a state_dict of tensors")
    damaged = next((k for k, v in state.items() if v.is_meta or (
        v.is_floating_point() and not bool(torch.isfinite(v).all()))), None)
    if damaged is not None:  # (NaN weights dreamed a black picture, and said nothing)
        raise ModelError(f"weights file {path} is damaged: {damaged!r} holds "
                         f"{'no data' if state[damaged].is_meta else 'NaN or infinite values'}")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel saves
    if arch.rename_keys is not None:
        state = arch.rename_keys(state)
    net.load_state_dict(match_trunk(arch, net, state, path), strict=False)
    return load_head(arch, net, state)


def load_head(arch: Arch, net: nn.Module, state: Mapping[str, torch.Tensor]) -> bool:
    """Load the classifier head (``arch.logits_prefix`` keys) when the file has all of it with
    the right shapes; a trunk-only file is fine, it just gives no logits."""
    if not arch.logits_prefix:
        return False
    want = {k: v for k, v in net.state_dict().items() if k.startswith(arch.logits_prefix)}
    if not want or any(k not in state or state[k].shape != v.shape for k, v in want.items()):
        return False
    net.load_state_dict({k: state[k].to(v.dtype) for k, v in want.items()}, strict=False)
    return True


def match_trunk(
    arch: Arch, net: nn.Module, state: dict[str, torch.Tensor], path: Path
) -> dict[str, torch.Tensor]:
    """Map a file's keys onto the trunk's; every trunk tensor must be there with its shape."""
    expected = {
        k: v for k, v in net.state_dict().items()
        if not k.startswith(arch.head_prefixes) and not k.endswith("num_batches_tracked")
    }
    if arch.trunk_prefix and not any(k.startswith(arch.trunk_prefix) for k in state):
        state = {arch.trunk_prefix + k: v for k, v in state.items()}
    missing = [k for k in expected if k not in state]
    if missing:
        raise ModelError(
            f"weights file {path} does not fit {arch.name}: {len(missing)} trunk tensor(s) "
            f"missing, e.g. {missing[0]!r}; check the model's arch in the models file"
        )
    foreign = [
        k for k in state
        if k not in expected and not k.startswith(arch.head_prefixes)
        and not k.endswith("num_batches_tracked")
    ]
    if foreign:
        raise ModelError(
            f"weights file {path} does not fit {arch.name}: unexpected tensor {foreign[0]!r}; "
            "check the model's arch in the models file"
        )
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise ModelError(
                f"weights file {path} does not fit {arch.name}: {key} has shape "
                f"{tuple(got.shape)}, {arch.name} needs {tuple(want.shape)}"
            )
    return {k: state[k].to(expected[k].dtype) for k in expected}
