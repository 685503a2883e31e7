"""GPU capacity: where a template may land, what is free, and the plan's hold and rollbacks."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api.constants import ConditionStatus, ConditionType, Phase, Reason
from modelrelease.core.capacity_guard import surge_pods
from modelrelease.core.conditions import find
from modelrelease.core.gpu import (
    NodeGPUs,
    Taint,
    candidate,
    fit,
    gpus_in_use,
    node_gpus,
    pod_gpus,
    quantity,
)
from modelrelease.core.observation import Observation
from modelrelease.core.pods import PodState, pod_failure, pod_state
from modelrelease.core.revision import revision_of
from modelrelease.routers.router import Routes

from tests.unit.test_plan import T0, World, make_spec


def gpu_spec(gpus: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "containers": [{"name": "server", "resources": {"limits": {"nvidia.com/gpu": gpus}}}],
        **extra,
    }


def node(name: str, gpus: int = 4, used: int = 0, **extra: Any) -> NodeGPUs:
    return NodeGPUs(name=name, allocatable=gpus, used=used, labels={"pool": "a100"}, **extra)


# --- quantities and requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        ("2", 2),
        ("0", 0),
        (None, 0),
        ("1k", 1000),
        ("500m", 1),
        ("x", 0),
        (-1, 0),
        (True, 0),
    ],
)
def test_quantity(value: object, expected: int) -> None:
    assert quantity(value) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (gpu_spec(2), 2),
        ({"containers": [{"name": "a", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}, 1),
        (
            {
                "containers": [
                    {"name": "a", "resources": {"limits": {"nvidia.com/gpu": 1}}},
                    {"name": "b", "resources": {"limits": {"nvidia.com/gpu": 2}}},
                ]
            },
            3,
        ),
        (
            {
                "initContainers": [{"name": "i", "resources": {"limits": {"nvidia.com/gpu": 4}}}],
                "containers": [{"name": "a", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
            },
            4,
        ),
        ({"containers": [{"name": "cpu", "resources": {"limits": {"cpu": "2"}}}]}, 0),
        (
            {
                "containers": [
                    {
                        "name": "a",
                        "resources": {
                            "limits": {"nvidia.com/gpu": 2},
                            "requests": {"nvidia.com/gpu": 1},
                        },
                    }
                ]
            },
            2,
        ),
    ],
)
def test_pod_gpus_sums_containers(spec: dict[str, Any], expected: int) -> None:
    assert pod_gpus(spec) == expected


def test_used_gpus_count_only_bound_running_pods() -> None:
    pods = [
        {"spec": {"nodeName": "n0", **gpu_spec(2)}, "status": {"phase": "Running"}},
        {"spec": {"nodeName": "n0", **gpu_spec(1)}, "status": {"phase": "Pending"}},
        {"spec": {"nodeName": "n0", **gpu_spec(4)}, "status": {"phase": "Succeeded"}},
        {"spec": {"nodeName": "n1", **gpu_spec(4)}, "status": {"phase": "Failed"}},
        {"spec": gpu_spec(4), "status": {"phase": "Pending"}},  # not bound
    ]
    assert gpus_in_use(pods) == {"n0": 3}


def test_node_view_from_api_objects() -> None:
    nodes = [
        {
            "metadata": {"name": "gpu-node-1", "labels": {"pool": "a100"}},
            "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]},
            "status": {
                "allocatable": {"nvidia.com/gpu": "4"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        },
        {
            "metadata": {"name": "gpu-node-0"},
            "spec": {"unschedulable": True},
            "status": {"allocatable": {}, "conditions": [{"type": "Ready", "status": "False"}]},
        },
    ]
    pods = [{"spec": {"nodeName": "gpu-node-1", **gpu_spec(3)}, "status": {"phase": "Running"}}]
    first, second = node_gpus(nodes, pods)
    assert (first.name, first.allocatable, first.used, first.ready) == ("gpu-node-0", 0, 0, False)
    assert first.unschedulable
    assert (second.name, second.free, second.taints) == (
        "gpu-node-1",
        1,
        (Taint("gpu", "yes", "NoSchedule"),),
    )


# --- where a template may land -----------------------------------------------------------------


def _affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]
            }
        }
    }


TAINTED = (Taint("nvidia.com/gpu", "present", "NoSchedule"),)


@pytest.mark.parametrize(
    ("extra", "target", "allowed"),
    [
        ({}, node("n"), True),
        ({"nodeSelector": {"pool": "a100"}}, node("n"), True),
        ({"nodeSelector": {"pool": "h100"}}, node("n"), False),
        (
            {"affinity": _affinity({"key": "pool", "operator": "In", "values": ["a100"]})},
            node("n"),
            True,
        ),
        (
            {"affinity": _affinity({"key": "pool", "operator": "In", "values": ["h100"]})},
            node("n"),
            False,
        ),
        (
            {"affinity": _affinity({"key": "pool", "operator": "NotIn", "values": ["a100"]})},
            node("n"),
            False,
        ),
        (
            {"affinity": _affinity({"key": "zone", "operator": "NotIn", "values": ["x"]})},
            node("n"),
            True,
        ),
        ({"affinity": _affinity({"key": "pool", "operator": "Exists"})}, node("n"), True),
        ({"affinity": _affinity({"key": "pool", "operator": "DoesNotExist"})}, node("n"), False),
        ({"affinity": _affinity({"key": "zone", "operator": "DoesNotExist"})}, node("n"), True),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
                                {
                                    "matchFields": [
                                        {"key": "metadata.name", "operator": "In", "values": ["n"]}
                                    ]
                                },
                            ]
                        }
                    }
                }
            },
            node("n"),
            True,
        ),
        ({}, node("n", taints=TAINTED), False),
        ({}, node("n", taints=(Taint("x", "", "PreferNoSchedule"),)), True),
        ({}, node("n", taints=(Taint("x", "", "NoExecute"),)), False),
        (
            {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
            node("n", taints=TAINTED),
            True,
        ),
        (
            {
                "tolerations": [
                    {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
                ]
            },
            node("n", taints=TAINTED),
            True,
        ),
        (
            {"tolerations": [{"key": "nvidia.com/gpu", "value": "absent"}]},
            node("n", taints=TAINTED),
            False,
        ),
        (
            {
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}
                ]
            },
            node("n", taints=TAINTED),
            False,
        ),
        ({"tolerations": [{"operator": "Exists"}]}, node("n", taints=TAINTED), True),
        ({}, node("n", ready=False), False),
        ({}, node("n", unschedulable=True), False),
    ],
)
def test_candidate_nodes(extra: dict[str, Any], target: NodeGPUs, allowed: bool) -> None:
    assert candidate(gpu_spec(1, **extra), target) is allowed


# --- fitting -----------------------------------------------------------------------------------


def test_shortage_message_names_the_numbers() -> None:
    nodes = [node("gpu-node-0", used=3), node("gpu-node-1", used=4), node("cpu-node-0", gpus=0)]
    answer = fit(gpu_spec(1), 2, nodes)
    assert not answer.fits
    assert answer.shortage("challenger", "Free GPUs.") == (
        "challenger needs 2 more pods × 1 nvidia.com/gpu; nodes matching the template have "  # noqa: RUF001
        "1 free (gpu-node-0: 1, gpu-node-1: 0). Free GPUs."
    )


def test_whole_pods_per_node() -> None:
    nodes = [node("a", used=1), node("b", used=1)]  # 3 + 3 free
    answer = fit(gpu_spec(2), 3, nodes)
    assert (answer.pods_that_fit, answer.fits) == (2, False)
    assert "room for 2 such pods" in answer.shortage("challenger", "")
    assert fit(gpu_spec(2), 2, nodes).fits


def test_a_pod_larger_than_any_node_never_fits() -> None:
    answer = fit(gpu_spec(64), 1, [node("a"), node("b")])
    assert answer.never_fits
    assert not answer.fits
    assert fit(gpu_spec(1), 1, [node("a", gpus=0), node("b", taints=TAINTED)]).never_fits


@pytest.mark.parametrize("down", [{"ready": False}, {"unschedulable": True}])
def test_a_node_down_for_a_while_holds_instead_of_never_fitting(down: dict[str, bool]) -> None:
    """Maintenance ends; a revision rolled back for it would not be retried by itself."""
    answer = fit(gpu_spec(8), 1, [node("big", gpus=8, **down), node("small")])
    assert not answer.fits
    assert not answer.never_fits
    assert answer.free == {"small": 4}


def test_no_gpu_request_always_fits() -> None:
    assert fit({"containers": [{"name": "c"}]}, 5, []).fits


node_lists = st.lists(
    st.builds(
        lambda i, gpus, used: NodeGPUs(f"n{i}", gpus, min(used, gpus)),
        st.integers(0, 50),
        st.integers(0, 8),
        st.integers(0, 8),
    ),
    max_size=6,
    unique_by=lambda n: n.name,
)


@given(node_lists, st.integers(1, 4), st.integers(1, 10))
def test_pods_that_fit_never_exceed_free_gpus(
    nodes: list[NodeGPUs], per_pod: int, pods: int
) -> None:
    answer = fit(gpu_spec(per_pod), pods, nodes)
    assert answer.pods_that_fit * per_pod <= answer.total_free
    assert answer.fits == (answer.pods_that_fit >= pods)
    assert all(
        free <= n.allocatable for n in nodes for name, free in answer.free.items() if name == n.name
    )


@given(node_lists, st.integers(1, 4), st.integers(1, 10), st.integers(1, 8))
def test_more_free_gpus_never_hurt(
    nodes: list[NodeGPUs], per_pod: int, pods: int, extra: int
) -> None:
    before = fit(gpu_spec(per_pod), pods, nodes)
    bigger = [*nodes, NodeGPUs("extra", extra, 0)]
    after = fit(gpu_spec(per_pod), pods, bigger)
    assert after.pods_that_fit >= before.pods_that_fit
    assert not before.fits or after.fits


@pytest.mark.parametrize(
    ("wanted", "current", "expected"),
    [
        ({"new": 2, "old": 4}, {"old": 4}, 2),  # surge: all new pods are extra
        ({"new": 1, "old": 1}, {"old": 2}, 0),  # conserve, maxSurge 0: one for one
        ({"new": 2, "old": 3}, {"old": 4}, 1),  # conserve, maxSurge 1
        ({"new": 2, "old": 4}, {"new": 2, "old": 4}, 0),  # nothing grows
        ({"new": 1, "old": 4}, {"new": 2, "old": 4}, 0),
        ({"new": 3, "old": 4}, {"old": 4, "older": 1}, 2),  # an old revision going away
    ],
)
def test_surge_pods(wanted: dict[str, int], current: dict[str, int], expected: int) -> None:
    assert surge_pods(wanted, current, "new") == expected


# --- the plan: hold for GPUs ----------------------------------------------------------------------


class GPUWorld(World):
    """The plan's world, with nodes whose free GPUs a test controls, and pods.

    ``free`` is what the nodes have free besides the settled champion; pods the
    release adds beyond that (one GPU each) take free GPUs, node by node.
    """

    def __init__(self, free: dict[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.free = free
        self.baseline = 0
        self.pods: tuple[PodState, ...] = ()

    def observe(self, *args: Any) -> Observation:
        observation = super().observe(*args)
        extra = sum(d.replicas for d in self.deployments.values()) - self.baseline
        nodes = []
        for name, free in self.free.items():
            taken = min(free, max(extra, 0))
            extra -= taken
            nodes.append(NodeGPUs(name, 4, 4 - free + taken))
        return replace(observation, gpu_nodes=tuple(nodes), pods=self.pods)


def gpu_world(free: dict[str, int], replicas: int = 2, **spec: Any) -> GPUWorld:
    template = {"spec": gpu_spec(1)}
    world = GPUWorld(free, spec=make_spec(replicas=replicas, template=template, **spec))
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    world.baseline = sum(d.replicas for d in world.deployments.values())
    return world


def test_challenger_that_does_not_fit_is_held_with_the_numbers() -> None:
    steps = [{"canary": {"steps": [{"weight": 60, "duration": "6s"}]}}]
    world = gpu_world({"gpu-node-0": 1, "gpu-node-1": 0}, stages=steps)
    champion = {r: s.replicas for r, s in world.deployments.items()}
    new = world.release("2")
    decision = world.tick()
    assert decision.routes is None, "the route must not be touched"
    assert decision.workloads is not None
    assert decision.workloads.replicas[new] == 0
    assert world.deployments[new].replicas == 0
    assert world.status.challenger is not None
    assert world.status.challenger.replicas == 0
    assert world.routes == Routes(100, 0, 0)
    assert {r: world.deployments[r].replicas for r in champion} == champion
    progressing = find(world.status.conditions, ConditionType.PROGRESSING)
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert progressing is not None
    assert degraded is not None
    assert progressing.reason == Reason.INSUFFICIENT_GPU
    assert degraded.status is ConditionStatus.TRUE
    assert degraded.message == (
        "challenger needs 2 more pods × 1 nvidia.com/gpu; nodes matching the template have "  # noqa: RUF001
        "1 free (gpu-node-0: 1, gpu-node-1: 0). Free GPUs, lower replicas or maxSurge, or use "
        "capacity.mode conserve"
    )


def test_hold_and_proceed_when_gpus_appear() -> None:
    world = gpu_world({"gpu-node-0": 0, "gpu-node-1": 0})
    new = world.release("2")
    for _ in range(5):
        decision = world.tick()
        assert decision.routes is None
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == Reason.INSUFFICIENT_GPU
    assert "challenger needs 1 more pod × 1 nvidia.com/gpu" in degraded.message  # noqa: RUF001
    assert "(gpu-node-0: 0, gpu-node-1: 0)" in degraded.message
    assert "capacity.mode conserve" in degraded.message
    warnings = [e for d in world.decisions for e in d.events if e.reason == Reason.INSUFFICIENT_GPU]
    assert len(warnings) == 1, "one Warning when the hold starts, not one per pass"
    transition = degraded.last_transition_time
    world.tick()
    again = find(world.status.conditions, ConditionType.DEGRADED)
    assert again is not None
    assert again.last_transition_time == transition
    world.free = {"gpu-node-0": 4, "gpu-node-1": 4}
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    assert world.status.champion is not None
    assert world.status.champion.revision == new
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.status is ConditionStatus.FALSE


def test_a_paused_release_holds_for_gpus_and_stays_paused() -> None:
    world = gpu_world({"gpu-node-0": 0, "gpu-node-1": 0})
    new = world.release("2")
    world.tick()
    world.spec = world.spec.model_copy(update={"paused": True})
    world.tick()
    world.tick()
    assert world.status.phase is Phase.PAUSED
    assert world.deployments[new].replicas == 0
    progressing = find(world.status.conditions, ConditionType.PROGRESSING)
    assert progressing is not None
    assert progressing.reason == Reason.PAUSED
    world.spec = world.spec.model_copy(update={"paused": False})
    world.free = {"gpu-node-0": 4, "gpu-node-1": 4}
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    assert world.status.champion is not None
    assert world.status.champion.revision == new


def test_promotion_to_full_size_waits_for_gpus() -> None:
    world = gpu_world({"gpu-node-0": 1, "gpu-node-1": 0}, replicas=2)
    new = world.release("2")
    world.run_until(
        lambda w: (
            find(w.status.conditions, ConditionType.PROGRESSING).reason  # type: ignore[union-attr]
            == Reason.INSUFFICIENT_GPU
        )
    )
    assert world.deployments[new].replicas == 1, "the first pod fitted, the second did not"
    assert world.routes is not None
    assert world.routes.canary_weight == 50


def test_conserve_mode_with_no_surge_needs_no_free_gpu() -> None:
    world = gpu_world(
        {"gpu-node-0": 0, "gpu-node-1": 0}, capacity={"mode": "conserve", "maxSurge": 0}
    )
    new = world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.SUCCEEDED)
    assert world.status.champion is not None
    assert world.status.champion.revision == new


def test_a_pod_no_node_can_hold_rolls_back_at_once() -> None:
    world = gpu_world({"gpu-node-0": 4, "gpu-node-1": 4})
    world.spec = make_spec(
        "2", replicas=2, template={"spec": gpu_spec(64)}, capacity={"mode": "surge"}
    )
    decision = world.tick()
    assert world.status.phase is Phase.ROLLED_BACK
    entry = world.status.history[-1]
    assert entry.reason == Reason.INSUFFICIENT_GPU
    assert "asks for 64 nvidia.com/gpu" in entry.message
    assert "largest node matching the template has 4 allocatable" in entry.message
    assert decision.routes == Routes(100, 0, 0)


def test_a_pod_no_node_can_hold_creates_no_pod_when_rollback_is_manual() -> None:
    world = gpu_world({"gpu-node-0": 4, "gpu-node-1": 4})
    world.spec = make_spec(
        "2",
        replicas=2,
        template={"spec": gpu_spec(64)},
        capacity={"mode": "surge"},
        rollback={"automatic": False},
    )
    new = revision_of(world.spec.model, world.spec.template)
    for _ in range(3):
        decision = world.tick()
        assert world.status.phase is Phase.FAILED
        assert decision.workloads is not None
        assert decision.workloads.replicas.get(new, 0) == 0, "a pod that can never run"
        assert world.routes == Routes(100, 0, 0)
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is not None
    assert degraded.reason == Reason.INSUFFICIENT_GPU


def test_deadline_while_held_for_gpus_says_so() -> None:
    world = gpu_world({"gpu-node-0": 0, "gpu-node-1": 0}, progressDeadline="10s")
    world.release("2")
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, limit=30)
    entry = world.status.history[-1]
    assert entry.reason == Reason.INSUFFICIENT_GPU
    assert "progressDeadline 10s" in entry.message
    assert "gpu-node-0: 0" in entry.message


def test_rollback_is_never_held_for_gpus() -> None:
    world = gpu_world(
        {"gpu-node-0": 4, "gpu-node-1": 4}, capacity={"mode": "conserve", "maxSurge": 0}
    )
    world.release("2")
    world.run_until(lambda w: w.routes is not None and w.routes.canary_weight == 10)
    world.free = {"gpu-node-0": 0, "gpu-node-1": 0}
    world.run_until(lambda w: w.status.phase is Phase.ROLLED_BACK, value=0.5)
    assert world.routes == Routes(100, 0, 0)


# --- failing challenger pods --------------------------------------------------------------------


def _pod(revision: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"chat-{revision}-abc",
            "labels": {"modelrelease.dev/revision": revision},
        },
        "status": status,
    }


def _waiting(reason: str, restarts: int = 0) -> dict[str, Any]:
    return {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "server",
                "restartCount": restarts,
                "state": {"waiting": {"reason": reason, "message": "back-off 10s"}},
            }
        ],
    }


UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ],
}


@pytest.mark.parametrize(
    ("status", "seconds", "reason", "words"),
    [
        (
            _waiting("CrashLoopBackOff", 2),
            0,
            Reason.CRASH_LOOPING,
            "CrashLoopBackOff after 2 restarts",
        ),
        (_waiting("ImagePullBackOff"), 0, Reason.IMAGE_PULL_FAILED, "image name"),
        (_waiting("ErrImagePull"), 0, Reason.IMAGE_PULL_FAILED, "ErrImagePull"),
        (_waiting("CreateContainerConfigError"), 0, Reason.CONTAINER_CONFIG_ERROR, "ConfigMaps"),
        (_waiting("ContainerCreating", 4), 0, Reason.CRASH_LOOPING, "after 4 restarts"),
        (UNSCHEDULABLE, 31, Reason.UNSCHEDULABLE, "3 Insufficient nvidia.com/gpu"),
    ],
)
def test_pod_failures(status: dict[str, Any], seconds: int, reason: Reason, words: str) -> None:
    pod = pod_state(_pod("abc", **status))
    assert pod is not None
    failure = pod_failure([pod], "abc", T0 + timedelta(seconds=seconds))
    assert failure is not None
    assert failure.reason == reason
    assert words in failure.message
    assert "chat-abc-abc" in failure.message


@pytest.mark.parametrize(
    ("status", "seconds", "revision"),
    [
        (UNSCHEDULABLE, 10, "abc"),  # within the grace
        (_waiting("ContainerCreating", 1), 0, "abc"),
        ({"phase": "Running"}, 0, "abc"),
        (_waiting("CrashLoopBackOff"), 0, "other"),  # another revision's pod
    ],
)
def test_no_pod_failure(status: dict[str, Any], seconds: int, revision: str) -> None:
    pod = pod_state(_pod("abc", **status))
    assert pod is not None
    assert pod_failure([pod], revision, T0 + timedelta(seconds=seconds)) is None


def _deleted(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return obj


def test_deleted_pods_are_ignored() -> None:
    pod = pod_state(_deleted(_pod("abc", **_waiting("CrashLoopBackOff"))))
    assert pod.terminating
    assert pod_failure([pod], "abc", T0) is None


def test_unschedulable_waits_while_a_pod_of_the_release_terminates() -> None:
    """conserve: the challenger's pod takes the GPUs of a champion pod still draining."""
    waiting = pod_state(_pod("abc", **UNSCHEDULABLE))
    draining = pod_state(_deleted(_pod("old", phase="Running")))
    later = T0 + timedelta(seconds=90)
    assert pod_failure([waiting, draining], "abc", later) is None
    failure = pod_failure([waiting], "abc", later)
    assert failure is not None
    assert failure.reason == Reason.UNSCHEDULABLE


