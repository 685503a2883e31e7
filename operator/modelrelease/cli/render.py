"""What the plugin prints, as pure functions of what it read (unit-tested without a cluster).

The status view is computed client-side from status timestamps and the spec, so a
watch can count a step's time down every second without asking the API server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from modelrelease.api.constants import Phase, StageType
from modelrelease.api.durations import format_duration, parse_duration
from modelrelease.api.models import (
    BucketShare,
    CheckStatus,
    ComparisonStatus,
    CurrentStage,
    ModelReleaseSpec,
    ModelReleaseStatus,
    RevisionStatus,
    Stage,
)
from modelrelease.core.routes import Routes

Json = dict[str, Any]

TERMINAL_EXIT_CODES = {Phase.SUCCEEDED: 0, Phase.ROLLED_BACK: 1, Phase.FAILED: 3}
"""``status --watch`` exit codes: 0 promoted, 1 rolled back, 3 stopped for a person
(``rollback.automatic: false``). 2 is kept for errors of the command itself."""

EVENTS_SHOWN = 5


@dataclass(frozen=True)
class GPUView:
    """The release's GPU use and the room left on the nodes its template can land on."""

    per_pod: int
    release_pods: int  # pods of champion and challenger the operator asked for
    free: int | None  # free GPUs on matching nodes; None: nodes not readable
    note: str = ""  # why the free count is missing


@dataclass(frozen=True)
class StatusInputs:
    """Everything the status view shows, read in one go."""

    release: Json
    now: datetime
    routes: Routes | None = None  # the route's actual shares; None: not read
    route_note: str = ""  # why the route was not read
    events: Sequence[Json] = ()
    gpus: GPUView | None = None


@dataclass(frozen=True)
class Parsed:
    spec: ModelReleaseSpec | None
    status: ModelReleaseStatus
    namespace: str
    name: str
    generation: int


def parse(release: Json) -> Parsed:
    """Spec (None when this plugin cannot parse it) and status of a release object."""
    meta = release.get("metadata") or {}
    try:
        spec: ModelReleaseSpec | None = ModelReleaseSpec.model_validate(release.get("spec") or {})
    except ValidationError:
        spec = None
    status = ModelReleaseStatus.model_validate(release.get("status") or {})
    return Parsed(
        spec,
        status,
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        int(meta.get("generation") or 0),
    )


# --- terminal phases ------------------------------------------------------------------


def settled_phase(release: Json) -> Phase | None:
    """The terminal phase the release is in, once the operator has seen its latest spec.

    A phase written for an older generation says nothing about the spec just applied,
    so a watch started right after ``kubectl apply`` does not stop on it.
    """
    parsed = parse(release)
    observed = parsed.status.observed_generation
    if observed is None or observed < parsed.generation:
        return None
    phase = parsed.status.phase
    return phase if phase in TERMINAL_EXIT_CODES else None


# --- time left --------------------------------------------------------------------------


def stage_clock(stage: Stage, current: CurrentStage, now: datetime) -> str:
    """How long the current step or stage has run, and what is left, from its timestamps."""
    duration, started = _limit(stage, current)
    if started is None:
        return _not_started(stage.type)
    # Whole seconds: the view is redrawn every second.
    elapsed = float(max(round((now - started).total_seconds() - current.held_seconds), 0))
    if duration is None:
        return f"waiting {format_duration(elapsed)}"
    left = duration - elapsed
    bounded = stage.champion_challenger is not None or stage.webhook is not None
    limit = "at most " if bounded else ""
    text = f"{format_duration(elapsed)} of {limit}{format_duration(duration)}"
    if left <= 0:
        return f"{text}, due now (waiting for the checks)"
    return f"{text}, {format_duration(left)} left"


