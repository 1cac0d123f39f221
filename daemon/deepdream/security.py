"""Who may talk to the daemon: loopback by default, CurveZMQ for anything else.

Key folder layout (``deepdream keygen`` makes it)::

    DIR/server.key, DIR/server.key_secret   the daemon's key pair
    DIR/clients/NAME.key                    public keys of the clients allowed in
    DIR/NAME.key, DIR/NAME.key_secret       a client's pair, to copy to that computer
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from deepdream_protocol import zmtp
from deepdream_protocol.launcher import config_dir
from zmq.auth.thread import ThreadAuthenticator


class SecurityError(RuntimeError):
    """The daemon must not start with this bind address and these keys (one line)."""


def default_key_dir() -> Path:
    return config_dir() / "curve"


def is_loopback(host: str) -> bool:
    """``host`` as a bind address may come bracketed (``[::1]``)."""
    return zmtp.is_loopback(host.strip("[]"))


@dataclass(frozen=True)
class CurveServerKeys:
    public: bytes
    secret: bytes
    clients_dir: Path


def load_server_keys(key_dir: Path) -> CurveServerKeys:
    """The daemon's key pair and its allowed-clients folder; refuses an incomplete set."""
    secret_file = key_dir / "server.key_secret"
    clients = key_dir / "clients"
    hint = f"run 'deepdream keygen --dir {key_dir}' and 'deepdream keygen --dir {key_dir} " \
           "--client NAME'"
    if not secret_file.is_file():
        raise SecurityError(f"no server key pair in {key_dir}; {hint}")
    if not clients.is_dir() or not any(clients.glob("*.key")):
        raise SecurityError(f"no allowed client keys in {clients}; {hint}")
    public, secret = zmq.auth.load_certificate(str(secret_file))
    if secret is None:
        raise SecurityError(f"{secret_file} holds no secret key")
    return CurveServerKeys(public, secret, clients)


def check_bind(host: str, key_dir: Path | None) -> CurveServerKeys | None:
    """Curve keys to use, or None for plain loopback; SecurityError if it would be unsafe."""
    if key_dir is None:
        if is_loopback(host):
            return None
        raise SecurityError(
            f"refusing to listen on {host}: any address but loopback needs CurveZMQ keys "
            f"(run 'deepdream keygen', then 'deepdream serve --curve {default_key_dir()}')")
    return load_server_keys(key_dir)


def enable_curve(ctx: zmq.Context, sock: zmq.Socket, keys: CurveServerKeys) -> ThreadAuthenticator:
    """Make ``sock`` a Curve server that admits only the clients' public keys (ZAP)."""
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys.clients_dir))
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True
    return auth


def keygen(key_dir: Path, client: str | None = None) -> list[Path]:
    """Make the server key pair (no ``client``) or a client pair it admits; returns new files.

    Existing keys are never overwritten: replacing a key would lock out every client.
    """
    if client is not None and not client:
        raise ValueError("the client key name is empty; give --client NAME")
    if client is not None and client.lower() == "server":
        raise ValueError("a client key cannot be named 'server': that is the daemon's own key "
                         "pair; choose another name")
    name = client or "server"
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"key name {name!r} may hold only letters, digits, - and _")
    key_dir.mkdir(parents=True, exist_ok=True)
    (key_dir / "clients").mkdir(exist_ok=True)
    public, secret = key_dir / f"{name}.key", key_dir / f"{name}.key_secret"
    if public.exists() or secret.exists():
        raise FileExistsError(f"{public} already exists; delete it first to make a new key")
    zmq.auth.create_certificates(str(key_dir), name)
    made = [public, secret]
    if client:
        allowed = key_dir / "clients" / f"{name}.key"
        shutil.copyfile(public, allowed)
        made.append(allowed)
    secret.chmod(0o600)
    return made
