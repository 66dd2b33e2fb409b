"""MigrationDetector: migration paths, DDL and framework operations in added lines."""

from __future__ import annotations

import pytest

from gate.detectors.base import Detector, Finding, ScanInput
from gate.detectors.migrations import MAX_LINE_FINDINGS, MigrationDetector
from gate.diff import AddedLine
from gate.model import ChangedFile, Contents, FileStatus

DETECTOR: Detector = MigrationDetector()


def scan(path: str, *lines: str, status: FileStatus = FileStatus.MODIFIED) -> list[Finding]:
    file = ChangedFile(path, status, patch="@@")
    added = tuple(AddedLine(number, text) for number, text in enumerate(lines, 1))
    return list(DETECTOR.scan(ScanInput(file=file, added=added, contents=Contents())))


def line_findings(path: str, line: str) -> list[tuple[str, str]]:
    return [(f.rule, f.message) for f in scan(path, line) if f.line is not None]


def test_name_and_wants_only_the_head_text_of_a_file_without_a_patch() -> None:
    assert DETECTOR.name == "migrations"
    with_patch = ChangedFile("a.sql", FileStatus.MODIFIED, patch="@@ -1 +1 @@\n-a\n+b")
    assert DETECTOR.wanted(with_patch) == frozenset()
    hidden = ChangedFile("a.sql", FileStatus.MODIFIED, additions=1)
    assert DETECTOR.wanted(hidden) == {("head", "a.sql")}


@pytest.mark.parametrize(
    "path",
    [
        "app/migrations/0002_auto.py",
        "migrations/0001_initial.py",
        "db/migrate/20240101_add_users.rb",
        "alembic/versions/abc123_add.py",
        "services/api/alembic/versions/abc.py",
        "pkg/store/migrate/001.up.sql",
        "schema.sql",
        "sql/seed.SQL",
        "prisma/schema.prisma",
        "packages/db/schema.prisma",
        "src/Data/Migrations/20240101_Init.cs",
        "db/schema.rb",
    ],
)
def test_migration_paths(path: str) -> None:
    findings = scan(path)
    assert [(f.rule, f.line) for f in findings] == [("migration", None)]


@pytest.mark.parametrize(
    "path", ["src/app.py", "docs/migrating.md", "app/migration_helpers.py", "sql.txt"]
)
def test_non_migration_paths(path: str) -> None:
    assert scan(path) == []


def test_renamed_out_of_migrations_and_removed_are_flagged() -> None:
    file = ChangedFile("old/0001.py", FileStatus.RENAMED, previous_path="app/migrations/0001.py")
    findings = DETECTOR.scan(ScanInput(file=file, added=(), contents=Contents()))
    assert [f.message for f in findings] == ["changes migration file app/migrations/0001.py"]
    removed = scan("app/migrations/0001.py", status=FileStatus.REMOVED)
    assert [f.message for f in removed] == ["removes migration file app/migrations/0001.py"]


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("DROP TABLE users;", "DROP TABLE"),
        ('cursor.execute("drop table if exists sessions")', "DROP TABLE"),
        ("ALTER TABLE users DROP COLUMN email;", "DROP COLUMN"),
        ("ALTER TABLE users DROP email;", "ALTER TABLE ... DROP"),
        ("TRUNCATE TABLE events;", "TRUNCATE"),
        ('db.execute("TRUNCATE events")', "TRUNCATE"),
        ("DROP SCHEMA analytics CASCADE;", "DROP SCHEMA/DATABASE"),
        ("    op.drop_table('users')", "drop_table"),
        ("        batch_op.drop_column('email')", "drop_column"),
        ("        migrations.DeleteModel(name='Order'),", "DeleteModel"),
        ("        migrations.RemoveField(model_name='user', name='age'),", "RemoveField"),
        ("    await knex.schema.dropTable('users')", "dropTable"),
        ("    await queryInterface.removeColumn('users', 'age')", "removeColumn"),
        ('migrationBuilder.DropColumn(name: "Age", table: "Users");', "DropColumn"),
        ("ALTER TABLE t RENAME COLUMN a TO b;", "RENAME"),
        ("ALTER TABLE t RENAME TO t_old;", "RENAME"),
        (
            "        migrations.RenameField(model_name='u', old_name='a', new_name='b'),",
            "RenameField",
        ),
        ('migrationBuilder.RenameTable(name: "Users", newName: "Accounts");', "RenameTable"),
        ("ALTER TABLE events ON CLUSTER main DROP COLUMN payload", "DROP COLUMN"),
    ],
)
def test_destructive_statements(line: str, named: str) -> None:
    (finding,) = line_findings("src/anything.py", line)
    assert finding[0] == "destructive-migration"
    assert named in finding[1]


