"""Forward hook events to the service's central audit log, never delaying the agent.

Each event first goes to ``outbox.jsonl`` in the state directory (appended under an
``flock``), then everything waiting there is sent in one ``POST /api/agent-events``
within the time budget. The sender takes the outbox by renaming it under the lock, so
events appended meanwhile start a new outbox and none is lost; on failure the batch is
put back and goes with the next invocation. ``http.client`` (stdlib) keeps the import
cost near zero.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path

ENDPOINT = "/api/agent-events"
#: A batch file older than this belongs to a sender that died: take it over.
STALE_SECONDS = 60.0
#: Events per request (the service accepts at most this many).
MAX_BATCH = 500


@contextlib.contextmanager
def _locked(outbox: Path) -> Iterator[None]:
    fd = os.open(outbox.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def enqueue(event: Mapping[str, object], *, outbox: Path) -> None:
    outbox.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n"
    with _locked(outbox), outbox.open("a", encoding="utf-8") as fh:
        fh.write(line)


def _take(outbox: Path) -> Path | None:
    """Move the outbox aside for sending; None if empty or another sender has it."""
    batch = outbox.with_suffix(".sending")
    with _locked(outbox):
        if batch.exists():
            if time.time() - batch.stat().st_mtime < STALE_SECONDS:
                return None
            if outbox.exists():  # fold the new events into the orphaned batch
                with batch.open("a", encoding="utf-8") as fh:
                    fh.write(outbox.read_text(encoding="utf-8"))
                outbox.unlink()
            os.utime(batch)
            return batch
        if not outbox.exists() or outbox.stat().st_size == 0:
            return None
        os.replace(outbox, batch)
        return batch


def _put_back(batch: Path, outbox: Path) -> None:
    with _locked(outbox):
        waiting = outbox.read_text(encoding="utf-8") if outbox.exists() else ""
        outbox.write_text(batch.read_text(encoding="utf-8") + waiting, encoding="utf-8")
        batch.unlink()


def post(events: list[object], *, url: str, token: str, timeout: float) -> int:
    """POST the events; returns the HTTP status (raises ``OSError`` on network failure)."""
    parts = urllib.parse.urlsplit(url.rstrip("/") + ENDPOINT)
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(parts.netloc, timeout=max(timeout, 0.01))
    try:
        body = json.dumps({"events": events}).encode("utf-8")
        connection.request(
            "POST",
            parts.path,
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def flush(*, url: str, token: str, outbox: Path, timeout: float) -> int:
    """Send what waits in the outbox; returns how many events the service took."""
    deadline = time.monotonic() + timeout
    batch = _take(outbox)
    if batch is None:
        return 0
    lines = [line for line in batch.read_text(encoding="utf-8").splitlines() if line.strip()]
    sent = 0
    try:
        while sent < len(lines):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            chunk = [json.loads(line) for line in lines[sent : sent + MAX_BATCH]]
            status = post(chunk, url=url, token=token, timeout=left)
            if not 200 <= status < 300:
                break
            sent += len(chunk)
    except (OSError, http.client.HTTPException, ValueError):
        pass
    if sent >= len(lines):
        batch.unlink()
    else:
        batch.write_text("".join(line + "\n" for line in lines[sent:]), encoding="utf-8")
        _put_back(batch, outbox)
    return sent


def forward(
    event: Mapping[str, object], *, url: str, token: str, outbox: Path, timeout: float
) -> int:
    """Queue ``event`` and send the queue within ``timeout`` seconds."""
    enqueue(event, outbox=outbox)
    return flush(url=url, token=token, outbox=outbox, timeout=timeout)