def _limit(stage: Stage, current: CurrentStage) -> tuple[float | None, datetime | None]:
    if stage.canary is not None:
        steps = stage.canary.steps
        step = steps[min(current.step or 0, len(steps) - 1)]
        return parse_duration(step.duration), current.step_start_time
    if stage.shadow is not None:
        return parse_duration(stage.shadow.duration), current.step_start_time
    if stage.champion_challenger is not None:
        return parse_duration(stage.champion_challenger.max_duration), current.step_start_time
    if stage.webhook is not None:
        return parse_duration(stage.webhook.max_duration), current.stage_start_time
    return None, current.stage_start_time


def _not_started(kind: StageType) -> str:
    if kind in (StageType.APPROVAL, StageType.WEBHOOK):
        return "not started"
    return "clock not started (waiting for the challenger's pods to be Ready)"


# --- the status view -----------------------------------------------------------------------


def status_view(inputs: StatusInputs) -> str:
    """The live status view, one screen of text."""
    parsed = parse(inputs.release)
    status = parsed.status
    phase = status.phase.value if status.phase else Phase.PENDING.value
    stale = ""
    if status.observed_generation is not None and status.observed_generation < parsed.generation:
        stale = f"  (spec generation {parsed.generation} not yet seen by the operator)"
    lines = [f"{parsed.namespace}/{parsed.name}  {phase}{stale}"]
    if status.message:
        lines.append(f"  {status.message}")
    lines.append("")
    lines += _revisions(status)
    lines += _stage(parsed, inputs.now)
    lines += _traffic(status.current_stage, status.challenger is not None, inputs)
    lines += _checks(parsed)
    lines += _comparisons(status.comparison)
    lines += _gpus(inputs.gpus)
    lines += _conditions(status)
    lines += _events(inputs.events, inputs.now)
    return "\n".join(lines)


def _revisions(status: ModelReleaseStatus) -> list[str]:
    lines = []
    for role, revision in (("champion", status.champion), ("challenger", status.challenger)):
        if revision is not None:
            lines.append(f"{role:<12}{_revision(revision)}")
    return lines or ["champion    none yet"]


def _revision(revision: RevisionStatus) -> str:
    model = " ".join(filter(None, (revision.model_name, revision.model_version))) or "?"
    return f"{revision.revision}  {model}  ready {revision.ready_replicas}/{revision.replicas}"


def _stage(parsed: Parsed, now: datetime) -> list[str]:
    current = parsed.status.current_stage
    if current is None:
        if parsed.status.challenger is not None:
            return ["stage       every stage passed: promoting"]
        return []
    total = len(parsed.spec.stages) if parsed.spec else "?"
    text = f"stage       {current.index + 1}/{total} {current.name} ({current.type.value})"
    stage = _spec_stage(parsed.spec, current)
    if stage is not None and stage.canary is not None and current.step is not None:
        step = stage.canary.steps[min(current.step, len(stage.canary.steps) - 1)]
        text += f"  step {current.step + 1}/{len(stage.canary.steps)} to {step.weight}%"
    if current.type is StageType.APPROVAL:
        text += "  waiting for approval" if not current.approved else "  approved"
    lines = [text]
    if stage is not None:
        lines.append(f"            {stage_clock(stage, current, now)}")
    if current.last_gate_answer:
        lines.append(
            f"            webhook: {current.gate_attempts} calls, last answer "
            f"{current.last_gate_answer}"
        )
    return lines


def _spec_stage(spec: ModelReleaseSpec | None, current: CurrentStage) -> Stage | None:
    if spec is None or current.index >= len(spec.stages):
        return None
    stage = spec.stages[current.index]
    return stage if stage.type is current.type else None


def _traffic(current: CurrentStage | None, releasing: bool, inputs: StatusInputs) -> list[str]:
    wanted = (current.weight, current.mirror_percent) if current else (0, 0)
    text = f"traffic     status: challenger {wanted[0]}%, mirror {wanted[1]}%"
    routes = inputs.routes
    if routes is not None:
        text += (
            f"; route: stable {routes.stable_weight}% canary {routes.canary_weight}% "
            f"mirror {routes.mirror_percent}%"
        )
        if releasing and current is not None and routes.canary_weight != current.weight:
            text += " (the route follows status within a pass)"
    elif inputs.route_note:
        text += f"; route: {inputs.route_note}"
    return [text]


