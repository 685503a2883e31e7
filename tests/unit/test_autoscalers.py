"""An HPA aimed at a release's Deployment: one Warning per autoscaler, cleared when it goes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from modelrelease.api.constants import Reason
from modelrelease.api.models import MisdirectedAutoscaler
from modelrelease.core.autoscalers import misdirected, scale_target
from modelrelease.core.decision import Decision, EventType
from modelrelease.core.observation import Problem
from modelrelease.core.plan import plan

from tests.unit.test_plan import World, settled

Entry = MisdirectedAutoscaler


def _hpa(name: str, kind: str, api_version: str, target: str) -> dict[str, Any]:
    ref = {"apiVersion": api_version, "kind": kind, "name": target}
    return {"metadata": {"name": name}, "spec": {"scaleTargetRef": ref}}


@pytest.mark.parametrize(
    ("kind", "api_version", "expected"),
    [
        ("Deployment", "apps/v1", "chat-a"),
        ("Deployment", "apps/v1beta2", "chat-a"),
        ("ModelRelease", "modelrelease.dev/v1alpha1", None),
        ("StatefulSet", "apps/v1", None),
        ("Deployment", "example.com/v1", None),
    ],
)
def test_only_a_deployment_is_a_scale_target_here(
    kind: str, api_version: str, expected: str | None
) -> None:
    assert scale_target(_hpa("h", kind, api_version, "chat-a")) == expected


def test_misdirected_keeps_hpas_on_the_given_deployments_sorted_by_name() -> None:
    hpas = [
        _hpa("z", "Deployment", "apps/v1", "chat-a"),
        _hpa("a", "Deployment", "apps/v1", "chat-b"),
        _hpa("m", "Deployment", "apps/v1", "someone-else"),
        _hpa("r", "ModelRelease", "modelrelease.dev/v1alpha1", "chat"),
    ]
    assert misdirected(hpas, ["chat-a", "chat-b"]) == (
        Entry(name="a", deployment="chat-b"),
        Entry(name="z", deployment="chat-a"),
    )


def _pass(world: World, autoscalers: tuple[Entry, ...] | None, **problems: Any) -> Decision:
    observation = replace(world.observe(0.0, None, ()), autoscalers=autoscalers, **problems)
    decision = plan(world.spec, world.status, observation, world.now)
    world.apply(decision)
    return decision


def _warnings(decision: Decision) -> list[str]:
    return [
        event.message
        for event in decision.events
        if event.type is EventType.WARNING and event.reason is Reason.HPA_TARGETS_OWNED_DEPLOYMENT
    ]


def test_one_warning_per_autoscaler_until_it_goes_or_moves() -> None:
    world = settled()
    champion = world.deployments[world.status.champion.revision].name  # type: ignore[union-attr]
    on_champion = Entry(name="load", deployment=champion)

    first = _warnings(_pass(world, (on_champion,)))
    assert len(first) == 1
    assert f"HorizontalPodAutoscaler load targets Deployment {champion}" in first[0]
    assert "kind ModelRelease, name chat" in first[0]
    assert world.status.misdirected_autoscalers == [on_champion]

    # Nothing changed: no Event, and the status the pass decides is the one it read.
    before = world.status.model_copy(deep=True)
    assert _warnings(_pass(world, (on_champion,))) == []
    assert world.status == before

    # Unknown this pass (the operator may not list HPAs): neither told again nor cleared.
    assert _warnings(_pass(world, None)) == []
    assert world.status.misdirected_autoscalers == [on_champion]

    # A second one is told about alone; a problem that holds the release does not hide it.
    second = Entry(name="queue", deployment=champion)
    held = (Problem(Reason.ROUTE_NOT_FOUND, "route chat not found"),)
    told = _warnings(_pass(world, (on_champion, second), problems=held))
    assert len(told) == 1
    assert "HorizontalPodAutoscaler queue" in told[0]

    # Gone (or aimed at the ModelRelease): cleared, silently.
    assert _warnings(_pass(world, ())) == []
    assert world.status.misdirected_autoscalers == []

    # Back, and aimed at another Deployment later: told each time.
    assert len(_warnings(_pass(world, (on_champion,)))) == 1
    moved = Entry(name="load", deployment=f"{champion}-other")
    assert len(_warnings(_pass(world, (moved,)))) == 1
    assert world.status.misdirected_autoscalers == [moved]


def test_the_operator_keeps_deciding_the_replicas() -> None:
    world = settled()
    champion = world.status.champion.revision  # type: ignore[union-attr]
    name = world.deployments[champion].name
    decision = _pass(world, (Entry(name="load", deployment=name),))
    assert decision.workloads is not None
    assert decision.workloads.replicas[champion] == world.spec.replicas
