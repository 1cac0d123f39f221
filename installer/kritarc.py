"""Minimal, lossless editing of Krita's kritarc (KConfig INI).

configparser would lower-case keys, drop comments and reorder groups, and Krita keeps
hundreds of settings there, so only the lines we own are touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deepdream_protocol import launcher

_GROUP = re.compile(r"^\s*\[(.*)\]\s*$")


@dataclass
class KeyEdit:
    """What setting one key changed, so uninstall can put it back."""

    file: str
    group: str
    key: str
    previous: str | None
    created_file: bool
    created_group: bool
    created_dirs: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> KeyEdit:
        return cls(**d)


def _group_span(lines: list[str], group: str) -> tuple[int, int] | None:
    """(header index, end index exclusive) of the group's first occurrence."""
    start = None
    for i, line in enumerate(lines):
        m = _GROUP.match(line)
        if m:
            if start is not None:
                return start, i
            if m.group(1) == group:
                start = i
    return (start, len(lines)) if start is not None else None


def _find_key(lines: list[str], span: tuple[int, int], key: str) -> int | None:
    for i in range(span[0] + 1, span[1]):
        name, sep, _ = lines[i].partition("=")
        if sep and name.strip() == key:
            return i
    return None


def get_key(text: str, group: str, key: str) -> str | None:
    lines = text.splitlines()
    span = _group_span(lines, group)
    if span is None:
        return None
    i = _find_key(lines, span, key)
    return None if i is None else lines[i].partition("=")[2].strip()


def set_key(text: str, group: str, key: str, value: str) -> tuple[str, str | None, bool]:
    """Return (new text, previous value or None, whether the group was created)."""
    lines = text.splitlines()
    span = _group_span(lines, group)
    if span is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [f"[{group}]", f"{key}={value}"]
        return "\n".join(lines) + "\n", None, True
    i = _find_key(lines, span, key)
    if i is not None:
        previous = lines[i].partition("=")[2].strip()
        lines[i] = f"{key}={value}"
    else:
        previous = None
        end = span[1]
        while end > span[0] + 1 and not lines[end - 1].strip():
            end -= 1  # keep the blank line that separates groups after our key
        lines.insert(end, f"{key}={value}")
    return "\n".join(lines) + "\n", previous, False


def remove_key(text: str, group: str, key: str, drop_empty_group: bool) -> str:
    lines = text.splitlines()
    span = _group_span(lines, group)
    if span is None:
        return text
    i = _find_key(lines, span, key)
    if i is not None:
        del lines[i]
        span = (span[0], span[1] - 1)
    body = [ln for ln in lines[span[0] + 1:span[1]] if ln.strip()]
    if drop_empty_group and not body:
        del lines[span[0]:span[1]]
        while lines and not lines[-1].strip():
            lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def enable(kritarc: Path, group: str, key: str, value: str = "true") -> KeyEdit:
    """Set group/key=value in the file, creating it if needed, and say what changed."""
    existed = kritarc.exists()
    text = kritarc.read_text(encoding="utf-8") if existed else ""
    new, previous, created_group = set_key(text, group, key, value)
    missing = missing_dirs(kritarc.parent)
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    launcher.replace_text(kritarc, new)  # (all of Krita's settings)
    return KeyEdit(str(kritarc), group, key, previous, not existed, created_group, missing)


def restore(edit: KeyEdit) -> None:
    """Undo `enable`: put the previous value back, or remove what was added."""
    path = Path(edit.file)
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if edit.previous is not None:
        new = set_key(text, edit.group, edit.key, edit.previous)[0]
    else:
        new = remove_key(text, edit.group, edit.key, drop_empty_group=edit.created_group)
    if edit.created_file and not new.strip():
        path.unlink()
        remove_empty_dirs(map(Path, edit.created_dirs))
    else:
        launcher.replace_text(path, new)


def missing_dirs(path: Path) -> list[str]:
    """Path and those of its parents that do not exist yet, deepest first: what creating
    path makes, kept (as strings, for JSON) so that remove_empty_dirs can take it away."""
    out = []
    for p in [path, *path.parents]:
        if p.exists():
            break
        out.append(str(p))
    return out


def remove_empty_dirs(dirs: Iterable[Path]) -> None:
    """rmdir each folder (deepest first) that is empty: what the user put there stays."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass
