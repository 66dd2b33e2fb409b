"""Webhook signatures: HMAC-SHA256 of the raw body in ``X-Hub-Signature-256``.

https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

import hashlib
import hmac


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def valid(*, body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of the signature header against the body."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().encode())
