"""The model registry: built-in layer tables match the real networks, custom TOML models,
trunk-only weight files, checked keys and shapes, and the offline download error."""

from __future__ import annotations

import struct
import urllib.error
import warnings
from pathlib import Path

import pytest
import torch
from deepdream.models import ModelError, registry
from deepdream.models.archs import ARCHS, CAFFE_MEAN_BGR
from deepdream.models.weights import build_random, torchvision_checkpoint

pytestmark = pytest.mark.usefixtures("isolated_config")


def write_toml(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def test_builtin_models_and_the_layer_names_users_know() -> None:
    specs = registry.available()
    assert list(specs)[:5] == ["googlenet", "vgg16", "vgg19", "resnet50", "inception_v3"]
    assert specs["googlenet"].default_layer == "inception4c"
    assert specs["googlenet"].layers["inception4c"] == 512
    assert specs["googlenet"].layers["inception5b"] == 1024
    assert specs["vgg16"].layers["conv4_3"] == specs["vgg16"].layers["relu4_3"] == 512
    assert {"conv1_1", "relu1_1", "pool1", "conv5_3", "pool5"} <= set(specs["vgg16"].layers)
    assert "conv5_4" in specs["vgg19"].layers and "conv5_4" not in specs["vgg16"].layers
    assert specs["resnet50"].layers["layer3"] == 1024
    assert specs["inception_v3"].layers["Mixed_5b"] == 256


@pytest.mark.parametrize("arch", list(ARCHS))
def test_listed_channel_counts_are_what_the_network_produces(tmp_path: Path, arch: str) -> None:
    toml = write_toml(tmp_path / "m.toml", f'[models.r]\narch = "{arch}"\nweights = "random"\n')
    model = registry.load("r", "cpu", models_file=toml)
    layers = model.spec.layers
    with torch.no_grad():
        feats = model(torch.rand(1, 3, 96, 96), list(layers))
    assert {name: f.shape[1] for name, f in feats.items()} == layers


def test_random_weights_are_seeded(tmp_path: Path) -> None:
    toml = write_toml(tmp_path / "m.toml", '[models.a]\narch = "googlenet"\nweights = "random"\n'
                      '[models.b]\narch = "googlenet"\nweights = "random"\nseed = 1\n')
    a1, a2, b = (registry.load(n, "cpu", models_file=toml) for n in ("a", "a", "b"))
    w = [m.stages[0].conv.weight for m in (a1, a2, b)]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


def test_a_trunk_only_vgg_file_loads_with_caffe_preprocessing(tmp_path: Path) -> None:
    features = build_random(ARCHS["vgg16"], seed=7).features
    torch.save(features.state_dict(), tmp_path / "trunk.pth")  # keys 0.weight … 28.bias
    toml = write_toml(tmp_path / "m.toml", '[models.hed]\narch = "vgg16"\n'
                      'weights = "trunk.pth"\npreprocess = "caffe"\n')
    model = registry.load("hed", "cpu", models_file=toml)
    assert torch.equal(model.stages[0].weight, features[0].weight)
    x = torch.rand(1, 3, 32, 32)
    expected = features[0](x.flip(1) * 255 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
    with torch.no_grad():
        assert torch.allclose(model(x, ["conv1_1"])["conv1_1"], expected, atol=1e-3)


def test_a_full_googlenet_file_with_aux_heads_loads(tmp_path: Path) -> None:
    import torchvision

    with torch.random.fork_rng():
        torch.manual_seed(3)
        full = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    torch.save(full.state_dict(), tmp_path / "g.pth")
    toml = write_toml(tmp_path / "m.toml", '[models.g]\narch = "googlenet"\nweights = "g.pth"\n')
    model = registry.load("g", "cpu", models_file=toml, accelerate=False)  # unfolded BN
    assert torch.equal(model.stages[0].conv.weight, full.conv1.conv.weight)


@pytest.mark.parametrize(("damage", "words"), [
    (lambda sd: sd.update({"0.weight": torch.zeros(64, 3, 5, 5)}),
     r"features.0.weight has shape \(64, 3, 5, 5\), vgg16 needs \(64, 3, 3, 3\)"),
    (lambda sd: sd.pop("28.bias"), r"1 trunk tensor\(s\) missing, e.g. 'features.28.bias'"),
    (lambda sd: sd.update({"fc9.weight": torch.zeros(1)}), "unexpected tensor"),
])
def test_weights_that_do_not_fit_are_clear_errors(tmp_path: Path, damage, words: str) -> None:
    state = build_random(ARCHS["vgg16"], seed=0).features.state_dict()
    damage(state)
    torch.save(state, tmp_path / "bad.pth")
    toml = write_toml(tmp_path / "m.toml", '[models.bad]\narch = "vgg16"\nweights = "bad.pth"\n')
    with pytest.raises(ModelError, match=words) as info:
        registry.load("bad", "cpu", models_file=toml)
    assert "\n" not in str(info.value)


def test_unreadable_or_missing_weight_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    toml = write_toml(tmp_path / "m.toml", '[models.junk]\narch = "vgg16"\nweights = "junk.pth"\n'
                      '[models.gone]\narch = "vgg16"\nweights = "gone.pth"\n')
    with pytest.raises(ModelError, match="cannot read weights file"):
        registry.load("junk", "cpu", models_file=toml)
    with pytest.raises(ModelError, match="gone.pth does not exist"):
        registry.load("gone", "cpu", models_file=toml)
    (tmp_path / "dir.pth").mkdir()  # (it said "does not exist")
    toml = write_toml(tmp_path / "d.toml", '[models.d]\narch = "vgg16"\nweights = "dir.pth"\n')
    with pytest.raises(ModelError, match="dir.pth is a folder; fix the path"):
        registry.load("d", "cpu", models_file=toml)


def test_a_training_checkpoint_gives_its_networks_weights(tmp_path: Path) -> None:
    """The network's state_dict beside the optimiser's and the epoch, as training scripts
    save them (it was refused: "does not hold a state_dict of tensors")."""
    net = build_random(ARCHS["googlenet"], seed=5)
    torch.save({"epoch": 3, "model_state_dict": net.state_dict(),
                "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.1}]}},
               tmp_path / "ckpt.pth")
    toml = write_toml(tmp_path / "m.toml", '[models.c]\narch = "googlenet"\nweights = "ckpt.pth"\n')
    model = registry.load("c", "cpu", models_file=toml, accelerate=False)
    assert torch.equal(model.stages[0].conv.weight, net.conv1.conv.weight)


@pytest.mark.parametrize(("content", "words"), [
    (b"junk\n", "is not a PyTorch weights file"),  # (torch said only "174812789")
    (b"", "is not a PyTorch weights file"),  # (torch said only "EOFError")
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "is not a PyTorch weights file"),
    (None, "save the model's state_dict()"),  # (torch: weights_only=False, in ANSI bold)
    # a safetensors file (its header's length, then JSON): it said "not a PyTorch weights
    # file", which did not tell what to do
    (struct.pack("<Q", 19) + b'{"__metadata__":{}}',
     "a safetensors file, which is not read here; save the"),
])
def test_a_file_that_is_no_state_dict_says_what_it_is(tmp_path: Path, content: bytes | None,
                                                      words: str) -> None:
    path = tmp_path / "w.pth"
    if content is None:
        torch.save(torch.nn.Linear(2, 2), path)  # a whole pickled model
    else:
        path.write_bytes(content)
    toml = write_toml(tmp_path / "m.toml", '[models.w]\narch = "vgg16"\nweights = "w.pth"\n')
    with pytest.raises(ModelError) as info:
        registry.load("w", "cpu", models_file=toml)
    assert f"cannot read weights file {path}: " in str(info.value)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert "\x1b" not in str(info.value) and "weights_only" not in str(info.value)


def test_offline_download_failure_names_where_to_put_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network(url: str, dst: str, **_: object) -> None:  # tests never download
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    url, path = torchvision_checkpoint(ARCHS["googlenet"])
    with pytest.raises(ModelError) as info:
        registry.load("googlenet", "cpu")
    message = str(info.value)
    assert url in message and str(path) in message and "\n" not in message


def test_cached_torchvision_weights_are_used_without_downloading(
    monkeypatch: pytest.MonkeyPatch, isolated_config: Path,
) -> None:
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *a, **k: pytest.fail("tried to download"))
    _, path = torchvision_checkpoint(ARCHS["googlenet"])
    assert str(path).startswith(str(isolated_config / "torch"))  # TORCH_HOME's cache
    net = build_random(ARCHS["googlenet"], seed=5)
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    model = registry.load("googlenet", "cpu", accelerate=False)  # BatchNorm left unfolded
    assert torch.equal(model.stages[0].conv.weight, net.conv1.conv.weight)


def test_models_files_from_config_folder_env_and_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_config: Path,
) -> None:
    config = isolated_config / "deepdream"
    config.mkdir()
    write_toml(config / "models.toml", '[models.mine]\narch = "vgg19"\nweights = "random"\n')
    env = write_toml(tmp_path / "env.toml",
                     '[models.envy]\narch = "resnet50"\nweights = "random"\n')
    opt = write_toml(tmp_path / "opt.toml",
                     '[models.mine]\narch = "googlenet"\nweights = "random"\nlayer = "conv3"\n')
    assert registry.available()["mine"].arch == "vgg19"
    monkeypatch.setenv("DEEPDREAM_MODELS_FILE", str(env))
    specs = registry.available(models_file=opt)
    assert specs["envy"].arch == "resnet50"
    assert specs["mine"].arch == "googlenet" and specs["mine"].default_layer == "conv3"