def test_unschedulable_for_gpus_waits_when_gpus_are_free_again() -> None:
    """The scheduler retries a refused pod after a back-off: free GPUs mean it will fit."""
    waiting = pod_state(_pod("abc", **UNSCHEDULABLE))
    later = T0 + timedelta(seconds=40)
    assert pod_failure([waiting], "abc", later, gpus_free_now=True) is None
    assert pod_failure([waiting], "abc", later, gpus_free_now=False) is not None
    no_cpu = json.loads(json.dumps(UNSCHEDULABLE).replace("nvidia.com/gpu", "cpu"))
    other = pod_state(_pod("abc", **no_cpu))
    assert pod_failure([other], "abc", later, gpus_free_now=True) is not None


def test_crash_looping_challenger_is_rolled_back_with_the_pod_named() -> None:
    world = gpu_world({"gpu-node-0": 4, "gpu-node-1": 4})
    new = world.release("2")
    state = pod_state(_pod(new, **_waiting("CrashLoopBackOff", 3)))
    assert state is not None
    world.pods = (state,)
    decision = world.tick()
    assert world.status.phase is Phase.ROLLED_BACK
    entry = world.status.history[-1]
    assert entry.reason == Reason.CRASH_LOOPING
    assert f"pod chat-{new}-abc: container server is CrashLoopBackOff" in entry.message
    assert decision.routes == Routes(100, 0, 0)
    assert decision.workloads is not None
    assert new in decision.workloads.delete


# --- clusters that add nodes for Pending pods -----------------------------------------------------

AUTOSCALED = {"mode": "surge", "autoscaledNodes": True}


def test_autoscaled_nodes_create_the_pods_the_autoscaler_needs() -> None:
    world = gpu_world({"gpu-node-0": 0, "gpu-node-1": 0}, capacity=AUTOSCALED)
    new = world.release("2")
    world.tick()
    assert world.deployments[new].replicas == 1, "the pod is created for the autoscaler"
    degraded = find(world.status.conditions, ConditionType.DEGRADED)
    assert degraded is None or degraded.reason != Reason.INSUFFICIENT_GPU


@pytest.mark.parametrize(("autoscaled", "rolled_back"), [(True, False), (False, True)])
def test_autoscaled_nodes_let_an_unschedulable_pod_wait_for_its_node(
    autoscaled: bool, rolled_back: bool
) -> None:
    capacity = {"mode": "surge", "autoscaledNodes": autoscaled}
    world = gpu_world({"gpu-node-0": 0, "gpu-node-1": 0}, capacity=capacity)
    world.ready_after = 3600  # the challenger's node never comes in this test
    new = world.release("2")
    refused = pod_state(_pod(new, **UNSCHEDULABLE))
    world.pods = (replace(refused, unschedulable_since=world.now),)
    for _ in range(60):
        world.tick()
    reasons = [entry.reason for entry in world.status.history]
    assert (Reason.UNSCHEDULABLE in reasons) is rolled_back
    assert (world.status.phase is Phase.ROLLED_BACK) is rolled_back
