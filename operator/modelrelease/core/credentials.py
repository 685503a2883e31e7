"""Which Secrets the operator may read (pure).

Naming a Secret in a ModelRelease is not enough: whoever may create a release
in a namespace could otherwise have the operator send any Secret there to an
address of their choosing. The Secret's owner opts in with a label, and the
operator reads only Secrets in the release's own namespace.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelrelease.api.constants import CREDENTIALS_OPT_IN, LABEL_CREDENTIALS, Reason
from modelrelease.core.observation import Problem


def opted_in(labels: Mapping[str, str]) -> bool:
    """Whether a Secret with these labels may be read."""
    return labels.get(LABEL_CREDENTIALS) == CREDENTIALS_OPT_IN


def not_opted_in(namespace: str, name: str, where: str) -> Problem:
    """The problem of a referenced Secret without the opt-in label."""
    return Problem(
        Reason.SECRET_NOT_OPTED_IN,
        f"{where} names Secret {namespace}/{name}, which does not carry the label "
        f'{LABEL_CREDENTIALS}: "{CREDENTIALS_OPT_IN}", so the operator does not read it '
        "(only Secrets opted in by that label are sent anywhere); if this Secret is meant "
        f"for the operator, run: kubectl label secret {name} -n {namespace} "
        f"{LABEL_CREDENTIALS}={CREDENTIALS_OPT_IN}",
    )
