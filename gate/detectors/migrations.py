"""Schema migrations: by where a file lives and by the DDL its added lines carry.

Covers SQL DDL (any dialect's CREATE/ALTER/DROP/TRUNCATE), Alembic operations
(https://alembic.sqlalchemy.org/en/latest/ops.html), Django migration
operations (https://docs.djangoproject.com/en/stable/ref/migration-operations/),
Rails migrations (https://guides.rubyonrails.org/active_record_migrations.html),
Knex/TypeORM/Sequelize schema builders, Prisma schemas and migrations
(https://www.prisma.io/docs/orm/prisma-schema), Flyway (``V1__init.sql``,
https://documentation.red-gate.com/fd/migrations-184127470.html), Liquibase
changelogs (https://docs.liquibase.com/concepts/changelogs/home.html),
golang-migrate (``*.up.sql``), goose (``-- +goose Up``), Ecto
(``priv/repo/migrations``, https://hexdocs.pm/ecto_sql/Ecto.Migration.html) and
EF Core (``Migrations/*.cs``).

A migration is found by where it lives and how it is named: a directory that
only holds migrations (``db/migrate``, ``alembic/versions``,
``priv/repo/migrations``, Flyway's ``db/migration``, Liquibase's
``db/changelog``), or a file named like one (``0001_initial.py``,
``20240101120000_add_users.rb``, ``V2__x.sql``) in a ``migrations``,
``migrate`` or ``migration`` directory, or any ``.sql`` file. The machinery of
a migration framework (``django/db/migrations/operations/fields.py``) is not
named like a migration, and tests are not migrations: nothing under a test
directory or named as a test is one (``tests/migrations/``), by path or by
content, since test databases are not production's.

Operations that lose data or break running code (dropping a table or column,
truncating, renaming a table or column, Django's DeleteModel/RemoveField/
RenameField, Rails' remove_column/drop_table/rename_column) get the rule
``destructive-migration`` and are named in the message; the rest ``migration``.
SQL keywords are matched case-insensitively (SQL is), except that outside SQL
and migration files a statement in sentence case ("Create view", a UI label)
is prose; framework API names case-sensitively (their languages are), which
keeps prose like "drop table" in a docstring apart from ``op.drop_table``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2

from gate.detectors.base import Finding, ScanInput, head_text_wanted, inspected_lines
from gate.filekinds import is_test_path
from gate.model import ChangedFile, FileStatus

#: Per file, so a generated schema dump cannot bury the check run in findings.
MAX_LINE_FINDINGS = 50

_PROSE_EXTENSIONS = frozenset({".md", ".markdown", ".rst", ".adoc", ".txt"})
_COMMENT_PREFIXES = ("#", "//", "--", "/*", "*")


@dataclass(frozen=True, slots=True)
class _Rule:
    #: A compiled RE2 pattern; the ``re2`` module ships no type information.
    pattern: Any
    #: Operation named in the message; ``None`` takes group 1 of the match, ``""``
    #: the whole match in capitals (for SQL keywords).
    label: str | None
    destructive: bool
    #: File extensions the rule applies to; ``None`` for every file.
    extensions: frozenset[str] | None = None
    #: The pattern's source, for the combined prefilter.
    source: str = ""


def _sql(pattern: str, label: str, *, destructive: bool) -> _Rule:
    return _Rule(re2.compile(r"(?i)" + pattern), label, destructive, source=f"(?i:{pattern})")


def _api(pattern: str, *, destructive: bool, extensions: frozenset[str] | None = None) -> _Rule:
    return _Rule(re2.compile(pattern), None, destructive, extensions, source=f"(?:{pattern})")


_RUBY = frozenset({".rb", ".rake"})
_PRISMA = frozenset({".prisma"})
_ELIXIR = frozenset({".ex", ".exs"})
_LIQUIBASE = frozenset({".xml", ".yaml", ".yml", ".json"})

_ALEMBIC_OPS = (
    "create_table|add_column|alter_column|create_index|drop_index|create_foreign_key|"
    "create_unique_constraint|create_check_constraint|create_primary_key|drop_constraint|"
    "rename_table|batch_alter_table|bulk_insert|create_table_comment|drop_table_comment|"
    "execute|create_exclude_constraint"
)
_DJANGO_OPS = (
    "CreateModel|AlterModelTable|AlterModelTableComment|AlterUniqueTogether|"
    "AlterIndexTogether|AlterOrderWithRespectTo|AlterModelOptions|AlterModelManagers|"
    "AddField|AlterField|AddIndex|RemoveIndex|RenameIndex|AddConstraint|"
    "RemoveConstraint|RunSQL|RunPython|SeparateDatabaseAndState|Migration"
)
_RAILS_OPS = (
    "create_table|create_join_table|change_table|add_column|change_column|"
    "change_column_default|change_column_null|add_index|"
    "remove_index|rename_index|add_reference|add_belongs_to|add_foreign_key|"
    "remove_foreign_key|add_timestamps"
)

#: Destructive rules first: a line is reported once, under its most severe rule.
_RULES: tuple[_Rule, ...] = (
    _sql(r"\bdrop\s+table\b", "DROP TABLE", destructive=True),
    _sql(r"\bdrop\s+column\b", "DROP COLUMN", destructive=True),
    _sql(r"\bdrop\s+(?:schema|database)\b", "DROP SCHEMA/DATABASE", destructive=True),
    _sql(r"\btruncate\s+table\b", "TRUNCATE", destructive=True),
    # Bare "TRUNCATE name" only as a whole statement, so "truncate the text" is not one.
    _sql(
        r"(?:^|[\s\"'(;])truncate\s+(?:only\s+)?[a-z_][\w.\"]*\s*(?:;|[\"')]|$)",
        "TRUNCATE",
        destructive=True,
    ),
    _api(r"\b(?:op|batch_op)\.(drop_table|drop_column)\s*\(", destructive=True),
    _api(r"\bmigrations\.(DeleteModel|RemoveField)\s*\(", destructive=True),
    _api(r"\bmigrationBuilder\.(DropTable|DropColumn|DropSchema)\s*\(", destructive=True),
    _api(
        r"^\s*(remove_columns?|drop_table|drop_join_table|remove_reference|"
        r"remove_belongs_to|remove_timestamps)\b",
        destructive=True,
        extensions=_RUBY,
    ),
    _api(
        r"\bt\.(remove|remove_references|remove_belongs_to|remove_timestamps)\b",
        destructive=True,
        extensions=_RUBY,
    ),
    _api(
        r"\.(dropTable|dropTableIfExists|dropColumns?|removeColumn|dropSchema)\s*\(",
        destructive=True,
    ),
    # Renames break the code still running against the old name.
    _sql(r"\brename\s+(?:table|column)\b", "RENAME", destructive=True),
    _sql(r"\balter\s+table\b.*\brename\s+to\b", "RENAME", destructive=True),
    _api(r"\bmigrations\.(RenameModel|RenameField)\s*\(", destructive=True),
    _api(r"^\s*(rename_column|rename_table)\b", destructive=True, extensions=_RUBY),
    _api(r"\bmigrationBuilder\.(RenameTable|RenameColumn)\s*\(", destructive=True),
    _api(r"\.(renameColumn|renameTable)\s*\(", destructive=True),
    # Ecto: drop table(:x), remove :col, rename table(:a), to: table(:b).
    _api(
        r"^\s*(drop(?:_if_exists)?\s+(?:table|index|constraint)|remove(?:_if_exists)?\s+:\w+"
        r"|rename\s+table)\b",
        destructive=True,
        extensions=_ELIXIR,
    ),
    # Liquibase changes, in XML and in YAML/JSON changelogs.
    _api(
        r"(?:<|\b)(dropTable|dropColumn|renameTable|renameColumn|dropView)\b",
        destructive=True,
        extensions=_LIQUIBASE,
    ),
    _sql(
        r"\bcreate\s+(?:or\s+replace\s+)?(?:(?:unique|temp|temporary|global|local|unlogged|"
        r"materialized)\s+)*(?:table|index|view|schema|sequence|type|trigger)\b",
        "",
        destructive=False,
    ),
    _sql(r"\balter\s+(?:table|index|sequence|type|schema|view)\b", "", destructive=False),
    _sql(r"\bdrop\s+(?:index|view|sequence|type|trigger|constraint)\b", "", destructive=False),
    _sql(r"\brename\s+column\b", "", destructive=False),
    _api(r"\b(?:op|batch_op)\.(" + _ALEMBIC_OPS + r")\s*\(", destructive=False),
    _api(r"\bmigrations\.(" + _DJANGO_OPS + r")\b", destructive=False),
    _api(r"\bmigrationBuilder\.([A-Z]\w*)\s*\(", destructive=False),
    _api(r"\b(ActiveRecord::Migration)\b", destructive=False),
    _api(r"^\s*(" + _RAILS_OPS + r")\b", destructive=False, extensions=_RUBY),
    _api(
        r"\.(createTable|alterTable|addColumn|renameColumn|changeColumn)\s*\(",
        destructive=False,
    ),
    _api(r"^\s*((?:model|enum|view|type)\s+\w+)\s*\{", destructive=False, extensions=_PRISMA),
    _api(
        r"\b(implements MigrationInterface|extends BaseJavaMigration|use Ecto\.Migration"
        r"|goose\.AddMigration\w*|knex\.schema\.\w+)\b",
        destructive=False,
    ),
    _api(r"\bqueryRunner\.(query|createTable|addColumn|createIndex)\s*\(", destructive=False),
    _api(
        r"^\s*((?:create|alter)(?:_if_not_exists)?\s+(?:table|index|unique_index)|add\s+:\w+)\b",
        destructive=False,
        extensions=_ELIXIR,
    ),
    _api(r"(databaseChangeLog|changeSet)\b", destructive=False, extensions=_LIQUIBASE),
)

# One pass over a line says whether any rule can match: most added lines match none,
# and one RE2 search is much cheaper than one per rule.
_ANY_RULE = re2.compile("|".join(rule.source for rule in _RULES))

# ``ALTER TABLE t DROP c`` removes a column; DROP of a constraint or default does not.
_ALTER_DROP = re2.compile(
    r"(?i)\balter\s+table\b.*\bdrop\s+(?:column\s+)?(?:if\s+exists\s+)?([a-z_\"`\[][\w\"`\]]*)"
)
_ALTER_DROP_HARMLESS = frozenset(
    {
        "constraint",
        "index",
        "key",
        "primary",
        "foreign",
        "default",
        "not",
        "check",
        "identity",
        "expression",
        "partition",
        "trigger",
        "unique",
    }
)

# Directories that hold only migrations (lowercased, with a leading "/").
_MIGRATION_DIRS = (
    "/alembic/versions/",
    "/db/migrate/",
    "/priv/repo/migrations/",
    "/prisma/migrations/",
    "/db/migration/",
    "/db/changelog/",
)
# Directories where migrations live beside the framework's own code: a file
# there is a migration when it is named like one.
_MIGRATION_DIR_NAMES = frozenset({"migrations", "migrate", "migration"})
_SCHEMA_FILES = ("/db/schema.rb", "/db/structure.sql")


def _named_like_migration(name: str) -> bool:
    """0001_initial.py, 20240101_x.rb, 1680000000000-Init.ts, V2__x.sql, U2__x.sql,
    R__views.sql, EF Core's ``…ModelSnapshot.cs``."""
    if name[:1].isdigit():
        return True
    if name[:1] in "vur" and "__" in name:
        return name[1:].split("__", 1)[0].replace(".", "").replace("_", "").isdigit()
    return name.endswith("modelsnapshot.cs")


