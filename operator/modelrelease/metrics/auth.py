"""Turning a Secret's data into an ``Authorization`` header value."""

from __future__ import annotations

import base64
from collections.abc import Mapping

TOKEN_KEY = "token"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"


class CredentialsError(ValueError):
    """The Secret does not hold credentials in a shape the operator knows."""


def authorization_from_secret(data: Mapping[str, str]) -> str:
    """Build the header value from decoded Secret data.

    A ``token`` key gives bearer auth; ``username`` and ``password`` give basic
    auth. Anything else is refused rather than guessed.
    """
    token = data.get(TOKEN_KEY, "").strip()
    if token:
        return f"Bearer {token}"
    username = data.get(USERNAME_KEY)
    password = data.get(PASSWORD_KEY)
    if username and password is not None:
        pair = f"{username}:{password}".encode()
        return f"Basic {base64.b64encode(pair).decode('ascii')}"
    present = ", ".join(sorted(data)) or "no keys"
    raise CredentialsError(
        f"expected the Secret to hold '{TOKEN_KEY}' (bearer) or '{USERNAME_KEY}' and "
        f"'{PASSWORD_KEY}' (basic auth), found {present}; add one of those keys"
    )
