"""Webhook secrets encrypted at rest: they must sign every delivery, so they are sealed, not hashed.

The key is derived from Django's SECRET_KEY with HKDF-SHA256 (a fixed, purpose-specific `info`), so a
database dump alone does not reveal them; changing PATCHDAY_SECRET_KEY makes existing secrets unreadable
(deliveries then fail and say so; re-create the webhooks).
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from patchday.core.errors import ConfigurationError

_INFO = b"patchday notifications webhook secrets v1"


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def unseal(sealed: str) -> str:
    """The secret; raises ConfigurationError when it was sealed under another SECRET_KEY."""
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode()
    except InvalidToken:
        raise ConfigurationError(
            "a webhook secret cannot be decrypted: PATCHDAY_SECRET_KEY changed since it was created; "
            "delete the webhook and add it again"
        ) from None