def _checks(parsed: Parsed) -> list[str]:
    checks = parsed.status.checks
    if not checks:
        return []
    limits = {}
    if parsed.spec is not None and parsed.spec.analysis is not None:
        limits = {slo.name: slo.failure_limit for slo in parsed.spec.analysis.slos}
    rows: list[tuple[str, ...]] = [
        ("SLO", "VALUE", "THRESHOLD", "VERDICT", "FAILURES", "REQUESTS", "GUARD E-VALUE")
    ]
    rows += [_check_row(check, limits.get(check.name)) for check in checks]
    return ["checks", *_table(rows, indent="  ")]


def _check_row(check: CheckStatus, limit: int | None) -> tuple[str, ...]:
    bounds = []
    if check.min is not None:
        bounds.append(f">= {_number(check.min)}")
    if check.max is not None:
        bounds.append(f"<= {_number(check.max)}")
    failures = str(check.consecutive_failures)
    if limit is not None:
        failures += f" (limit {limit})"
    requests = _number(check.requests) if check.requests is not None else "-"
    guard = _number(check.guard.e_value) if check.guard is not None else "-"
    return (
        check.name,
        _number(check.value) if check.value is not None else "no data",
        " and ".join(bounds) or "-",
        check.verdict.value,
        failures,
        requests,
        guard,
    )


def _comparisons(comparisons: Sequence[ComparisonStatus]) -> list[str]:
    if not comparisons:
        return []
    rows = [("METRIC", "ESTIMATE", "BOUNDS", "E-VALUE", "VERDICT")]
    for item in comparisons:
        bounds = (
            f"[{_number(item.lower)}, {_number(item.upper)}]"
            if item.lower is not None and item.upper is not None
            else "-"
        )
        rows.append(
            (
                item.metric,
                _number(item.estimate) if item.estimate is not None else "-",
                bounds,
                _number(item.e_value) if item.e_value is not None else "-",
                item.verdict.value,
            )
        )
    moved = [
        f"  {item.metric} moved (champion -> challenger): {_moved(item.buckets)}"
        for item in comparisons
        if item.buckets
    ]
    return [
        "comparison (challenger / champion rate ratio; distribution: total variation)",
        *_table(rows, indent="  "),
        *moved,
    ]


def _moved(buckets: Sequence[BucketShare], top: int = 3) -> str:
    """A distribution's buckets whose shares differ most, largest first."""
    ranked = sorted(buckets, key=lambda bucket: -abs(bucket.challenger - bucket.champion))
    return ", ".join(
        f"{bucket.bucket} {bucket.champion:.1%} -> {bucket.challenger:.1%}"
        for bucket in ranked[:top]
    )


def _gpus(view: GPUView | None) -> list[str]:
    if view is None or view.per_pod == 0:
        return []
    used = view.per_pod * view.release_pods
    text = f"GPUs        {view.per_pod} per pod x {view.release_pods} pods = {used} in use"
    text += f"; {view.free} free on matching nodes" if view.free is not None else ""
    text += f"; {view.note}" if view.note else ""
    return [text]


def _conditions(status: ModelReleaseStatus) -> list[str]:
    lines = []
    for condition in status.conditions:
        if condition.type == "Degraded" and condition.status.value != "True":
            continue
        if condition.message and condition.message == status.message:
            continue  # already the view's second line
        text = f"{condition.type}={condition.status.value} {condition.reason}"
        lines.append(f"  {text}" + (f": {condition.message}" if condition.message else ""))
    return ["conditions", *lines] if lines else []


