"""Releasing through an Istio VirtualService end to end: a shadow stage, then canary
steps. What the operator writes to the VirtualService is sampled throughout and
compared with the stage and step the release reports at the same moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from modelrelease.api.constants import ANNOTATION_ACTION, Action

from tests.e2e.conftest import (
    GROUP,
    PLURAL,
    RELEASE,
    VERSION,
    Cluster,
    Process,
    Simulator,
    follow,
    model_release,
    wait_champion_version,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

ISTIO_GROUP, ISTIO_VERSION, ISTIO_PLURAL = "networking.istio.io", "v1", "virtualservices"
STABLE, CANARY = f"{RELEASE}-stable", f"{RELEASE}-canary"
MIRROR_PERCENT = 50
STEPS = [(20, "4s"), (50, "4s")]
RATE = 40.0

ADMIN_ROUTE: dict[str, Any] = {
    "name": "admin",
    "match": [{"uri": {"prefix": "/admin"}}],
    "route": [{"destination": {"host": "admin", "port": {"number": 80}}}],
}


def virtual_service(rate: float = RATE) -> dict[str, Any]:
    """A VirtualService with an unrelated route first and the release's route second."""
    return {
        "apiVersion": f"{ISTIO_GROUP}/{ISTIO_VERSION}",
        "kind": "VirtualService",
        "metadata": {
            "name": RELEASE,
            "annotations": {"simulator.modelrelease.dev/rate": str(rate)},
        },
        "spec": {
            "hosts": [RELEASE],
            "http": [
                ADMIN_ROUTE,
                {
                    "name": "primary",
                    "timeout": "30s",
                    "route": [{"destination": {"host": STABLE, "port": {"number": 8000}}}],
                },
            ],
        },
    }


def istio_release(version: str, prometheus: str) -> dict[str, Any]:
    release = model_release(version, steps=STEPS, prometheus=prometheus)
    spec = release["spec"]
    spec["traffic"] = {"istio": {"virtualService": RELEASE, "route": "primary"}}
    canary = spec["stages"][0]
    spec["stages"] = [{"shadow": {"mirrorPercent": MIRROR_PERCENT, "duration": "4s"}}, canary]
    for container in spec["template"]["spec"]["containers"]:
        container.pop("resources", None)  # the shared cluster's GPUs are for capacity tests
    return release


@dataclass(frozen=True)
class Traffic:
    """What the VirtualService's primary route says: weights and mirror share."""

    stable: int
    canary: int
    mirror: int


def traffic_of(service: dict[str, Any]) -> Traffic:
    route = next(r for r in service["spec"]["http"] if r.get("name") == "primary")
    weights = {d["destination"]["host"]: d.get("weight") for d in route.get("route") or []}
    mirror = 0
    if (route.get("mirror") or {}).get("host") == CANARY:
        mirror = round(float((route.get("mirrorPercentage") or {"value": 100})["value"]))
    return Traffic(_weight(weights, STABLE), _weight(weights, CANARY), mirror)


def _weight(weights: dict[str, Any], host: str) -> int:
    """Istio gives a lone destination without a weight all the traffic."""
    if host not in weights:
        return 0
    if weights[host] is None:
        return 100 if len(weights) == 1 else 0
    return int(weights[host])


@dataclass(frozen=True)
class Sample:
    time: float
    traffic: Traffic
    stage_type: str | None  # None unless a stage's clock runs
    weight: int | None
    mirror: int | None


@dataclass
class VirtualServiceRecorder:
    """Records every version of the VirtualService and of the release's stage (watches)."""

    cluster: Cluster
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _traffic: Traffic | None = None
    _stage: dict[str, Any] | None = None

    def start(self) -> None:
        watched = (
            ((ISTIO_GROUP, ISTIO_VERSION, ISTIO_PLURAL, RELEASE), self._service_changed),
            ((GROUP, VERSION, PLURAL, RELEASE), self._release_changed),
        )
        for what, changed in watched:
            self._threads.append(follow(self.cluster, what, changed, self._stop))
        wait_for(lambda: self.samples, 15, "the recorder's first sample")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def read(self) -> dict[str, Any]:
        found: dict[str, Any] = self.cluster.custom.get_namespaced_custom_object(
            ISTIO_GROUP, ISTIO_VERSION, self.cluster.namespace, ISTIO_PLURAL, RELEASE
        )
        return found

    def _service_changed(self, service: dict[str, Any]) -> None:
        with self._lock:
            self._traffic = traffic_of(service)
            self._sample()

    def _release_changed(self, release: dict[str, Any]) -> None:
        with self._lock:
            self._stage = (release.get("status") or {}).get("currentStage") or {}
            self._sample()

    def _sample(self) -> None:
        if self._traffic is None or self._stage is None:
            return
        stage = self._stage
        running = stage.get("stepStartTime") is not None
        self.samples.append(
            Sample(
                time=time.time(),
                traffic=self._traffic,
                stage_type=stage.get("type") if running else None,
                weight=stage.get("weight") if running else None,
                mirror=stage.get("mirrorPercent") if running else None,
            )
        )

    def distinct(self) -> list[Traffic]:
        seen: list[Traffic] = []
        for sample in self.samples:
            if not seen or seen[-1] != sample.traffic:
                seen.append(sample.traffic)
        return seen


