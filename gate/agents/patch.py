"""Codex's ``apply_patch`` envelope, read into file writes.

The format (openai/codex, ``apply_patch`` tool instructions)::

    *** Begin Patch
    *** Add File: path          then "+" lines: the whole new file
    *** Update File: path       optionally "*** Move to: new path", then hunks:
    @@ [context]                " " context, "-" removed, "+" added lines
    *** Delete File: path
    *** End Patch

Each hunk becomes an :class:`~gate.agents.action.Edit` (its context and removed lines
replaced by its context and added lines), so the hook can rebuild the new file text;
the added lines are kept as well, so a secret is found even when a hunk does not apply.
"""

from __future__ import annotations

from gate.agents.action import BadEvent, Edit, FileWrite

_BEGIN, _END = "*** Begin Patch", "*** End Patch"
_ADD, _UPDATE, _DELETE, _MOVE = (
    "*** Add File: ",
    "*** Update File: ",
    "*** Delete File: ",
    "*** Move to: ",
)
_EOF = "*** End of File"


class _File:
    def __init__(self, path: str, kind: str) -> None:
        self.path, self.kind = path, kind
        self.move_to: str | None = None
        self.lines: list[str] = []
        self.edits: list[Edit] = []
        self._old: list[str] = []
        self._new: list[str] = []

    def hunk_line(self, line: str) -> None:
        mark, text = line[:1], line[1:]
        if mark in (" ", ""):
            self._old.append(text)
            self._new.append(text)
        elif mark == "-":
            self._old.append(text)
        elif mark == "+":
            self._new.append(text)
            self.lines.append(text)
        else:
            raise BadEvent(f"apply_patch: unexpected line in {self.path}: {line[:60]!r}")

    def close_hunk(self) -> None:
        if self._old or self._new:
            self.edits.append(Edit(old="\n".join(self._old), new="\n".join(self._new)))
        self._old, self._new = [], []

    def write(self) -> FileWrite:
        if self.kind == "delete":
            return FileWrite(path=self.path, delete=True)
        if self.kind == "add":
            text = "\n".join(self.lines) + ("\n" if self.lines else "")
            return FileWrite(path=self.path, content=text)
        self.close_hunk()
        return FileWrite(
            path=self.path,
            edits=tuple(self.edits),
            added="\n".join(self.lines),
            move_to=self.move_to,
        )


def parse_patch(text: str) -> tuple[FileWrite, ...]:
    """Every file an ``apply_patch`` envelope touches; raises ``BadEvent`` if malformed."""
    lines = text.strip("\n").splitlines()
    if not lines or lines[0].strip() != _BEGIN:
        raise BadEvent("apply_patch: the patch does not start with '*** Begin Patch'")
    files: list[_File] = []
    current: _File | None = None
    ended = False
    for line in lines[1:]:
        if ended:
            if line.strip():
                raise BadEvent("apply_patch: text after '*** End Patch'")
            continue
        if line.strip() == _END:
            ended = True
            continue
        for prefix, kind in ((_ADD, "add"), (_UPDATE, "update"), (_DELETE, "delete")):
            if line.startswith(prefix):
                path = line[len(prefix) :].strip()
                if not path:
                    raise BadEvent("apply_patch: a file header without a path")
                current = _File(path, kind)
                files.append(current)
                break
        else:
            if current is None:
                raise BadEvent("apply_patch: content before the first file header")
            if line.startswith(_MOVE) and current.kind == "update":
                current.move_to = line[len(_MOVE) :].strip() or None
            elif line.startswith("@@") and current.kind == "update":
                current.close_hunk()
            elif line.strip() == _EOF:
                continue
            elif current.kind == "add":
                if not line.startswith("+"):
                    raise BadEvent(f"apply_patch: added file {current.path} has a non-'+' line")
                current.lines.append(line[1:])
            elif current.kind == "update":
                current.hunk_line(line)
            else:
                raise BadEvent(f"apply_patch: a deleted file ({current.path}) has content")
    if not ended:
        raise BadEvent("apply_patch: the patch does not end with '*** End Patch'")
    if not files:
        raise BadEvent("apply_patch: the patch touches no file")
    return tuple(f.write() for f in files)