def _events(events: Sequence[Json], now: datetime) -> list[str]:
    if not events:
        return []
    rows = []
    for event in list(events)[-EVENTS_SHOWN:]:
        when = event_time(event)
        age = age_text(now, when) if when else "?"
        rows.append(
            (age, str(event.get("type") or ""), str(event.get("reason") or ""), _one_line(event))
        )
    return ["events", *_table(rows, indent="  ")]


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """When an Event last happened (its series, last, event or creation time)."""
    series = event.get("series") or {}
    for value in (
        series.get("lastObservedTime"),
        event.get("lastTimestamp"),
        event.get("eventTime"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    ):
        if value:
            return parse_time(str(value))
    return None


def _one_line(event: Mapping[str, Any]) -> str:
    message = " ".join(str(event.get("message") or "").split())
    count = int(event.get("count") or 1)
    return f"{message} (x{count})" if count > 1 else message


# --- list and history -------------------------------------------------------------------------


def list_table(releases: Sequence[Json], now: datetime, all_namespaces: bool) -> str:
    """``kubectl modelrelease list``: one row per release."""
    header: tuple[str, ...] = ("NAME", "PHASE", "STAGE", "WEIGHT", "CHAMPION", "CHALLENGER", "AGE")
    if all_namespaces:
        header = ("NAMESPACE", *header)
    rows: list[tuple[str, ...]] = [header]
    for release in releases:
        parsed = parse(release)
        status = parsed.status
        stage = status.current_stage
        created = (release.get("metadata") or {}).get("creationTimestamp")
        row = (
            parsed.name,
            status.phase.value if status.phase else Phase.PENDING.value,
            _stage_cell(stage, status.challenger is not None),
            f"{stage.weight}%" if stage else ("100%" if status.challenger else "-"),
            _version(status.champion),
            _version(status.challenger),
            age_text(now, parse_time(created)) if created else "?",
        )
        rows.append((parsed.namespace, *row) if all_namespaces else row)
    return "\n".join(_table(rows))


def _stage_cell(stage: CurrentStage | None, releasing: bool) -> str:
    if stage is None:
        return "promoting" if releasing else "-"
    step = f" step {stage.step + 1}" if stage.step is not None else ""
    return f"{stage.name}{step}"


def _version(revision: RevisionStatus | None) -> str:
    if revision is None:
        return "-"
    return f"{revision.model_version or '?'} ({revision.revision})"


def history_table(release: Json, kept: Sequence[str], now: datetime) -> str:
    """``kubectl modelrelease history``: every recorded end of a revision, oldest first.

    ``kept`` are the revisions whose Deployment still exists (scaled to zero for a
    quick return): those ``undo`` can go back to.
    """
    parsed = parse(release)
    champion = parsed.status.champion.revision if parsed.status.champion else None
    rows: list[tuple[str, ...]] = [
        ("REVISION", "MODEL", "VERSION", "OUTCOME", "REASON", "AGE", "UNDO", "METADATA", "MESSAGE")
    ]
    for entry in parsed.status.history:
        if entry.revision == champion:
            undo = "serving"
        else:
            undo = "kept" if entry.revision in kept else "-"
        metadata = ",".join(f"{key}={value}" for key, value in sorted(entry.model_metadata.items()))
        rows.append(
            (
                entry.revision,
                entry.model_name,
                entry.model_version,
                entry.outcome.value,
                entry.reason,
                age_text(now, entry.time),
                undo,
                metadata or "-",
                " ".join(entry.message.split()),
            )
        )
    if len(rows) == 1:
        return f"{parsed.namespace}/{parsed.name}: no history yet"
    return "\n".join(_table(rows))


# --- small formatting helpers -------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp as Kubernetes writes it."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age_text(now: datetime, then: datetime) -> str:
    """kubectl-style age: ``45s``, ``12m``, ``3h20m``, ``5d``."""
    seconds = max(int((now - then).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{hours // 24}d"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
