"""Do the extra pods of a plan fit on the GPUs that are free? (pure)

Before the operator scales a revision up it compares the ``nvidia.com/gpu``
the new pods request with the free allocatable GPUs on the nodes the pod
template can land on, so a release that cannot fit says so at once instead of
leaving Pending pods until its progress deadline.

A node is a candidate when it is Ready, not cordoned, matches the template's
``nodeSelector`` and required node affinity, and every NoSchedule/NoExecute
taint is tolerated. Free GPUs = allocatable - requests of the non-terminated
pods bound to the node. Pods are whole: a node with 3 free GPUs takes one pod
asking for 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})
BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})

Json = dict[str, Any]

_SUFFIXES = {
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
}


def quantity(value: object) -> int:
    """A resource quantity as a whole number (GPUs are counted in whole devices).

    Fractions round up: a pod asking for part of a device needs a device. Text
    that is no quantity counts as 0 (the API server would not have accepted it).
    """
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    text = str(value).strip()
    factor = Decimal(1)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            factor, text = _SUFFIXES[suffix], text[: -len(suffix)]
            break
    try:
        number = Decimal(text) * factor
    except InvalidOperation:
        return 0
    if not number.is_finite() or number <= 0:
        return 0
    return math.ceil(number)


def _container_gpus(container: Mapping[str, Any]) -> int:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    if GPU_RESOURCE in limits:
        return quantity(limits[GPU_RESOURCE])
    return quantity((resources.get("requests") or {}).get(GPU_RESOURCE))


def pod_gpus(pod_spec: Mapping[str, Any]) -> int:
    """GPUs one pod of this spec asks for (as the scheduler counts them).

    Containers run together, so they add up; init containers run one at a
    time before them, so the largest one counts if it is larger.
    """
    running = sum(_container_gpus(c) for c in pod_spec.get("containers") or [])
    init = max((_container_gpus(c) for c in pod_spec.get("initContainers") or []), default=0)
    return max(running, init)


# --- nodes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class NodeGPUs:
    """One node as far as GPU placement goes."""

    name: str
    allocatable: int
    used: int = 0
    labels: Mapping[str, str] | None = None
    taints: tuple[Taint, ...] = ()
    ready: bool = True
    unschedulable: bool = False

    @property
    def free(self) -> int:
        return max(self.allocatable - self.used, 0)


def _ready(node: Json) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def gpus_in_use(pods: Iterable[Json]) -> dict[str, int]:
    """GPUs requested by the non-terminated pods bound to each node, by node name."""
    used: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if not node or phase in TERMINATED_PHASES:
            continue
        used[node] = used.get(node, 0) + pod_gpus(pod.get("spec") or {})
    return used


def node_gpus(nodes: Iterable[Json], pods: Iterable[Json]) -> tuple[NodeGPUs, ...]:
    """The GPU view of every node (parsed from Node and Pod objects)."""
    used = gpus_in_use(pods)
    result = []
    for node in nodes:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        name = str(meta.get("name", ""))
        allocatable = quantity(
            ((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)
        )
        taints = tuple(
            Taint(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", "")))
            for t in spec.get("taints") or []
        )
        result.append(
            NodeGPUs(
                name=name,
                allocatable=allocatable,
                used=used.get(name, 0),
                labels=dict(meta.get("labels") or {}),
                taints=taints,
                ready=_ready(node),
                unschedulable=bool(spec.get("unschedulable")),
            )
        )
    return tuple(sorted(result, key=lambda n: n.name))


# --- where a pod template may land ------------------------------------------------------


def _tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key") or ""
    if (toleration.get("operator") or "Equal") == "Exists":
        return not key or key == taint.key
    return key == taint.key and (toleration.get("value") or "") == taint.value


def tolerated(pod_spec: Mapping[str, Any], node: NodeGPUs) -> bool:
    tolerations = pod_spec.get("tolerations") or []
    return all(
        any(_tolerates(t, taint) for t in tolerations)
        for taint in node.taints
        if taint.effect in BLOCKING_EFFECTS
    )


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _expression(expression: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key = str(expression.get("key", ""))
    operator = expression.get("operator")
    wanted = [str(v) for v in expression.get("values") or []]
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        have, limit = _integer(values[key]), _integer(wanted[0])
        if have is None or limit is None:
            return False
        return have > limit if operator == "Gt" else have < limit
    return False


def _term(term: Mapping[str, Any], node: NodeGPUs) -> bool:
    """One nodeSelectorTerm: all its requirements hold (an empty term matches nothing)."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = node.labels or {}
    return all(_expression(e, labels) for e in expressions) and all(
        _expression(f, {"metadata.name": node.name}) for f in fields
    )


