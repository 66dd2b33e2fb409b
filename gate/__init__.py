"""merge-gate: a policy engine for pull requests opened by AI coding agents."""

from __future__ import annotations

__version__ = "0.1.0"
