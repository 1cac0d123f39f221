"""`deepdream keygen`: a client pair never takes the server's names, and no name makes none."""

from __future__ import annotations

from pathlib import Path

import pytest
from deepdream.security import keygen


@pytest.mark.parametrize(("client", "words"), [
    ("server", "cannot be named 'server'"),
    ("Server", "cannot be named 'server'"),
    ("", "client key name is empty"),
])
def test_client_names_that_are_not_a_client_are_refused(tmp_path: Path, client: str,
                                                         words: str) -> None:
    keys = tmp_path / "keys"
    with pytest.raises(ValueError, match=words):
        keygen(keys, client)
    assert not keys.exists()  # nothing made, least of all a server key pair


def test_server_and_client_pairs_stay_apart(tmp_path: Path) -> None:
    made = keygen(tmp_path, None)
    assert sorted(p.name for p in made) == ["server.key", "server.key_secret"]
    made = keygen(tmp_path, "alice")
    assert [p.relative_to(tmp_path).as_posix() for p in made] == [
        "alice.key", "alice.key_secret", "clients/alice.key"]
    with pytest.raises(FileExistsError):
        keygen(tmp_path, None)
