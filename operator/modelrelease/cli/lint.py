"""``kubectl modelrelease lint FILE...``: the API server's rules and the operator's own
checks that need no cluster, offline, so CI can run them before ``git push``.

- Schema and CEL: the pydantic models are the CRDs' source, and every CEL rule of the
  generated CRDs is mirrored by a model validator with the same message (a unit test
  holds every rule to a lint counterpart), so validating with the models says what
  ``kubectl apply`` would say.
- What the operator checks before it acts: every query renders (no unknown
  ``{{variable}}``, no malformed placeholder), templates referenced by SLOs exist among
  the files given and get exactly the arguments they declare. A template that is not
  in the files may exist in the cluster: that is a warning, not an error (pass the
  chart's ``files/slotemplates/*.yaml`` to check the built-in ones too).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from modelrelease.api.constants import (
    GROUP,
    KIND_CLUSTER_SLO_TEMPLATE,
    KIND_MODEL_RELEASE,
    KIND_SLO_TEMPLATE,
    Reason,
    TemplateKind,
)
from modelrelease.api.durations import parse_duration
from modelrelease.api.models import ClusterSLOTemplate, ModelRelease, SLOTemplate
from modelrelease.core.comparison import comparison_queries
from modelrelease.core.slos import TemplateKey, resolve_slos
from modelrelease.metrics.templating import (
    QueryContext,
    TemplateError,
    prometheus_duration,
    render,
)

HELP = (
    "check ModelRelease and SLOTemplate manifests offline with the API server's rules "
    "and the operator's query checks; exit 1 on errors"
)
EXIT_INVALID = 1
KINDS: dict[str, type[BaseModel]] = {
    KIND_MODEL_RELEASE: ModelRelease,
    KIND_SLO_TEMPLATE: SLOTemplate,
    KIND_CLUSTER_SLO_TEMPLATE: ClusterSLOTemplate,
}
_ELSEWHERE = "(not checked offline: it may exist in the cluster; pass its file to lint it too)"
# Stand-ins for the values the operator fills in: only whether queries render is checked.
_SAMPLE_REVISION = "0123456789"


@dataclass(frozen=True)
class Finding:
    where: str  # file, document number, kind/name
    message: str
    error: bool = True

    def __str__(self) -> str:
        return f"{self.where}: {'error' if self.error else 'warning'}: {self.message}"


@dataclass(frozen=True)
class Document:
    source: str
    index: int  # 1-based position in its file
    body: Any

    @property
    def where(self) -> str:
        if not isinstance(self.body, dict):
            return f"{self.source} (document {self.index})"
        meta = self.body.get("metadata") or {}
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        return f"{self.source} (document {self.index}, {self.body.get('kind', '?')} {name})"


def load(source: str, text: str) -> tuple[list[Document], list[Finding]]:
    """The YAML documents of one file, or the syntax error that stops it."""
    try:
        bodies = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        return [], [Finding(f"{source}{line}", f"not valid YAML: {problem}")]
    return [Document(source, i, body) for i, body in enumerate(bodies, 1) if body is not None], []


def lint(documents: Sequence[Document]) -> list[Finding]:
    """Every finding for these documents, read together (templates resolve across files)."""
    findings: list[Finding] = []
    parsed: list[tuple[Document, BaseModel]] = []
    for document in documents:
        model, problems = _validate(document)
        findings += problems
        if model is not None:
            parsed.append((document, model))
    templates = _templates(parsed)
    for document, model in parsed:
        if isinstance(model, ModelRelease):
            findings += _operator_checks(document, model, templates)
        elif isinstance(model, SLOTemplate | ClusterSLOTemplate):
            findings += _template_checks(document, model)
    return findings


def _validate(document: Document) -> tuple[BaseModel | None, list[Finding]]:
    body = document.body
    if not isinstance(body, dict):
        return None, [Finding(document.where, "not a Kubernetes object (expected a mapping)")]
    api_version = str(body.get("apiVersion") or "")
    if api_version.split("/")[0] != GROUP:
        return None, []  # another API's object (an HTTPRoute, a Service): not ours to judge
    kind = str(body.get("kind") or "")
    model = KINDS.get(kind)
    if model is None:
        known = ", ".join(KINDS)
        return None, [Finding(document.where, f"unknown kind {kind!r} in {GROUP} (known: {known})")]
    try:
        return model.model_validate(body), []
    except ValidationError as error:
        return None, [
            Finding(document.where, f"{_path(item['loc'])}: {_message(item)}")
            for item in error.errors()
        ]


def _path(location: Iterable[Any]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif str(part).startswith(("function-", "json-or-python", "tagged-union")):
            continue  # pydantic's own steps, not fields
        else:
            text += f".{part}" if text else str(part)
    return text or "(object)"


def _message(item: Mapping[str, Any]) -> str:
    message = str(item.get("msg", ""))
    return message.removeprefix("Value error, ")


# --- what the operator checks before it acts --------------------------------------------


def _templates(parsed: Sequence[tuple[Document, BaseModel]]) -> dict[TemplateKey, Any]:
    found: dict[TemplateKey, Any] = {}
    for _, model in parsed:
        if isinstance(model, SLOTemplate):
            found[(TemplateKind.SLO_TEMPLATE, model.metadata.get("name", ""))] = _raw(model)
        elif isinstance(model, ClusterSLOTemplate):
            found[(TemplateKind.CLUSTER_SLO_TEMPLATE, model.metadata.get("name", ""))] = _raw(model)
    return found


def _raw(model: BaseModel) -> dict[str, Any]:
    raw: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return raw


def _context(release: ModelRelease) -> QueryContext:
    spec = release.spec
    interval = parse_duration(spec.analysis.interval) if spec.analysis else 30.0
    return QueryContext(
        namespace=str(release.metadata.get("namespace") or "default"),
        release=str(release.metadata.get("name") or "release"),
        revision=_SAMPLE_REVISION,
        champion=_SAMPLE_REVISION,
        challenger=_SAMPLE_REVISION,
        interval=prometheus_duration(interval),
    )


def _operator_checks(
    document: Document, release: ModelRelease, templates: Mapping[TemplateKey, Any]
) -> list[Finding]:
    context = _context(release)
    _, problems = resolve_slos(release.spec.analysis, templates, context)
    findings = [
        Finding(document.where, f"{problem.message} {_ELSEWHERE}", error=False)
        if problem.reason is Reason.TEMPLATE_NOT_FOUND
        else Finding(document.where, problem.message)
        for problem in problems
    ]
    for stage in release.spec.stages:
        comparison = stage.champion_challenger or (
            stage.shadow.comparison if stage.shadow else None
        )
        if comparison is None:
            continue
        try:
            comparison_queries(comparison, context)
        except TemplateError as error:
            findings.append(Finding(document.where, f"comparison metric: {error}"))
    return findings


def _template_checks(
    document: Document, template: SLOTemplate | ClusterSLOTemplate
) -> list[Finding]:
    """A template's queries render with its own arguments (defaults, or a stand-in)."""
    args = {arg.name: arg.default or "x" for arg in template.spec.args}
    context = QueryContext(
        "namespace", "release", _SAMPLE_REVISION, _SAMPLE_REVISION, _SAMPLE_REVISION, "30s"
    )
    findings = []
    for field, query in (
        ("query", template.spec.query),
        ("requestsQuery", template.spec.requests_query),
    ):
        if query is None:
            continue
        try:
            render(query, context, args)
        except TemplateError as error:
            findings.append(Finding(document.where, f"spec.{field}: {error}"))
    return findings


# --- the command ---------------------------------------------------------------------------


def read_sources(paths: Sequence[str]) -> tuple[list[Document], list[Finding]]:
    documents: list[Document] = []
    findings: list[Finding] = []
    for path in paths:
        if path == "-":
            text, source = sys.stdin.read(), "<stdin>"
        else:
            try:
                text, source = Path(path).read_text(), path
            except OSError as error:
                findings.append(Finding(path, f"cannot read: {error.strerror}"))
                continue
        found, problems = load(source, text)
        documents += found
        findings += problems
    return documents, findings


def main(paths: Sequence[str]) -> int:
    documents, findings = read_sources(paths)
    findings += lint(documents)
    for finding in findings:
        print(finding)
    errors = sum(finding.error for finding in findings)
    ours = sum(
        1
        for d in documents
        if isinstance(d.body, dict) and str(d.body.get("apiVersion", "")).startswith(GROUP)
    )
    print(
        f"{ours} {GROUP} objects in {len(paths)} files: {errors} errors, "
        f"{len(findings) - errors} warnings"
    )
    return EXIT_INVALID if errors else 0
