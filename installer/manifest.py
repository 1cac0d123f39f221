"""What `python install.py` installed, so re-running upgrades it and --uninstall removes it.

Kept beside the plug-ins' config file (deepdream_protocol.launcher decides where that is).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deepdream_protocol import launcher  # (found by path: see __init__)

from .kritarc import missing_dirs
from .plugin_files import InstallError

NAME = "install-manifest.json"


def config_folder() -> Path:
    return launcher.config_path().parent


@dataclass
class Manifest:
    prefix: str = ""
    created_venv: bool = False
    plugins: list[str] = field(default_factory=list)  # plug-in folders holding their manifests
    config: str = ""
    created_config: bool = False
    created_dirs: list[str] = field(default_factory=list)  # for the config folder

    @staticmethod
    def path() -> Path:
        return config_folder() / NAME

    @staticmethod
    def pid_file() -> Path:
        return config_folder() / "daemon.pid"

    @classmethod
    def load(cls) -> Manifest:
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            raise InstallError(f"cannot read {cls.path()} ({e}); fix or delete it") from e
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self) -> None:
        folder = self.path().parent
        if not folder.exists():
            self.created_dirs = missing_dirs(folder)
        folder.mkdir(parents=True, exist_ok=True)
        launcher.replace_text(self.path(), json.dumps(asdict(self), indent=2) + "\n")

    def add_plugin(self, folder: Path) -> None:
        if str(folder) not in self.plugins:
            self.plugins.append(str(folder))
