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
#: The pure package's two I/O modules: the command line and its local git reader.
IO_EXCEPTIONS = ("cli.py", "localrepo.py", "__main__.py")
ENGINE = sorted(p for p in (ROOT / "gate").rglob("*.py") if p.name not in IO_EXCEPTIONS)


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
    assert "2 kept, 0 broken" in done.stdout


SOURCES = sorted([*(ROOT / "gate").rglob("*.py"), *(ROOT / "webhooks").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_classes_stay_small(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= 300, f"{path.name}: class {node.name} has {length} lines"


def test_the_worker_is_only_its_loop() -> None:
    lines = (ROOT / "webhooks" / "worker.py").read_text().count("\n")
    assert lines < 250


def _calls(path: Path, module: str, function: str) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and (target.id, node.func.attr) == (module, function):
                return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == f"gate.{module}"
            and any(alias.name == function for alias in node.names)
        ):
            return True
    return False


def test_one_decide_pipeline() -> None:
    """The engine decides in one place; the CLI and the service both go through it."""
    evaluators = [p for p in SOURCES if _calls(p, "engine", "evaluate")]
    # gate/simulate.py replays merged pull requests under a proposed policy: a what-if
    # shown beside a decision, never a decision itself.
    assert [p.relative_to(ROOT).as_posix() for p in evaluators] == [
        "gate/decide.py",
        "gate/simulate.py",
    ]
    for entry in ("gate/cli.py", "webhooks/evaluate.py"):
        assert _calls(ROOT / entry, "decide", "decide"), entry
