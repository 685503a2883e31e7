"""From the spec's SLOs (and the templates they name) to rendered queries, purely.

Anything the schema could not know (a template that does not exist, an
argument nobody passed, a ``{{variable}}`` nobody defines) becomes a
:class:`Problem`, which holds the release where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from modelrelease.analysis.checks import CheckPolicy, Measurement, OutagePolicy, Thresholds
from modelrelease.api.constants import Reason, StageType, TemplateKind
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import SLO, AnalysisSpec, ModelReleaseStatus, SLOTemplateSpec
from modelrelease.core.observation import Problem, SLOResult
from modelrelease.metrics.templating import (
    QueryContext,
    TemplateError,
    UnknownVariableError,
    render,
)

TemplateKey = tuple[TemplateKind, str]
CHECKED_STAGES = (StageType.SHADOW, StageType.CANARY, StageType.CHAMPION_CHALLENGER)


@dataclass(frozen=True)
class ResolvedSLO:
    name: str
    query: str
    requests_query: str | None
    min_requests: int
    thresholds: Thresholds
    policy: CheckPolicy
    bad: str | None = None  # the guard's counters (rendered), when the SLO or template has them
    total: str | None = None


def template_keys(analysis: AnalysisSpec | None) -> list[TemplateKey]:
    """The templates the SLOs refer to, each once."""
    if analysis is None:
        return []
    keys = [
        (slo.template_ref.kind, slo.template_ref.name) for slo in analysis.slos if slo.template_ref
    ]
    return list(dict.fromkeys(keys))


def resolve_slos(
    analysis: AnalysisSpec | None,
    templates: Mapping[TemplateKey, Mapping[str, Any] | None],
    context: QueryContext,
) -> tuple[list[ResolvedSLO], list[Problem]]:
    """Render every SLO's queries; collect what stops them from rendering."""
    if analysis is None:
        return [], []
    resolved: list[ResolvedSLO] = []
    problems: list[Problem] = []
    for slo in analysis.slos:
        try:
            resolved.append(_resolve(slo, analysis, templates, context))
        except _SLOProblemError as problem:
            problems.append(problem.problem)
    return resolved, problems


class _SLOProblemError(Exception):
    def __init__(self, reason: Reason, message: str):
        super().__init__(message)
        self.problem = Problem(reason, message)


def _resolve(
    slo: SLO,
    analysis: AnalysisSpec,
    templates: Mapping[TemplateKey, Mapping[str, Any] | None],
    context: QueryContext,
) -> ResolvedSLO:
    query, requests_query, args = slo.query, slo.requests_query, dict(slo.args)
    bad, total = slo.bad, slo.total
    if slo.template_ref is not None:
        template = _template(slo, templates)
        query = template.spec_query
        requests_query = requests_query or template.requests_query
        if bad is None:
            bad, total = template.spec.bad, template.spec.total
        args = template.arguments(slo)
    assert query is not None  # the model guarantees query or templateRef
    return ResolvedSLO(
        name=slo.name,
        query=_render(slo.name, "query", query, context, args),
        requests_query=(
            _render(slo.name, "requestsQuery", requests_query, context, args)
            if requests_query
            else None
        ),
        min_requests=slo.min_requests,
        thresholds=Thresholds(minimum=slo.min, maximum=slo.max),
        policy=CheckPolicy(
            failure_limit=slo.failure_limit,
            max_inconclusive=(
                slo.max_inconclusive
                if slo.max_inconclusive is not None
                else analysis.max_inconclusive
            ),
            no_data=slo.no_data,
        ),
        bad=_render(slo.name, "bad", bad, context, args) if bad and total else None,
        total=_render(slo.name, "total", total, context, args) if bad and total else None,
    )


@dataclass(frozen=True)
class _Template:
    where: str
    spec: SLOTemplateSpec

    @property
    def spec_query(self) -> str:
        return self.spec.query

    @property
    def requests_query(self) -> str | None:
        return self.spec.requests_query

    def arguments(self, slo: SLO) -> dict[str, str]:
        declared = {arg.name: arg.default for arg in self.spec.args}
        unknown = sorted(set(slo.args) - set(declared))
        if unknown:
            raise _SLOProblemError(
                Reason.INVALID_SPEC,
                f"SLO {slo.name!r}: {self.where} has no argument {unknown[0]!r}; its arguments "
                f"are {', '.join(sorted(declared)) or 'none'}; remove it from args",
            )
        values = {name: default for name, default in declared.items() if default is not None}
        values.update(slo.args)
        missing = sorted(set(declared) - set(values))
        if missing:
            raise _SLOProblemError(
                Reason.INVALID_SPEC,
                f"SLO {slo.name!r}: {self.where} needs argument {missing[0]!r}, which has no "
                f"default; set it in args",
            )
        return values


def _template(slo: SLO, templates: Mapping[TemplateKey, Mapping[str, Any] | None]) -> _Template:
    ref = slo.template_ref
    assert ref is not None
    where = f"{ref.kind.value} {ref.name!r}"
    raw = templates.get((ref.kind, ref.name))
    if raw is None:
        scope = "in this namespace" if ref.kind is TemplateKind.SLO_TEMPLATE else "in the cluster"
        raise _SLOProblemError(
            Reason.TEMPLATE_NOT_FOUND,
            f"SLO {slo.name!r} refers to {where}, which does not exist {scope}; "
            "create it or fix templateRef",
        )
    try:
        spec = SLOTemplateSpec.model_validate(raw.get("spec") or {})
    except ValidationError as error:
        raise _SLOProblemError(
            Reason.INVALID_SPEC, f"SLO {slo.name!r}: {where} is invalid: {error}"
        ) from error
    return _Template(where, spec)


def _render(
    slo_name: str, field: str, text: str, context: QueryContext, args: Mapping[str, str]
) -> str:
    try:
        return render(text, context, args)
    except UnknownVariableError as error:
        raise _SLOProblemError(
            Reason.UNKNOWN_QUERY_VARIABLE, f"SLO {slo_name!r} {field}: {error}"
        ) from error
    except TemplateError as error:
        raise _SLOProblemError(Reason.INVALID_SPEC, f"SLO {slo_name!r} {field}: {error}") from error


def effective_measurement(slo: ResolvedSLO, result: SLOResult) -> Measurement:
    """Too few requests makes even a good-looking value inconclusive (no data).

    A failed read stays an error and an empty result stays no data.
    """
    if slo.min_requests <= 0 or result.measurement.value is None:
        return result.measurement
    if result.requests is None or result.requests < slo.min_requests:
        seen = "no request count" if result.requests is None else f"{result.requests:g} requests"
        return Measurement.no_data(
            f"{seen} in the interval, minRequests is {slo.min_requests}; the step waits "
            "for more traffic"
        )
    return result.measurement


def outage_policy(analysis: AnalysisSpec | None) -> OutagePolicy:
    """``analysis.onError`` as the checks use it."""
    if analysis is None:
        return OutagePolicy()
    return OutagePolicy(analysis.on_error.action, parse_duration(analysis.on_error.after))


def next_check_at(spec: AnalysisSpec | None, status: ModelReleaseStatus) -> datetime | None:
    """When the SLOs are next queried; None: no checks run now.

    Checks run on a challenger whose stage clock runs, one interval after the
    step started and then every interval, so each check sees the step's traffic.
    """
    if spec is None or not spec.slos or status.challenger is None:
        return None
    stage = status.current_stage
    if stage is None or stage.step_start_time is None or stage.type not in CHECKED_STAGES:
        return None
    times = [check.time for check in status.checks if check.time is not None]
    return max([stage.step_start_time, *times]) + timedelta(seconds=parse_duration(spec.interval))


def checks_due(spec: AnalysisSpec | None, status: ModelReleaseStatus, now: datetime) -> bool:
    """Whether this pass should query the SLOs (:func:`next_check_at` has come)."""
    moment = next_check_at(spec, status)
    return moment is not None and now >= moment
