"""Migrations across frameworks, and what only looks like one (machinery, tests, UI text)."""

from __future__ import annotations

import pytest

from gate.defaults import default_policy
from gate.detectors import builtin
from gate.detectors.base import Finding, ScanInput
from gate.detectors.migrations import MigrationDetector
from gate.diff import AddedLine
from gate.model import ChangedFile, Contents, FileStatus
from tests.factories import changed, decide, pull

DETECTOR = MigrationDetector()


def scan(path: str, *lines: str) -> list[Finding]:
    file = ChangedFile(path, FileStatus.ADDED, patch="@@")
    added = tuple(AddedLine(n, text) for n, text in enumerate(lines, 1))
    return list(DETECTOR.scan(ScanInput(file=file, added=added, contents=Contents())))


@pytest.mark.parametrize(
    "path",
    [
        "src/main/resources/db/migration/V1__init.sql",
        "src/main/java/db/migration/V2__Backfill_users.java",
        "src/main/resources/db/changelog/db.changelog-master.yaml",
        "src/main/resources/changelog-1.0.xml",
        "prisma/migrations/20240101120000_init/migration.sql",
        "migrations/20240101120000_create_users.js",
        "db/migrations/20240101120000-create-user.js",
        "src/migration/1680000000000-Init.ts",
        "db/migrations/000001_init.up.sql",
        "internal/store/migrations/00002_rename_root.go",
        "priv/repo/migrations/20240101120000_create_users.exs",
        "src/Data/Migrations/20240101120000_Init.cs",
        "src/Data/Migrations/AppDbContextModelSnapshot.cs",
        "app/migrations/0002_auto_20240101_1200.py",
        "alembic/versions/3f2a9c0d41b7_add_orders.py",
        "db/migrate/20240101120000_add_users.rb",
    ],
)
def test_framework_migration_paths(path: str) -> None:
    assert [(f.rule, f.line) for f in scan(path)] == [("migration", None)]


@pytest.mark.parametrize(
    "path",
    [
        "django/db/migrations/operations/fields.py",
        "django/db/migrations/executor.py",
        "lib/migrate/runner.go",
        "tests/migrations/test_operations.py",
        "tests/migrations/test_migrations/0001_initial.py",
        "spec/db/migrate/20240101_add_users_spec.rb",
        "docs/migrations/upgrading.md",
        "CHANGELOG.md",
        "store/migrator.go",
    ],
)
def test_machinery_tests_and_docs_are_not_migrations(path: str) -> None:
    assert scan(path) == []


@pytest.mark.parametrize(
    ("path", "line", "named"),
    [
        ("priv/repo/migrations/1_x.exs", "    drop table(:users)", "DROP TABLE"),
        ("priv/repo/migrations/1_x.exs", "      remove :email", "remove :email"),
        ("db/changelog/1.xml", '  <dropColumn tableName="users" columnName="age"/>', "dropColumn"),
        ("db/changelog/1.yaml", "      - dropTable:", "dropTable"),
        (
            "src/migration/1680000000000-Init.ts",
            '    await queryRunner.query(`ALTER TABLE "user" DROP COLUMN "age"`)',
            "DROP COLUMN",
        ),
        (
            "internal/clickhouse/schema.go",
            '\t_, err = conn.Exec(ctx, "ALTER TABLE events ON CLUSTER c DROP COLUMN payload")',
            "DROP COLUMN",
        ),
        ("scripts/housekeeping.py", 'db.execute("RENAME TABLE events TO events_old")', "RENAME"),
        ("db/migrate/1_x.rb", "    rename_column :users, :name, :full_name", "rename_column"),
    ],
)
def test_destructive_operations_across_frameworks(path: str, line: str, named: str) -> None:
    found = [(f.rule, f.message) for f in scan(path, line) if f.line is not None]
    assert found == [("destructive-migration", f"destructive migration: {named}")]


@pytest.mark.parametrize(
    ("path", "line", "named"),
    [
        ("migrations/00002_x.sql", "-- +goose Up", "+goose Up"),
        ("src/migration/1-Init.ts", "export class Init1 implements MigrationInterface {", None),
        ("priv/repo/migrations/1_x.exs", "  use Ecto.Migration", None),
        ("db/changelog/1.yaml", "databaseChangeLog:", None),
        ("migrations/1_x.js", "  return knex.schema.createTable('users', (t) => {", None),
    ],
)
def test_migration_markers(path: str, line: str, named: str | None) -> None:
    found = [(f.rule, f.message) for f in scan(path, line) if f.line is not None]
    assert len(found) == 1
    assert found[0][0] == "migration"
    if named:
        assert found[0][1] == f"migration: {named}"


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("web/src/pages/Views.tsx", '<h2>{editing ? "Edit view" : "Create view"}</h2>'),
        ("web/src/i18n/en.ts", '  dropTable: "Drop table",'),
        ("tests/test_store.py", 'db.execute("DROP TABLE users")'),
        ("internal/store/store_test.go", '\tdb.Exec("DROP TABLE users")'),
    ],
)
def test_ui_text_and_tests_are_not_migrations(path: str, line: str) -> None:
    assert scan(path, line) == []


def test_sql_files_match_any_case() -> None:
    found = [f.rule for f in scan("db/migrations/0003.sql", "Drop table users;")]
    assert found == ["migration", "destructive-migration"]


def test_default_policy_paths_stay_conservative_and_tests_step_down() -> None:
    """The detector leaves framework machinery alone, but the default policy's globs
    gate every file under a migrations directory (Django imports every module there);
    a test there that declares tests steps down through ``gated_tests``."""
    test_patch = "@@ -0,0 +1,2 @@\n+def test_add_field():\n+    assert True"
    files = [
        changed("django/db/migrations/operations/fields.py"),
        changed("app/migrations/0002_auto.py"),
        changed("tests/migrations/test_operations.py", patch=test_patch),
        changed("tests/migrations/test_migrations/0001_initial.py"),
    ]
    decision = decide(default_policy(), pull(files), detectors=builtin())
    tiers = {f.path: f.tier for f in decision.files}
    assert tiers == {
        "app/migrations/0002_auto.py": "migrations",
        "django/db/migrations/operations/fields.py": "migrations",
        "tests/migrations/test_migrations/0001_initial.py": "migrations",
        "tests/migrations/test_operations.py": "low",
    }
    machinery = next(f for f in decision.files if f.path.startswith("django/"))
    assert not [x for x in machinery.findings if x.detector == "migrations"]
