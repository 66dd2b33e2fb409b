"""The engine stays pure: no I/O libraries, no clock, no environment (gate/cli.py excepted)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {
    "httpx",
    "redis",
    "starlette",
    "uvicorn",
    "sqlite3",
    "githubkit",
    "subprocess",
    "socket",
    "urllib",
    "requests",
    "aiohttp",
    "webhooks",
    "os",
    "time",
    "asyncio",
}
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("os", "environ"),
    ("os", "getenv"),
}
ENGINE = sorted(p for p in (ROOT / "gate").rglob("*.py") if p.name not in ("cli.py", "__main__.py"))


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_module_does_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in IO_MODULES, f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert (node.value.id, node.attr) not in CLOCK_CALLS, (
                f"{path.name} reads {node.value.id}.{node.attr}"
            )


def test_import_linter_contract_holds() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout
