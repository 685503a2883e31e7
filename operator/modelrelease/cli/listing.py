"""``kubectl modelrelease list [-A]`` and ``kubectl modelrelease history NAME``."""

from __future__ import annotations

from datetime import UTC, datetime

from modelrelease.cli.cluster import Cluster
from modelrelease.cli.render import history_table, list_table


def releases(cluster: Cluster, all_namespaces: bool) -> str:
    found = cluster.releases(all_namespaces)
    if not found:
        where = "any namespace" if all_namespaces else f"namespace {cluster.namespace}"
        return f"No ModelReleases found in {where}."
    return list_table(found, datetime.now(UTC), all_namespaces)


def history(cluster: Cluster, name: str) -> str:
    release = cluster.release(name)
    return history_table(release, cluster.kept_revisions(name), datetime.now(UTC))
