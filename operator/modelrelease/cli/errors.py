"""One-line errors instead of tracebacks, with kubectl's exit code for them (2)."""

from __future__ import annotations

import json

EXIT_ERROR = 2


class CommandError(Exception):
    """The command cannot do what was asked; the message says why and what to do."""


def explain(error: BaseException, namespace: str | None, name: str | None) -> str | None:
    """The one-line message for an error of the API or the connection; None: not ours."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from modelrelease.kube.errors import KubeError

    if isinstance(error, CommandError):
        return str(error)
    cause = error.__cause__ if isinstance(error, KubeError) else error
    if isinstance(cause, ApiException):
        return _api_message(cause, namespace, name)
    if isinstance(error, KubeError):
        return str(error)
    if isinstance(error, HTTPError | OSError):
        return (
            f"cannot reach the API server ({type(error).__name__}: {error}); check --context "
            "and --kubeconfig, and that the cluster is up"
        )
    return None


def _api_message(error: object, namespace: str | None, name: str | None) -> str:
    status = getattr(error, "status", None)
    what = f"ModelRelease {namespace}/{name}" if name else f"ModelReleases in {namespace}"
    if status == 404:
        return (
            f"{what} not found; check the name and the namespace (-n), or whether the "
            "ModelRelease CRD is installed (kubectl get crd modelreleases.modelrelease.dev)"
        )
    if status == 403:
        return f"forbidden: {_reason(error)}; ask for RBAC access to modelreleases.modelrelease.dev"
    if status == 401:
        return "unauthorized: the credentials of the kubeconfig were refused; log in again"
    return f"the API server answered {status}: {_reason(error)}"


def _reason(error: object) -> str:
    body = getattr(error, "body", None)
    try:
        return str(json.loads(body or "{}").get("message") or getattr(error, "reason", ""))
    except (ValueError, AttributeError):
        return str(getattr(error, "reason", ""))
