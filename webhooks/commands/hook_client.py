"""``gate-hook --agent NAME``: ask the user's resident decision process, else decide here.

An agent starts its hook as a new process before every tool call, and most of such a
process's time goes to importing the decision (the classifier, every detector, the audit
log). :mod:`webhooks.commands.hook_daemon` keeps them imported: this module, which
imports little more than the standard library's ``os`` and ``_socket`` (the C module:
``socket`` would import ``enum`` and ``selectors``), sends it the
event over a unix socket in the state directory and prints its answer.

The daemon is an optimisation only, never an authority on its own: this client uses it
only when the state directory and the socket belong to the user and nobody else can
write there, and the peer process is the user's (``SO_PEERCRED``). Anything else (no
daemon, a refused or timed-out connection, an answer that is not whole and well-formed,
an environment the daemon was not started with, code changed since it started) decides
in this process exactly as before, with :func:`webhooks.commands.hook.run`; when the
daemon was simply absent, one is started for the next call. ``GATE_HOOK_DAEMON=0`` turns
it off.
"""

from __future__ import annotations

import _socket
import os
import sys
from collections.abc import Mapping, Sequence

DAEMON_ENV = "GATE_HOOK_DAEMON"
MAGIC = b"merge-gate-hook/1"
#: What the decision reads from the environment (git included): a daemon serves only
#: clients whose values are the same as its own.
ENV_NAMES = (
    "HOME",
    "PATH",
    "USER",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "GITHUB_ACTIONS",
)
ENV_PREFIXES = ("GATE_", "GIT_")
#: Seconds to connect (a live daemon accepts at once) and to wait for the answer.
CONNECT_TIMEOUT, ANSWER_TIMEOUT = 0.5, 30.0
#: Largest answer accepted: an answer is a short JSON object or line.
MAX_ANSWER = 1 << 20


def state_dir(env: Mapping[str, str]) -> str:
    """Same as :func:`webhooks.commands.hook.state_dir` (not imported: it is heavier)."""
    if env.get("GATE_DATA_DIR"):
        return env["GATE_DATA_DIR"]
    base = env.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser(env.get("HOME", "~")), ".local/state"
    )
    return os.path.join(base, "merge-gate")


def environment(env: Mapping[str, str]) -> bytes:
    """The variables the decision depends on, with the interpreter, as one byte string."""
    names = sorted(name for name in env if name in ENV_NAMES or name.startswith(ENV_PREFIXES))
    pairs = [f"python={sys.executable}", *(f"{name}={env[name]}" for name in names)]
    return "\x01".join(pairs).encode("utf-8", "surrogateescape")


def socket_name(environ: bytes) -> str:
    """The socket's file name in the state directory: one daemon per environment.

    A name, not a secret: the daemon compares the whole environment on every call.
    """
    import zlib

    return f"hook-{zlib.crc32(environ):08x}.sock"


def private_dir(path: str) -> bool:
    """``path`` is a directory of this user that nobody else can write (no symlink)."""
    import stat

    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _own_socket(path: str) -> bool:
    import stat

    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid()


def peer_uid(sock: _socket.socket) -> int:
    """The uid of the process at the other end (``SO_PEERCRED``: pid, uid, gid as C ints)."""
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder, signed=True)


class Absent(Exception):
    """No daemon listens: start one for the next call."""


def parse_answer(data: bytes) -> tuple[int, bytes, bytes] | None:
    """(exit code, stdout, stderr) of a whole, well-formed answer; None otherwise."""
    header, sep, body = data.partition(b"\n")
    parts = header.split(b" ")
    if not sep or len(parts) != 4 or parts[0] != MAGIC:
        return None
    if not all(p.isdigit() and len(p) <= 8 for p in parts[1:]):
        return None
    code, out_len, err_len = (int(p) for p in parts[1:])
    if code not in (0, 1, 2) or out_len + err_len != len(body):
        return None
    return code, body[:out_len], body[out_len:]