def _path_matches(path: str) -> bool:
    if is_test_path(path):
        return False
    candidate = "/" + path.lower()
    directory, _, name = candidate.rpartition("/")
    if name.endswith((".sql", ".prisma")) or candidate.endswith(_SCHEMA_FILES):
        return True
    if any(marker in directory + "/" for marker in _MIGRATION_DIRS):
        return posixpath.splitext(name)[1] not in _PROSE_EXTENSIONS
    if "changelog" in name and posixpath.splitext(name)[1] in _LIQUIBASE:
        return True
    parts = directory.split("/")
    return not _MIGRATION_DIR_NAMES.isdisjoint(parts) and _named_like_migration(name)


def _sentence_case(rule: _Rule, match: Any, *, sql_file: bool) -> bool:
    """True for an SQL keyword match written like prose ("Create view") outside SQL files."""
    if sql_file or rule.label is None:
        return False
    first = str(match.group(0)).lstrip(" \t\"'(;").split()[0] if str(match.group(0)).split() else ""
    return len(first) > 1 and first[0].isupper() and first[1:].islower()


def _operation(rule: _Rule, match: Any) -> str:
    if rule.label:
        return rule.label
    if rule.label == "":
        return " ".join(str(match.group(0)).split()).upper()
    return str(match.group(1))