@pytest.mark.parametrize(("body", "words"), [
    ('[models.x]\narch = "alexnet"\n', "arch must be one of googlenet, vgg16"),
    ('[models.x]\narch = "vgg16"\npreprocess = "bgr"\n', "preprocess must be 'torchvision' or"),
    ('[models.x]\narch = "vgg16"\nlayer = "inception4c"\n', "vgg16 has no layer 'inception4c'"),
    ('[models.x]\narch = "vgg16"\ncolour = 1\n', "unknown key 'colour'"),
    ('[models.x\n', "cannot read models file"),
    ('[models.x]\narch = ["googlenet"]\n', "arch must be one of googlenet"),
    ('[models.x]\narch = "vgg16"\nlayer = ["relu4_3"]\n', "vgg16 has no layer"),
    # (its model was unknown, the table unsaid)
    ('[hed]\narch = "vgg16"\n', r"unknown table or key 'hed'; each model goes under \[models"),
])
def test_bad_models_files(tmp_path: Path, body: str, words: str) -> None:
    with pytest.raises(ModelError, match=words):
        registry.available(models_file=write_toml(tmp_path / "m.toml", body))


def test_a_models_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe")
    with pytest.raises(ModelError, match="photo.png: it is not a UTF-8 text"):
        registry.available(models_file=path)