def options(argv: Sequence[str]) -> tuple[str, str, bool] | None:
    """(agent, base, no_ask) of ``--agent NAME [--base REF] [--no-ask]``, or None for any
    other command line (``argparse`` then reads it in-process, errors included)."""
    agent, base, no_ask = "", "", False
    at = 0
    while at < len(argv):
        flag, eq, value = argv[at].partition("=")
        if argv[at] == "--no-ask":
            no_ask, at = True, at + 1
            continue
        if flag not in ("--agent", "--base"):
            return None
        if not eq:
            if at + 1 >= len(argv):
                return None
            value, at = argv[at + 1], at + 2
        else:
            at += 1
        if value.startswith("-"):
            return None
        if flag == "--agent":
            agent = value
        else:
            base = value
    return (agent, base, no_ask) if agent else None


def ask(
    agent: str,
    raw: bytes,
    *,
    env: Mapping[str, str],
    base: str = "",
    no_ask: bool = False,
) -> tuple[int, bytes, bytes] | None:
    """The daemon's answer to one event, or None (decide in this process).

    Raises :class:`Absent` when no daemon listens at the expected place.
    """
    cwd = os.getcwd()
    directory = state_dir(env)
    environ = environment(env)
    name = socket_name(environ)
    if not os.path.isabs(directory):
        return None  # relative to each caller's directory: not one daemon's to serve
    if not os.path.lexists(directory):
        raise Absent  # the first call: the daemon creates the directory, mode 0700
    if not private_dir(directory):
        return None
    path = os.path.join(directory, name)
    if not os.path.lexists(path):
        raise Absent
    if not _own_socket(path):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        # Relative to the state directory: a socket path is limited to 107 bytes.
        os.chdir(directory)
        try:
            sock.connect(name)
        except (ConnectionRefusedError, FileNotFoundError):
            raise Absent from None
        finally:
            os.chdir(cwd)
        if peer_uid(sock) != os.getuid():
            return None
        sock.settimeout(ANSWER_TIMEOUT)
        fields = (agent, base, "no-ask" if no_ask else "")
        request = b"\0".join(
            (
                MAGIC,
                *(f.encode("utf-8", "surrogateescape").replace(b"\0", b"") for f in fields),
                os.fsencode(cwd),
                environ.replace(b"\0", b""),
                raw,
            )
        )
        sock.sendall(request)
        sock.shutdown(_socket.SHUT_WR)
        chunks: list[bytes] = []
        size = 0
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER:
                return None
        return parse_answer(b"".join(chunks))
    except OSError:
        return None
    finally:
        sock.close()


def start_daemon() -> None:
    """Start a daemon for the next call, detached; it exits on its own when idle."""
    import contextlib
    import subprocess

    with contextlib.suppress(OSError):  # else the next call decides in its own process again
        subprocess.Popen(
            [sys.executable, "-m", "webhooks.commands.hook_daemon"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``gate-hook --agent NAME``: the daemon's answer, else :func:`hook.main`'s."""
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ
    wanted = options(argv)
    if wanted is None or env.get(DAEMON_ENV) == "0":
        from webhooks.commands.hook import main as decide_here

        return decide_here(argv)
    try:
        raw = sys.stdin.buffer.read()
    except OSError:
        from webhooks.commands.hook import main as decide_here

        return decide_here(argv)  # which denies: it cannot read the event either
    agent, base, no_ask = wanted
    absent = False
    try:
        answer = ask(agent, raw, env=env, base=base, no_ask=no_ask)
    except Absent:
        answer, absent = None, True
    except Exception:
        answer = None
    if answer is not None:
        code, out, err = answer
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
        if err:
            sys.stderr.buffer.write(err)
            sys.stderr.flush()
        return code
    from webhooks.commands.hook import decide_here_on

    code = decide_here_on(argv, raw)
    if absent:
        start_daemon()
    return code


if __name__ == "__main__":
    sys.exit(main())