class MigrationDetector:
    """Findings ``migration`` (by path or content) and ``destructive-migration``."""

    name: str = "migrations"

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        return head_text_wanted(file)

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        file = data.file
        findings: list[Finding] = []
        if all(is_test_path(path) for path in file.paths):
            return ()
        by_path = next((path for path in file.paths if _path_matches(path)), None)
        if by_path is not None:
            verb = "removes" if file.status is FileStatus.REMOVED else "changes"
            findings.append(
                self._finding("migration", file.path, None, f"{verb} migration file {by_path}")
            )
        if posixpath.splitext(file.path)[1].lower() in _PROSE_EXTENSIONS:
            return tuple(findings)
        line_findings: list[Finding] = []
        sql_file = by_path is not None
        for added in inspected_lines(data) or ():
            finding = self._line(file.path, added.number, added.text, sql_file=sql_file)
            if finding is not None:
                line_findings.append(finding)
        if len(line_findings) > MAX_LINE_FINDINGS:
            # Keep the destructive ones: they are what a reviewer must see.
            line_findings.sort(key=lambda f: (f.rule != "destructive-migration", f.line or 0))
            hidden = len(line_findings) - MAX_LINE_FINDINGS
            line_findings = sorted(line_findings[:MAX_LINE_FINDINGS], key=lambda f: f.line or 0)
            line_findings.append(
                self._finding(
                    "migration", file.path, None, f"{hidden} more migration lines not listed"
                )
            )
        findings.extend(line_findings)
        return tuple(findings)

    def _line(self, path: str, number: int, text: str, *, sql_file: bool) -> Finding | None:
        extension = posixpath.splitext(path)[1].lower()
        stripped = text.strip()
        if stripped.startswith(("-- +goose ", "-- +migrate ")) and stripped.endswith(" Up"):
            return self._finding("migration", path, number, f"migration: {stripped[3:]}")
        if not stripped or stripped.startswith(_COMMENT_PREFIXES):
            return None
        if _ANY_RULE.search(text) is None:
            return None
        destructive: list[str] = []
        other: str | None = None
        for rule in _RULES:
            if rule.extensions is not None and extension not in rule.extensions:
                continue
            match = rule.pattern.search(text)
            if match is None or _sentence_case(rule, match, sql_file=sql_file):
                continue
            operation = _operation(rule, match)
            if rule.destructive:
                if operation.upper() not in (d.upper() for d in destructive):
                    destructive.append(operation)
            elif other is None:
                other = operation
        alter_drop = _ALTER_DROP.search(text)
        if alter_drop is not None:
            target = str(alter_drop.group(1)).lower()
            if target not in _ALTER_DROP_HARMLESS and not destructive:
                destructive.append("ALTER TABLE ... DROP")
        if destructive:
            return self._finding(
                "destructive-migration",
                path,
                number,
                "destructive migration: " + ", ".join(destructive),
            )
        if other is not None:
            return self._finding("migration", path, number, f"migration: {other}")
        return None

    def _finding(self, rule: str, path: str, line: int | None, message: str) -> Finding:
        return Finding(detector=self.name, rule=rule, path=path, line=line, message=message)
