"""`gate` subcommands: each module exposes ``register(subparsers)`` and ``run(args)``."""

from __future__ import annotations
