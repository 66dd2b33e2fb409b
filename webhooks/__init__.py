"""The GitHub App service: webhook receiver, GitHub adapter, store and worker."""

from __future__ import annotations