@pytest.mark.parametrize(
    ("path", "line", "named"),
    [
        ("db/migrate/1_x.rb", "    remove_column :users, :email", "remove_column"),
        ("db/migrate/1_x.rb", "    drop_table :sessions", "drop_table"),
        ("lib/tasks/x.rb", "      t.remove :legacy", "remove"),
    ],
)
def test_destructive_rails(path: str, line: str, named: str) -> None:
    assert line_findings(path, line) == [
        ("destructive-migration", f"destructive migration: {named}")
    ]


@pytest.mark.parametrize(
    ("path", "line", "named"),
    [
        ("src/a.py", "CREATE TABLE users (id int);", "CREATE TABLE"),
        ("src/a.py", 'sql = "create unique index ix on t (a)"', "CREATE UNIQUE INDEX"),
        ("src/a.py", "ALTER TABLE users ADD COLUMN age int;", "ALTER TABLE"),
        ("src/a.py", "ALTER TABLE t ALTER COLUMN c DROP DEFAULT;", "ALTER TABLE"),
        ("src/a.py", "ALTER TABLE t DROP CONSTRAINT fk_x;", "ALTER TABLE"),
        ("src/a.py", "DROP INDEX ix_users_email;", "DROP INDEX"),
        ("src/a.py", "    op.create_table('users',", "create_table"),
        ("src/a.py", "    op.add_column('users', sa.Column('age', sa.Integer()))", "add_column"),
        ("src/a.py", "    op.alter_column('users', 'age', nullable=True)", "alter_column"),
        ("src/a.py", "        migrations.AddField(", "AddField"),
        ("src/a.py", "        migrations.RunSQL('select 1'),", "RunSQL"),
        ("src/a.py", "class Migration(migrations.Migration):", "Migration"),
        ("db/x.rb", "class AddAge < ActiveRecord::Migration[7.1]", "ActiveRecord::Migration"),
        ("db/x.rb", "    add_column :users, :age, :integer", "add_column"),
        ("prisma/schema.prisma", "model Order {", "model Order"),
        ("src/a.ts", "  await knex.schema.createTable('users', (t) => {", "createTable"),
    ],
)
def test_non_destructive_migrations(path: str, line: str, named: str) -> None:
    assert line_findings(path, line) == [("migration", f"migration: {named}")]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("src/a.py", "# DROP TABLE users; -- commented out"),
        ("src/a.py", "    // drop table users"),
        ("src/a.sql", "-- DROP TABLE users;"),
        ("src/a.py", "def truncate(text, width):"),
        ("src/a.py", "    return text.truncate(10)"),
        ("src/a.py", "    # we truncate the text here"),
        ("src/a.py", "    summary = truncate the_text and more"),
        ("src/a.py", "    op = operator.add(1, 2)"),
        ("src/a.py", "    migrations = load_migrations()"),
        ("src/a.py", "    create_table(rows)"),
        ("src/a.ts", "enum Color { Red }"),
        ("src/a.py", "    remove_column(df, 'x')"),
        ("docs/guide.md", "Run `DROP TABLE users;` to reset."),
        ("src/a.py", "    table.drop(columns=['x'])"),
    ],
)
def test_ordinary_lines_are_not_migrations(path: str, line: str) -> None:
    assert line_findings(path, line) == []


def test_a_line_is_reported_once_under_its_most_severe_rule() -> None:
    findings = scan("src/a.py", "ALTER TABLE users DROP COLUMN email, DROP COLUMN age;")
    assert [(f.rule, f.line, f.message) for f in findings] == [
        ("destructive-migration", 1, "destructive migration: DROP COLUMN")
    ]


def test_path_and_content_findings_together() -> None:
    findings = scan("db/migrations/0003.sql", "CREATE TABLE a (id int);", "", "DROP TABLE b;")
    assert [(f.rule, f.line) for f in findings] == [
        ("migration", None),
        ("migration", 1),
        ("destructive-migration", 3),
    ]


def test_findings_are_capped_but_destructive_ones_kept() -> None:
    lines = [f"CREATE TABLE t{i} (id int);" for i in range(200)] + ["DROP TABLE t0;"]
    findings = scan("dump/load.py", *lines)
    per_line = [f for f in findings if f.line is not None]
    assert len(per_line) == MAX_LINE_FINDINGS
    assert any(f.rule == "destructive-migration" and f.line == 201 for f in per_line)
    assert findings[-1].message == f"{201 - MAX_LINE_FINDINGS} more migration lines not listed"