def _required_terms(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    terms: list[Mapping[str, Any]] = required.get("nodeSelectorTerms") or []
    return terms


def selects(pod_spec: Mapping[str, Any], node: NodeGPUs) -> bool:
    """nodeSelector and required node affinity (terms are ORed) both allow the node."""
    labels = node.labels or {}
    selector = pod_spec.get("nodeSelector") or {}
    if any(labels.get(key) != str(value) for key, value in selector.items()):
        return False
    terms = _required_terms(pod_spec)
    return terms is None or any(_term(term, node) for term in terms)


def candidate(pod_spec: Mapping[str, Any], node: NodeGPUs) -> bool:
    """Whether a pod of this spec may be scheduled on the node at all."""
    return (
        node.ready
        and not node.unschedulable
        and selects(pod_spec, node)
        and tolerated(pod_spec, node)
    )


# --- the check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GPUFit:
    """The answer for ``pods`` more pods of ``per_pod`` GPUs each."""

    pods: int
    per_pod: int
    free: Mapping[str, int]  # free GPUs of the candidate nodes with any GPU, by node
    pods_that_fit: int
    largest: int = 0  # the most GPUs a node matching the template has allocatable

    @property
    def never_fits(self) -> bool:
        """No node matching the template could hold even one such pod if it were empty.

        Ready and cordoned do not count here: a node down for maintenance comes back,
        and a revision rolled back for it would not be retried by itself.
        """
        return self.per_pod > self.largest

    @property
    def fits(self) -> bool:
        return self.pods_that_fit >= self.pods

    @property
    def total_free(self) -> int:
        return sum(self.free.values())

    def shortage(self, who: str, hint: str) -> str:
        """The on-call message: what is needed, what is free where, what to do."""
        unit = f"{self.per_pod} {GPU_RESOURCE}"
        plural = "pod" if self.pods == 1 else "pods"
        need = f"{who} needs {self.pods} more {plural} × {unit}"  # noqa: RUF001
        if not self.free:
            where = (
                f"no Ready, schedulable node matching the template (nodeSelector, node "
                f"affinity, tolerations) has {GPU_RESOURCE}"
            )
        else:
            nodes = ", ".join(f"{name}: {free}" for name, free in self.free.items())
            where = f"nodes matching the template have {self.total_free} free ({nodes})"
            if self.per_pod > 1 and self.pods_that_fit:
                where += f", room for {self.pods_that_fit} such pods"
            elif self.per_pod > 1 and self.total_free >= self.per_pod:
                where += f", but no single node has {self.per_pod} free"
        return f"{need}; {where}. {hint}"


def fit(pod_spec: Mapping[str, Any], pods: int, nodes: Sequence[NodeGPUs]) -> GPUFit:
    """Whether ``pods`` more pods of ``pod_spec`` fit on the free GPUs of candidate nodes."""
    per_pod = pod_gpus(pod_spec)
    matching = [
        n for n in nodes if n.allocatable > 0 and selects(pod_spec, n) and tolerated(pod_spec, n)
    ]
    candidates = [n for n in matching if n.ready and not n.unschedulable]
    free = {node.name: node.free for node in candidates}
    largest = max((node.allocatable for node in matching), default=0)
    if per_pod == 0:
        return GPUFit(pods, per_pod, free, pods, largest)
    that_fit = sum(value // per_pod for value in free.values())
    return GPUFit(pods, per_pod, free, that_fit, largest)
