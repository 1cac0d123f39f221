"""Which PyTorch build install.py picks for each platform, and when it reuses an installed one."""

from __future__ import annotations

import pytest

from installer.torch_choice import (
    PYTORCH_INDEX,
    TorchChoiceError,
    choose_torch,
    satisfies,
)

CPU_INDEX = f"{PYTORCH_INDEX}/cpu"


@pytest.mark.parametrize("system, arch, gpu, override, flavor, index", [
    # Linux x86-64: PyPI's default wheel is the CUDA build, GPU or not (no download.pytorch.org)
    ("Linux", "x86_64", True, None, "cuda", None),
    ("Linux", "x86_64", False, None, "cuda", None),
    ("Linux", "x86_64", False, "cuda", "cuda", None),
    ("Linux", "x86_64", True, "cpu", "cpu", CPU_INDEX),
    ("Linux", "aarch64", False, None, "cpu", None),
    ("Linux", "aarch64", True, "cuda", "cuda", None),
    # Windows: PyPI's torch is CPU-only, so CUDA comes from PyTorch's own index
    ("Windows", "AMD64", True, None, "cuda", f"{PYTORCH_INDEX}/cu128"),
    ("Windows", "AMD64", False, None, "cpu", CPU_INDEX),
    ("Windows", "AMD64", False, "cuda", "cuda", f"{PYTORCH_INDEX}/cu128"),
    ("Windows", "AMD64", True, "cpu", "cpu", CPU_INDEX),
    # Apple silicon: PyPI's build has MPS
    ("Darwin", "arm64", False, None, "mps", None),
    ("Darwin", "arm64", False, "cpu", "cpu", CPU_INDEX),
    ("FreeBSD", "amd64", False, None, "cpu", CPU_INDEX),
])
def test_choice_per_platform(system, arch, gpu, override, flavor, index):
    choice = choose_torch(system, arch, gpu, override)
    assert (choice.flavor, choice.index_url) == (flavor, index)
    assert choice.pip_args() == ([] if index is None else ["--index-url", index])


@pytest.mark.parametrize("system, arch, override, message", [
    ("Darwin", "x86_64", None, "Intel Macs"),
    ("Darwin", "arm64", "cuda", "CUDA does not exist on macOS"),
    ("FreeBSD", "amd64", "cuda", "no CUDA build"),
])
def test_impossible_choices_are_one_clear_error(system, arch, override, message):
    with pytest.raises(TorchChoiceError, match=message):
        choose_torch(system, arch, True, override)


CUDA_2141 = {"version": "2.14.1+cu130", "cuda": "13.0", "mps_built": False,
             "torchvision": "0.29.1"}


def test_installed_cuda_torch_is_reused_for_cuda_and_cpu():
    assert satisfies(choose_torch("Linux", "x86_64", False), CUDA_2141)
    assert satisfies(choose_torch("Linux", "x86_64", False, "cpu"), CUDA_2141)


@pytest.mark.parametrize("installed", [
    None,
    {},
    {"error": "ModuleNotFoundError: No module named 'torch'"},
    {**CUDA_2141, "version": "2.9.1"},  # older than the project needs
    {**CUDA_2141, "torchvision": None},
    {**CUDA_2141, "cuda": None},  # a CPU build does not satisfy the CUDA choice
])
def test_unfit_torch_is_reinstalled(installed):
    assert not satisfies(choose_torch("Linux", "x86_64", True), installed)


def test_mps_choice_needs_an_mps_build():
    mac = choose_torch("Darwin", "arm64", False)
    assert satisfies(mac, {"version": "2.14.1", "mps_built": True, "torchvision": "0.29.1"})
    assert not satisfies(mac, {"version": "2.14.1", "mps_built": False, "torchvision": "0.29.1"})


CPU_2141 = {**CUDA_2141, "version": "2.14.1+cpu", "cuda": None}


def _fake_venv(monkeypatch: pytest.MonkeyPatch, probes: list[dict]) -> list[list[str]]:
    """install_torch with its probes answered from ``probes`` and pip's calls recorded (no
    pip runs: stand-ins, as no package index is reached in tests)."""
    import subprocess

    from installer import venv

    calls: list[list[str]] = []
    monkeypatch.setattr(venv, "run_probe", lambda *_, **__: probes.pop(0))
    monkeypatch.setattr(venv, "pip", lambda py, args, what: calls.append(["install", *args]))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **_: calls.append(cmd[3:]))
    return calls


def test_a_torch_of_the_wrong_build_is_replaced_not_kept(monkeypatch: pytest.MonkeyPatch):
    """--torch cuda over a CPU build: pip took the CPU build for the requirement met, and the
    run ended 'dreams will run on cpu' without a word."""
    from installer import venv

    calls = _fake_venv(monkeypatch, [CPU_2141, CUDA_2141])
    assert venv.install_torch(venv.Path("py"), choose_torch("Linux", "x86_64", True)) == CUDA_2141
    assert calls[0] == ["uninstall", "-y", "torch", "torchvision"]
    assert calls[1][:3] == ["install", "torch>=2.10", "torchvision"]


def test_a_build_that_still_does_not_fit_after_pip_is_one_clear_error(
        monkeypatch: pytest.MonkeyPatch):
    from installer import venv
    from installer.plugin_files import InstallError

    _fake_venv(monkeypatch, [CPU_2141, CPU_2141])
    with pytest.raises(InstallError, match=r"pip installed PyTorch 2\.14\.1\+cpu, which does "
                                           r"not fit"):
        venv.install_torch(venv.Path("py"), choose_torch("Linux", "x86_64", True))
