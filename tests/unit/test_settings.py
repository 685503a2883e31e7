"""The operator's command line."""

from __future__ import annotations

from pathlib import Path

import kopf
import pytest
from kubernetes import client
from kubernetes.config import kube_config
from modelrelease.kube.client import new_api_client
from modelrelease.settings import kopf_settings, parse_args

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: flag, cluster: {server: "https://flag.example:6443"}}]
users: [{name: flag, user: {token: abc}}]
contexts: [{name: flag, context: {cluster: flag, user: flag}}]
current-context: flag
"""


def test_the_kubeconfig_flag_is_what_the_clients_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Kubernetes client reads $KUBECONFIG when imported, before the flags are parsed."""
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", "/nonexistent/kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    parse_args(["--kubeconfig", str(path)])
    api: client.ApiClient = new_api_client()
    assert api.configuration.host == "https://flag.example:6443"
    # kopf's login (kopf.login_via_client) loads the default kubeconfig the same way.
    loaded = client.Configuration()
    kube_config.load_kube_config(client_configuration=loaded)  # type: ignore[no-untyped-call]
    assert loaded.host == "https://flag.example:6443"


def test_kopf_keeps_no_copy_of_the_spec_so_a_spec_change_costs_no_extra_write() -> None:
    settings = kopf_settings(parse_args([]))
    storage = settings.persistence.diffbase_storage
    body = kopf.Body({"metadata": {"name": "chat"}, "spec": {"replicas": 2}})
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch
    assert storage.fetch(body=body) is None


def test_kopfs_event_workers_are_not_what_bounds_the_passes() -> None:
    settings = kopf_settings(parse_args(["--worker-limit", "5"]))
    assert settings.queueing.worker_limit is None  # the scheduler bounds passes
    assert settings.execution.max_workers == 5
