"""Schema migrations: by where a file lives and by the DDL its added lines carry.

Covers SQL DDL (any dialect's CREATE/ALTER/DROP/TRUNCATE), Alembic operations
(https://alembic.sqlalchemy.org/en/latest/ops.html), Django migration
operations (https://docs.djangoproject.com/en/stable/ref/migration-operations/),
Rails migrations (https://guides.rubyonrails.org/active_record_migrations.html),
Knex/TypeORM/Sequelize schema builders and Prisma schemas
(https://www.prisma.io/docs/orm/prisma-schema).

Operations that lose data (dropping a table or column, truncating, Django's
DeleteModel/RemoveField, Rails' remove_column/drop_table) get the rule
``destructive-migration`` and are named in the message; the rest ``migration``.
SQL keywords are matched case-insensitively (SQL is); framework API names
case-sensitively (their languages are), which keeps prose like "drop table"
in a docstring apart from ``op.drop_table``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2

from gate.detectors.base import Finding, ScanInput, head_text_wanted, inspected_lines
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

_ALEMBIC_OPS = (
    "create_table|add_column|alter_column|create_index|drop_index|create_foreign_key|"
    "create_unique_constraint|create_check_constraint|create_primary_key|drop_constraint|"
    "rename_table|batch_alter_table|bulk_insert|create_table_comment|drop_table_comment|"
    "execute|create_exclude_constraint"
)
_DJANGO_OPS = (
    "CreateModel|RenameModel|AlterModelTable|AlterModelTableComment|AlterUniqueTogether|"
    "AlterIndexTogether|AlterOrderWithRespectTo|AlterModelOptions|AlterModelManagers|"
    "AddField|AlterField|RenameField|AddIndex|RemoveIndex|RenameIndex|AddConstraint|"
    "RemoveConstraint|RunSQL|RunPython|SeparateDatabaseAndState|Migration"
)
_RAILS_OPS = (
    "create_table|create_join_table|change_table|add_column|change_column|"
    "change_column_default|change_column_null|rename_column|rename_table|add_index|"
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

#: Path globs, matched against the lowercased path (EF Core writes ``Migrations/``);
#: ``*`` crosses ``/`` and a leading ``*/`` also matches at the repository root.
_PATH_GLOBS = (
    "*/migrations/*",
    "*/migrate/*",
    "*/alembic/versions/*",
    "*/db/migrate/*",
    "*/db/schema.rb",
    "*.sql",
    "*/schema.prisma",
    "*.prisma",
)


# One RE2 program for all of them (paths are untrusted): '*' is any run of characters,
# newlines included, as in fnmatch.
_PATH_PATTERN = re2.compile(
    "(?s)^(?:"
    + "|".join(".*".join(re2.escape(part) for part in glob.split("*")) for glob in _PATH_GLOBS)
    + ")$"
)


def _path_matches(path: str) -> bool:
    return _PATH_PATTERN.search("/" + path.lower()) is not None


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
        by_path = next((path for path in file.paths if _path_matches(path)), None)
        if by_path is not None:
            verb = "removes" if file.status is FileStatus.REMOVED else "changes"
            findings.append(
                self._finding("migration", file.path, None, f"{verb} migration file {by_path}")
            )
        if posixpath.splitext(file.path)[1].lower() in _PROSE_EXTENSIONS:
            return tuple(findings)
        line_findings: list[Finding] = []
        for added in inspected_lines(data) or ():
            finding = self._line(file.path, added.number, added.text)
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

    def _line(self, path: str, number: int, text: str) -> Finding | None:
        extension = posixpath.splitext(path)[1].lower()
        stripped = text.strip()
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
            if match is None:
                continue
            operation = _operation(rule, match)
            if rule.destructive:
                if operation not in destructive:
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