def test_a_relative_models_file_is_named_in_full(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon names where its models come from; a client in another folder compares that
    with its own file (a relative name made it refuse the very file the daemon read)."""
    write_toml(tmp_path / "m.toml", '[models.mine]\narch = "googlenet"\nweights = "random"\n')
    monkeypatch.chdir(tmp_path)
    assert registry.available(models_file="m.toml")["mine"].source == str(tmp_path / "m.toml")


def test_dream_via_daemon_checks_a_relative_models_file_against_the_daemons(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dream --daemon --models-file m.toml`: the daemon must read the model from that file.
    With the registry naming files in full, a relative name no longer matched and the check
    was skipped: the daemon's own 'mine' would have dreamed, unsaid."""
    from deepdream.cli import CliError
    from deepdream.cli_daemon import check_daemon_models

    write_toml(tmp_path / "m.toml", '[models.mine]\narch = "googlenet"\nweights = "random"\n')
    monkeypatch.chdir(tmp_path)
    elsewhere = {"models": {"mine": {"source": str(tmp_path / "other.toml")}}}
    with pytest.raises(CliError, match="reads model 'mine' from .*other.toml"):
        check_daemon_models(elsewhere, "tcp://127.0.0.1:5599", {"model": "mine"}, "m.toml")
    same = {"models": {"mine": {"source": str(tmp_path / "m.toml")}}}
    check_daemon_models(same, "tcp://127.0.0.1:5599", {"model": "mine"}, "m.toml")


@pytest.mark.parametrize("damage", ["nan", "inf", "meta"])
def test_damaged_weights_are_refused_by_name(tmp_path: Path, damage: str) -> None:
    """NaN weights used to dream a black picture, said nothing, and exit 0."""
    state = build_random(ARCHS["googlenet"], seed=1).state_dict()
    shape = state["conv1.conv.weight"].shape
    state["conv1.conv.weight"] = (torch.empty(shape, device="meta") if damage == "meta" else
                                  torch.full(shape, float(damage)))
    torch.save(state, tmp_path / "w.pth")
    toml = write_toml(tmp_path / "m.toml", '[models.w]\narch = "googlenet"\nweights = "w.pth"\n')
    words = "no data" if damage == "meta" else "NaN or infinite values"
    with pytest.raises(ModelError, match=f"is damaged: 'conv1.conv.weight' holds {words}"):
        registry.load("w", "cpu", models_file=toml)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # (torch.jit.script makes the file)
def test_a_torchscript_file_says_what_it_is_without_a_warning(tmp_path: Path) -> None:
    """Torch warned, then advised a load that runs the file's code."""
    torch.jit.script(torch.nn.Conv2d(3, 3, 1)).save(str(tmp_path / "ts.pth"))
    toml = write_toml(tmp_path / "m.toml", '[models.ts]\narch = "vgg16"\nweights = "ts.pth"\n')
    with warnings.catch_warnings(record=True) as seen:  # (the filters as they are)
        with pytest.raises(ModelError) as info:
            registry.load("ts", "cpu", models_file=toml)
    assert not [w for w in seen if "TorchScript" in str(w.message)]
    assert "a TorchScript archive (torch.jit.save); save the model's state_dict()" in str(
        info.value)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)


