"""The hook's resident decision process: one per user, state directory and environment.

``gate-hook`` (:mod:`webhooks.commands.hook_client`) starts it when it finds none, and
later calls send it their event over a unix socket in the state directory instead of
importing the decision themselves. It decides with the very functions the in-process
hook uses (:func:`webhooks.commands.hook.respond`: base policy read with git on every
call, classifier, audit append, forwarding), so an answer is the same either way.

Safe by construction, and the client checks again: it runs only in a state directory
that is the user's and not writable by others, holds an ``flock`` so one instance
serves a socket, creates the socket mode 0600 and answers only peers of its own uid
(``SO_PEERCRED``). It answers ``fallback`` (the client then decides in its own process)
to a client whose environment differs from the one it started with, and once its code
has changed on disk, after which it exits. It exits too when idle for
``$GATE_HOOK_IDLE`` seconds (default :data:`IDLE_SECONDS`) or when its socket is removed
or replaced.

Request: ``MAGIC \\0 agent \\0 base \\0 flags \\0 cwd \\0 environment \\0 event``, the event
up to end of stream (flags: ``no-ask`` or empty).
Answer: ``MAGIC exit len(stdout) len(stderr)\\n`` then stdout and stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import socketserver
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, cast

from gate.agents.protocols import AGENTS
from webhooks.commands import hook
from webhooks.commands.hook_client import (
    MAGIC,
    environment,
    peer_uid,
    private_dir,
    socket_name,
)

if TYPE_CHECKING:
    import argparse

IDLE_ENV = "GATE_HOOK_IDLE"
IDLE_SECONDS = 900.0
#: Largest request read: the event and a few short fields.
MAX_REQUEST = 64 * 1024 * 1024
FALLBACK = MAGIC + b" fallback\n"


def code_stamp() -> tuple[tuple[str, int, int], ...]:
    """(file, mtime, size) of every module of the two packages: a change means an
    upgrade or an edit, and a daemon of older code must not answer."""
    import gate
    import webhooks

    found: list[tuple[str, int, int]] = []
    for package in (gate, webhooks):
        top = Path(str(package.__file__)).parent
        for directory, _dirs, files in os.walk(top):
            for name in files:
                if name.endswith(".py") or name.endswith(".json"):
                    info = os.stat(os.path.join(directory, name))
                    found.append((os.path.join(directory, name), info.st_mtime_ns, info.st_size))
    return tuple(sorted(found))


#: What any decision imports, loaded before the first call.
WARM = (
    "gate.agents.decision",
    "gate.agents.protocols",
    "gate.agents.shell",
    "gate.classify",
    "gate.codeowners",
    "gate.detectors.secrets",
    "webhooks.audit_sqlite",
    "webhooks.commands.hook_cache",
)


def warm_up() -> None:
    """Import what any decision needs, so the first call is as fast as the rest."""
    import importlib

    from gate.detectors import builtin

    for name in WARM:
        importlib.import_module(name)
    builtin()


class Daemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, name: str, *, environ: bytes) -> None:
        self.environ = environ
        self.stamp = code_stamp()
        self.last = time.monotonic()
        self.stale = False
        self._lock = threading.Lock()
        temporary = f"{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        old = os.umask(0o177)
        try:
            super().__init__(temporary, Handler)
        finally:
            os.umask(old)
        # Listening before it is visible under its name: a client never meets a dead socket.
        os.replace(temporary, name)
        self.name = name
        self.inode = os.lstat(name).st_ino

    def touch(self) -> None:
        with self._lock:
            self.last = time.monotonic()

    def idle_for(self) -> float:
        with self._lock:
            return time.monotonic() - self.last

    def still_ours(self) -> bool:
        try:
            return os.lstat(self.name).st_ino == self.inode
        except OSError:
            return False


class Handler(socketserver.BaseRequestHandler):
    server: Daemon

    def handle(self) -> None:
        sock = cast("socket.socket", self.request)
        self.server.touch()
        sock.settimeout(30.0)
        try:
            if peer_uid(sock) != os.getuid():
                return
            data = _receive(sock)
            sock.sendall(self.answer(data) if data is not None else FALLBACK)
        except OSError:
            return
        finally:
            self.server.touch()

    def answer(self, data: bytes) -> bytes:
        parts = data.split(b"\0", 6)
        if len(parts) != 7 or parts[0] != MAGIC or parts[3] not in (b"", b"no-ask"):
            return FALLBACK
        _magic, agent_raw, base_raw, flags, cwd_raw, environ, raw = parts
        agent = agent_raw.decode("utf-8", "replace")
        if agent not in AGENTS or environ != self.server.environ.replace(b"\0", b""):
            return FALLBACK
        if code_stamp() != self.server.stamp:
            self.server.stale = True
            return FALLBACK
        base = base_raw.decode("utf-8", "surrogateescape") or None
        args = cast(
            "argparse.Namespace",
            SimpleNamespace(agent=agent, base=base, no_ask=flags == b"no-ask"),
        )
        now = datetime.now(UTC)
        answer, fields = hook.respond(
            args, raw, env=os.environ, now=now, cwd=Path(os.fsdecode(cwd_raw))
        )
        warning = hook.forward_entry(fields, env=os.environ, now=now) if fields else ""
        out = (answer.stdout + "\n").encode() if answer.stdout else b""
        err = (answer.stderr + warning).encode()
        header = b"%s %d %d %d\n" % (MAGIC, answer.exit_code, len(out), len(err))
        return header + out + err


def _receive(sock: socket.socket) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST:
            return None
    return b"".join(chunks)


def serve(*, idle: float) -> int:
    """Serve until idle, replaced or stale; 0 also when another daemon already serves."""
    directory = hook.state_dir()
    if not directory.is_absolute():
        return 1  # a relative state directory means another one for each client's cwd
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not private_dir(str(directory)):
        return 1
    os.chdir(directory)  # socket paths are relative: absolute ones are limited to 107 bytes
    environ = environment(os.environ)
    name = socket_name(environ)
    lock = os.open(f"{name}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another daemon serves (or is starting)
    warm_up()
    server = Daemon(name, environ=environ)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5})
    thread.start()
    try:
        while not server.stale and server.still_ours() and server.idle_for() < idle:
            time.sleep(1.0)
    finally:
        server.shutdown()
        thread.join()
        if server.still_ours():
            with contextlib.suppress(OSError):
                os.unlink(name)
        server.server_close()
        os.close(lock)
    return 0


def main() -> int:
    try:
        idle = float(os.environ.get(IDLE_ENV) or IDLE_SECONDS)
    except ValueError:
        idle = IDLE_SECONDS
    return serve(idle=idle)


if __name__ == "__main__":
    sys.exit(main())