@pytest.fixture
def vs_recorder(cluster: Cluster) -> Iterator[VirtualServiceRecorder]:
    recording = VirtualServiceRecorder(cluster)
    yield recording
    recording.stop()


def test_virtual_service_weights_and_mirror_follow_every_stage_and_step(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    vs_recorder: VirtualServiceRecorder,
    prometheus_url: str,
) -> None:
    cluster.apply(virtual_service(), istio_release("1", prometheus_url))
    wait_champion_version(cluster, "1", 90)
    before = vs_recorder.read()
    vs_recorder.start()
    start = time.time()
    cluster.apply(istio_release("2", prometheus_url))
    status = wait_champion_version(cluster, "2", 150)
    wait_for(
        lambda: vs_recorder.distinct()[-1] == Traffic(100, 0, 0),
        10,
        "the VirtualService back to the stable host alone after promotion",
    )
    vs_recorder.stop()
    _print_timeline(vs_recorder, start)

    assert vs_recorder.distinct() == [
        Traffic(100, 0, 0),
        Traffic(100, 0, MIRROR_PERCENT),
        Traffic(80, 20, 0),
        Traffic(50, 50, 0),
        Traffic(0, 100, 0),
        Traffic(100, 0, 0),
    ]
    shadowing = [s for s in vs_recorder.samples if s.stage_type == "shadow"]
    assert shadowing, "no sample while the shadow stage's clock ran"
    # Status is written just before the route moves, so a sample may see the new stage
    # with the traffic of a moment before; never any live weight on the challenger.
    assert all(s.traffic in (Traffic(100, 0, 0), Traffic(100, 0, s.mirror or 0)) for s in shadowing)
    assert any(s.traffic == Traffic(100, 0, MIRROR_PERCENT) for s in shadowing)
    assert {s.mirror for s in shadowing} == {MIRROR_PERCENT}
    for weight, _ in STEPS:
        at_step = [s for s in vs_recorder.samples if (s.stage_type, s.weight) == ("canary", weight)]
        assert any(s.traffic == Traffic(100 - weight, weight, 0) for s in at_step), (
            f"no sample of the {weight}% step with the VirtualService at {weight}%"
        )

    after = vs_recorder.read()
    assert after["spec"]["http"][0] == before["spec"]["http"][0], "the admin route was changed"
    primary = after["spec"]["http"][1]
    assert primary["timeout"] == "30s"
    assert "mirror" not in primary
    assert "mirrorPercentage" not in primary
    assert [d["destination"]["host"] for d in primary["route"]] == [STABLE]

    challenger = status["history"][-1]["revision"]
    counts = simulator.revision(challenger) or {}
    mirrored = sum((counts.get("mirror") or {}).values())
    assert mirrored > 0, "the challenger saw no mirrored request during the shadow stage"
    assert status["history"][-1]["outcome"] == "Promoted"


def _print_timeline(recorder: VirtualServiceRecorder, start: float) -> None:
    last = None
    for sample in recorder.samples:
        key = (sample.traffic, sample.stage_type, sample.weight, sample.mirror)
        if key != last:
            print(f"{sample.time - start:6.1f}s {key}")
            last = key


def test_mirror_is_removed_on_abort_and_on_deletion(
    cluster: Cluster,
    operator: Process,
    simulator: Simulator,
    vs_recorder: VirtualServiceRecorder,
    prometheus_url: str,
) -> None:
    long_shadow = istio_release("2", prometheus_url)
    long_shadow["spec"]["stages"][0]["shadow"]["duration"] = "10m"
    cluster.apply(virtual_service(), istio_release("1", prometheus_url))
    wait_champion_version(cluster, "1", 90)
    cluster.apply(long_shadow)
    mirroring = Traffic(100, 0, MIRROR_PERCENT)
    wait_for(lambda: traffic_of(vs_recorder.read()) == mirroring, 60, "the shadow's mirror")

    request_action(cluster, Action.ABORT)
    wait_for(lambda: traffic_of(vs_recorder.read()) == Traffic(100, 0, 0), 30, "no mirror")
    status = wait_for(
        lambda: (s := cluster.status()).get("phase") == "RolledBack" and s,
        30,
        "the aborted release to say so",
    )
    assert status["history"][-1]["outcome"] == "Aborted"

    request_action(cluster, Action.RETRY)
    wait_for(lambda: traffic_of(vs_recorder.read()) == mirroring, 60, "the retried mirror")
    cluster.kubectl("delete", "modelrelease", RELEASE, "-n", cluster.namespace, "--wait=true")
    primary = vs_recorder.read()["spec"]["http"][1]
    assert traffic_of(vs_recorder.read()) == Traffic(100, 0, 0)
    assert "mirror" not in primary
    assert [d["destination"]["host"] for d in primary["route"]] == [STABLE]


def request_action(cluster: Cluster, action: Action) -> None:
    """What `kubectl modelrelease <action>` writes: the action annotation."""
    cluster.kubectl(
        "annotate",
        "modelrelease",
        RELEASE,
        "-n",
        cluster.namespace,
        f"{ANNOTATION_ACTION}={action.value}",
        "--overwrite",
    )