def test_unknown_model_and_missing_models_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'nope'; choose one of googlenet"):
        registry.load("nope", "cpu")
    with pytest.raises(ModelError, match="from --models-file"):
        registry.available(models_file=tmp_path / "none.toml")


def test_a_caffe_googlenet_file_naming_its_classifier_loss3_classifier_gets_logits(
    tmp_path: Path,
) -> None:
    # Some conversions spell the final layer Caffe's way (loss3/classifier -> loss3_classifier);
    # such a file must give class objectives, not load as trunk-only.
    from deepdream.models.bvlc_googlenet import bvlc_googlenet

    with torch.random.fork_rng():
        torch.manual_seed(5)
        net = bvlc_googlenet().eval()
    state = net.state_dict()
    state["loss3_classifier.weight"] = state.pop("loss3_classifier_1.weight")
    state["loss3_classifier.bias"] = state.pop("loss3_classifier_1.bias")
    torch.save(state, tmp_path / "bvlc.pth")
    toml = write_toml(tmp_path / "m.toml",
                      '[models.bvlc]\narch = "bvlc_googlenet"\nweights = "bvlc.pth"\n')
    model = registry.load("bvlc", "cpu", models_file=toml, accelerate=False)
    assert model.num_classes == 1000
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        got = model(x, ["logits"])["logits"]
        want = net(x.flip(1) * 255 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
    assert torch.allclose(got.flatten(), want.flatten(), atol=1e-3)


@pytest.mark.parametrize(("arch", "size"), [("resnet50", 64), ("inception_v3", 96)])
def test_a_full_torchvision_file_gives_the_networks_own_logits(tmp_path: Path, arch: str,
                                                               size: int) -> None:
    """torchvision's weights carry the classifier: aiming at a class works on ResNet-50
    and Inception-v3 as on the GoogLeNets (it was refused as 'trunk-only weights'), with
    the logits the whole network computes, prepared for speed or not."""
    import torchvision

    with torch.random.fork_rng():
        torch.manual_seed(4)
        kwargs = {"aux_logits": False, "init_weights": True} if arch == "inception_v3" else {}
        net = getattr(torchvision.models, arch)(weights=None, **kwargs).eval()
    torch.save(net.state_dict(), tmp_path / "full.pth")
    toml = write_toml(tmp_path / "m.toml", f'[models.full]\narch = "{arch}"\n'
                      'weights = "full.pth"\n')
    model = registry.load("full", "cpu", models_file=toml, accelerate=False)
    assert model.num_classes == 1000
    x = torch.rand(1, 3, size, size)
    mean, std = ((0.5,) * 3, (0.5,) * 3) if arch == "inception_v3" else (
        (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # (their torchvision preprocessing)
    with torch.no_grad():
        got = model(x, ["logits"])["logits"]
        want = net((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    fast = registry.load("full", "cpu", models_file=toml)  # (channels-last, folded, ...)
    with torch.no_grad():
        assert float((fast(x, ["logits"])["logits"] - want).norm() / want.norm()) < 0.05
    trunk = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    torch.save(trunk, tmp_path / "trunk.pth")
    (tmp_path / "m.toml").write_text(f'[models.full]\narch = "{arch}"\nweights = "trunk.pth"\n')
    assert not registry.load("full", "cpu", models_file=toml, accelerate=False).has_logits


def test_a_vgg_says_it_keeps_no_classifier_and_which_models_do(tmp_path: Path) -> None:
    """VGG's classifier (470 MB) is not kept, so --class names the models that can."""
    from deepdream.engine import DreamSettings, SettingsError, dream

    toml = write_toml(tmp_path / "m.toml", '[models.v]\narch = "vgg16"\nweights = "random"\n')
    model = registry.load("v", "cpu", models_file=toml)
    assert not model.has_logits
    with pytest.raises(SettingsError, match="a vgg16 keeps no classifier here.*resnet50"):
        dream(torch.rand(40, 40, 3).numpy(), model,
              DreamSettings.from_dict({"model": "v", "classes": "tabby", "iterations": 1}))
