"""The built-in policy: what applies when a repository has no ``.github/merge-gate.yml``.

It mirrors the risk table in the README. A policy file that leaves a top-level
section out takes that section from here.
"""

from __future__ import annotations

from gate.policy import POLICY_PATH, LoadedPolicy, parse

DEFAULT_POLICY = """\
# merge-gate policy: the built-in default.
version: 1

agents:
  # Every Bot account (user type Bot, login ending in [bot]) is an agent.
  bots: true
  # Well-known coding-agent accounts that are not Bot accounts.
  logins: ["*[bot]", "Copilot", "copilot-swe-agent", "devin-ai-integration",
           "openhands-agent", "sweep-ai", "codegen-sh"]
  exclude: []
  # A human's PR whose commits an agent authored or co-authored is an agent PR.
  co_authors: true
  co_author_emails: ["noreply@anthropic.com", "cursoragent@cursor.com",
                     "openhands@all-hands.dev", "*[bot]@users.noreply.github.com"]
  labels: []

# PRs by humans get a passing check saying they are not governed.
govern_humans: false

scope:
  deny:
    - paths: [".github/workflows/**"]
      reason: CI workflows run with the repository's secrets; agents may not edit them.
    - paths: [".github/actions/**"]
      reason: the repository's own actions run inside CI workflows, with their secrets.
    - detectors: [secrets]
      reason: a secret in added lines must be revoked, not merged.

# Lowest risk first; a file takes the highest tier that matches it.
tiers:
  - name: low
    description: docs, tests, types (CI only)
    paths: ["docs/**", "*.md", "*.rst", "*.adoc", "LICENSE*",
            "tests/**", "test/**", "**/tests/**", "**/__tests__/**", "spec/**",
            "test_*.py", "*_test.py", "*_test.go", "*.test.{js,jsx,ts,tsx}",
            "*.spec.{js,jsx,ts,tsx}", "*.pyi", "*.d.ts", "py.typed"]
    require: {approvals: 0}
  - name: medium
    description: application logic (CI + one review by a human with write access)
    require: {approvals: 1}
  - name: dependencies
    description: new dependency (approval + supply-chain scan)
    detectors: ["dependencies:new-package", "dependencies:new-source",
                "dependencies:manifest-unread", "dependencies:manifest-invalid"]
    require: {approvals: 1, gates: [supply_chain_scan]}
  - name: infra
    description: CI and infrastructure (code-owner approval)
    detectors: [infra]
    require: {approvals: 1, from: code_owners}
    agent_edit: ask
  - name: agent-config
    description: >-
      agent instructions, hooks and tool servers (code-owner approval): an agent
      may not rewrite its own instructions with one casual review
    paths: ["AGENTS.md", "AGENTS.override.md", "CLAUDE.md", "CLAUDE.local.md", "GEMINI.md",
            "**/.claude/**", "**/.codex/**", "**/.gemini/**", "**/.cursor/**", ".cursorrules",
            "**/.windsurf/**", ".windsurfrules", ".clinerules", "**/.clinerules/**",
            ".github/hooks/**", ".github/copilot-instructions.md", ".github/copilot/**",
            ".github/instructions/**", ".github/agents/**", ".github/prompts/**",
            ".mcp.json", "**/.vscode/mcp.json"]
    require: {approvals: 1, from: code_owners}
    agent_edit: deny
  - name: high
    description: auth, billing, payments, security (code-owner approval)
    paths: ["**/auth/**", "**/authn/**", "**/authz/**", "**/oauth/**", "**/login/**",
            "**/billing/**", "**/payments/**", "**/payment/**", "**/checkout/**",
            "**/security/**", "**/crypto/**", "**/permissions/**", "**/secrets/**"]
    # Auth, crypto and permission code anywhere: path words (jwt, oauth, session,
    # password, policy, token...) and added lines that use such libraries.
    detectors: [auth]
    require: {approvals: 1, from: code_owners}
  - name: migrations
    description: schema and migrations (code-owner approval + staged rollout)
    # Every file under a migrations directory (Django imports every module there);
    # the detector adds each framework's own layout (Flyway, Liquibase, Ecto...).
    paths: ["**/migrations/**", "**/migrate/**", "alembic/**", "**/alembic/versions/**",
            "*.sql", "**/schema.prisma", "db/schema.rb", "db/structure.sql"]
    detectors: [migrations]
    require: {approvals: 1, from: code_owners, gates: [staged_rollout]}
    rollout: >-
      Apply the migration to a canary or staging database first, keep it
      backward compatible with the running code, then roll out in stages.
    agent_edit: ask
  - name: governance
    description: the merge-gate policy and CODEOWNERS (approval by their owners)
    paths: [".github/merge-gate.yml", ".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"]
    require: {approvals: 1, from: code_owners}
    agent_edit: deny

default_tier: medium
# A file whose added content could not be inspected is never in a lower tier.
unseen_content_tier: medium
# Owners of gated files that CODEOWNERS leaves unowned, e.g. ["@acme/security"]:
# set it to the security owners so agent instructions are never left unowned.
fallback_owners: []

# Tests that declare tests, and prose docs, inside a gated area (payment/tests/,
# auth/docs/) take this tier instead of the area's. Remove to keep the area's tier.
gated_tests:
  tier: low
  from: [high, migrations]
"""

BUILTIN_PATH = "(built-in default policy)"


_DEFAULT = parse(DEFAULT_POLICY, path=BUILTIN_PATH, blob="builtin")


def default_policy() -> LoadedPolicy:
    return _DEFAULT


def load_policy(text: str | None, *, path: str = POLICY_PATH, blob: str = "") -> LoadedPolicy:
    """The repository's policy, or the built-in one when the file does not exist."""
    if text is None:
        return default_policy()
    return parse(text, path=path, blob=blob, defaults=_DEFAULT)
