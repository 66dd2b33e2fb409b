"""Loopback stand-ins for GitHub's browser-facing pages (tests only)."""
