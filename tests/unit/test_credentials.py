"""Credentials stay put: opted-in Secrets only, no token in reprs, status, Events or URLs."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import certifi
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.client import ApiClient
from modelrelease.api.constants import Reason
from modelrelease.api.models import ModelReleaseSpec
from modelrelease.core.redaction import HIDDEN, NO_HOST, redact_url, safe_phrase
from modelrelease.gates.webhook import REASON_FIELD, call_webhook
from modelrelease.kube.client import StoredSecret
from modelrelease.kube.observe import observe_cluster
from modelrelease.metrics.factory import ProviderCache
from modelrelease.metrics.provider import ProviderConfig

from tests.unit.test_comparison import CountingWorld, ended, released, settled_counting
from tests.unit.test_plan import OWNER, make_spec

TOKEN = "s3cr3t-7f9a2c41d8e0b6"
# A real CA certificate (the first of the bundle httpx trusts), so it parses as one.
CA = Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0] + (
    "-----END CERTIFICATE-----\n"
)
ADDRESS = "https://prometheus.monitoring:9091"
LABELLED = {"modelrelease.dev/credentials": "true"}


# --- reprs ---------------------------------------------------------------------------------------


def test_the_config_repr_shows_no_credentials() -> None:
    config = ProviderConfig(
        address="https://reader:pa55w0rd@prometheus:9091/?key=k3y",
        authorization=f"Bearer {TOKEN}",
        ca_bundle=CA,
        secrets=("llm/prometheus-reader",),
    )
    for shown in (repr(config), str(config), f"{config}", repr((config,))):
        for secret in (TOKEN, "MIIB", "pa55w0rd", "k3y"):
            assert secret not in shown
        assert "authorization=<set>" in shown
        assert "ca_bundle=<set>" in shown
        assert "https://prometheus:9091/" in shown


# --- the provider cache --------------------------------------------------------------------------


class FakeProvider:
    def __init__(self, config: ProviderConfig):
        self.config = config
        self.closed = 0

    @property
    def type(self) -> str:
        return "fake"

    async def run_query(self, query: str) -> float:
        return 1.0

    async def run_vector_query(self, query: str) -> list[tuple[dict[str, str], float]]:
        return []

    async def is_online(self) -> bool:
        return True

    async def close(self) -> None:
        self.closed += 1


class FakeFactory:
    def __init__(self) -> None:
        self.built: list[FakeProvider] = []
        self.refuse = False  # as PrometheusProvider does for a CA bundle that does not parse

    def __call__(self, provider_type: str, config: ProviderConfig) -> FakeProvider:
        if self.refuse:
            raise ValueError("bad CA bundle")
        self.built.append(FakeProvider(config))
        return self.built[-1]


def _config(token: str, secret: str = "llm/reader", address: str = ADDRESS) -> ProviderConfig:
    return ProviderConfig(address=address, authorization=f"Bearer {token}", secrets=(secret,))


async def _use(cache: ProviderCache, config: ProviderConfig) -> Any:
    async with cache.use("prometheus", config) as provider:
        return provider


def test_one_provider_per_configuration() -> None:
    cache = ProviderCache(FakeFactory())

    async def go() -> None:
        first = await _use(cache, ProviderConfig(address=ADDRESS))
        assert await _use(cache, ProviderConfig(address=ADDRESS)) is first
        assert await _use(cache, ProviderConfig(address=ADDRESS, timeout_seconds=1)) is not first
        await cache.close()
        assert first.closed == 1

    asyncio.run(go())


def test_a_rotated_token_replaces_and_closes_the_old_client() -> None:
    factory = FakeFactory()
    cache = ProviderCache(factory)

    async def go() -> None:
        for generation in range(5):
            await _use(cache, _config(f"{TOKEN}-{generation}"))
        assert len(cache) == 1
        assert [provider.closed for provider in factory.built] == [1, 1, 1, 1, 0]
        assert TOKEN not in repr(vars(cache))  # keys and slots hold a digest, not the token

    asyncio.run(go())


def test_a_rotation_to_a_bad_configuration_keeps_the_old_client_tracked() -> None:
    factory = FakeFactory()
    cache = ProviderCache(factory)

    async def go() -> None:
        await _use(cache, _config("old"))
        factory.refuse = True
        with pytest.raises(ValueError, match="bad CA bundle"):
            await _use(cache, _config("new"))
        await cache.close()
        assert factory.built[0].closed == 1

    asyncio.run(go())


def test_a_client_in_use_is_closed_when_its_query_ends() -> None:
    factory = FakeFactory()
    cache = ProviderCache(factory)

    async def go() -> None:
        async with cache.use("prometheus", _config("old")) as old:
            await _use(cache, _config("new"))
            assert old.closed == 0  # a query still runs on it
        assert old.closed == 1
        await cache.close()
        assert [provider.closed for provider in factory.built] == [1, 1]

    asyncio.run(go())


def test_two_tenants_of_one_address_keep_their_own_clients() -> None:
    factory = FakeFactory()
    cache = ProviderCache(factory)

    async def go() -> None:
        for _ in range(3):
            await _use(cache, _config("team-a", secret="team-a/reader"))
            await _use(cache, _config("team-b", secret="team-b/reader"))
        assert len(factory.built) == 2
        assert not any(provider.closed for provider in factory.built)

    asyncio.run(go())


def test_the_cache_is_bounded_and_closes_what_it_evicts() -> None:
    factory = FakeFactory()
    cache = ProviderCache(factory, max_size=2)

    async def go() -> None:
        for index in range(5):
            await _use(cache, ProviderConfig(address=f"http://prometheus-{index}:9090"))
        assert len(cache) == 2
        assert [provider.closed for provider in factory.built] == [1, 1, 1, 0, 0]

    asyncio.run(go())


# --- Secrets are read only when opted in --------------------------------------------------------


class FakeKube:
    """Just what observe_cluster calls for a release with Prometheus and no SLO templates."""

    def __init__(self, secrets: dict[str, StoredSecret]):
        self.secrets = secrets
        self.read: list[tuple[str, str]] = []

    def list_deployments(self, namespace: str, release: str) -> list[dict[str, Any]]:
        return []

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def misdirected_autoscalers(self, namespace: str, release: str) -> None:
        return None

    def get_secret(self, namespace: str, name: str) -> StoredSecret | None:
        self.read.append((namespace, name))
        return self.secrets.get(name)


class WatchedSecret(StoredSecret):
    """Fails the test if its data is decoded."""

    def decoded(self) -> dict[str, str]:
        raise AssertionError("the data of a Secret without the opt-in label was decoded")


def _secret(labels: dict[str, str], cls: type[StoredSecret] = StoredSecret, **data: str) -> Any:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return cls(labels=labels, encoded=encoded)


def _prometheus_spec(**prometheus: Any) -> ModelReleaseSpec:
    raw = make_spec().model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["analysis"]["prometheus"] = {"address": ADDRESS, **prometheus}
    return ModelReleaseSpec.model_validate(raw)


def _observe(kube: FakeKube, spec: ModelReleaseSpec) -> Any:
    return observe_cluster(kube, None, OWNER, spec, need_provider=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("labels", [{}, {"modelrelease.dev/credentials": "yes"}, {"other": "true"}])
def test_a_secret_without_the_label_is_a_problem_and_never_read(labels: dict[str, str]) -> None:
    kube = FakeKube({"reader": _secret(labels, WatchedSecret, token=TOKEN)})
    view = _observe(kube, _prometheus_spec(authSecretRef={"name": "reader"}))
    assert view.provider_config is None
    (problem,) = view.problems
    assert problem.reason is Reason.SECRET_NOT_OPTED_IN
    assert "analysis.prometheus.authSecretRef names Secret llm/reader" in problem.message
    assert "kubectl label secret reader -n llm modelrelease.dev/credentials=true" in (
        problem.message
    )
    assert TOKEN not in problem.message


def test_an_unlabelled_ca_secret_is_a_problem_too() -> None:
    kube = FakeKube(
        {
            "reader": _secret(LABELLED, token=TOKEN),
            "ca": _secret({}, WatchedSecret, **{"ca.crt": CA}),
        }
    )
    spec = _prometheus_spec(authSecretRef={"name": "reader"}, caSecretRef={"name": "ca"})
    view = _observe(kube, spec)
    assert view.provider_config is None
    assert [problem.reason for problem in view.problems] == [Reason.SECRET_NOT_OPTED_IN]
    assert "caSecretRef names Secret llm/ca" in view.problems[0].message


def test_opted_in_secrets_in_the_release_namespace_are_used() -> None:
    kube = FakeKube(
        {"reader": _secret(LABELLED, token=TOKEN), "ca": _secret(LABELLED, **{"ca.crt": CA})}
    )
    spec = _prometheus_spec(authSecretRef={"name": "reader"}, caSecretRef={"name": "ca"})
    view = _observe(kube, spec)
    assert view.problems == ()
    assert view.provider_config == ProviderConfig(
        address=ADDRESS,
        authorization=f"Bearer {TOKEN}",
        ca_bundle=CA,
        secrets=("llm/reader", "llm/ca"),
    )
    assert kube.read == [("llm", "reader"), ("llm", "ca")]  # only the release's namespace


def test_a_ca_bundle_that_is_not_pem_is_a_clear_problem_not_a_crash() -> None:
    broken = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"
    kube = FakeKube({"ca": _secret(LABELLED, **{"ca.crt": broken})})
    view = _observe(kube, _prometheus_spec(caSecretRef={"name": "ca"}))
    assert view.provider_config is None
    (problem,) = view.problems
    assert problem.reason is Reason.INVALID_SPEC
    assert "key 'ca.crt' of Secret llm/ca is not a PEM CA bundle" in problem.message


def test_a_missing_secret_says_to_create_it_with_the_label() -> None:
    view = _observe(FakeKube({}), _prometheus_spec(authSecretRef={"name": "reader"}))
    (problem,) = view.problems
    assert problem.reason is Reason.SECRET_NOT_FOUND
    assert "modelrelease.dev/credentials=true" in problem.message


# --- webhook answers and URLs in status and Events ----------------------------------------------

SECRET_URL = "https://gate:pa55w0rd@eval.example:8443/v1/evaluations?token=k3y#frag"
ECHOING_BODIES = [
    json.dumps({"headers": {"Authorization": f"Bearer {TOKEN}"}, "trace": "x" * 5000}),
    json.dumps({REASON_FIELD: f"token {TOKEN} is revoked"}),
    json.dumps({REASON_FIELD: "denied " + "very " * 400}),
    f"Bearer {TOKEN}\n" * 300,
]


@pytest.mark.parametrize("body", ECHOING_BODIES)
def test_a_webhook_answer_is_not_echoed_into_status_or_events(body: str) -> None:
    async def answer() -> Any:
        transport = httpx.MockTransport(lambda request: httpx.Response(500, text=body))
        async with httpx.AsyncClient(transport=transport) as client:
            return await call_webhook(SECRET_URL, {}, 5.0, client)

    def spec(version: str) -> ModelReleaseSpec:
        stage = {"webhook": {"url": SECRET_URL, "interval": "2s", "failureLimit": 1}}
        return make_spec(version, stages=[stage])

    world: CountingWorld = settled_counting(spec("1"))
    world.gate = asyncio.run(answer())
    released(world, "2", 0.0, spec("2"))
    shown = []
    for _ in range(20):
        shown.append(world.status.model_dump_json())
        shown.extend(event.message for event in world.decisions[-1].events)
        if ended(world):
            break
        world.tick()
    assert world.status.history[-1].reason == Reason.WEBHOOK_FAILED
    assert "https://eval.example:8443/v1/evaluations" in world.status.history[-1].message
    text = "\n".join(shown)
    assert "HTTP 500" in text
    for secret in (TOKEN, "pa55w0rd", "k3y", "frag", "xxxxxxxx", "very " * 20):
        assert secret not in text


# --- the pure helpers ----------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=30)
_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=10)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,5}){0,2}", fullmatch=True),
    port=st.none() | st.integers(1, 65535),
    path=st.lists(_segment, max_size=4),
    userinfo=st.none() | _text,
    query=st.none() | _text,
    fragment=st.none() | _text,
)
def test_redacted_urls_keep_only_scheme_host_port_and_path(
    scheme: str,
    host: str,
    port: int | None,
    path: list[str],
    userinfo: str | None,
    query: str | None,
    fragment: str | None,
) -> None:
    where = host + (f":{port}" if port is not None else "")
    route = "".join(f"/{segment}" for segment in path)
    url = f"{scheme}://"
    url += f"{quote(userinfo, safe='')}@" if userinfo is not None else ""
    url += where + route
    url += f"?{quote(query, safe='=&')}" if query is not None else ""
    url += f"#{quote(fragment, safe='')}" if fragment is not None else ""
    assert redact_url(url) == f"{scheme}://{where}{route}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@hook.example/a?b=c#d", "https://hook.example/a"),
        (
            "https://hooks.example/services/T0001/B0002/abcdefghijklmnopqrstuvwx",
            f"https://hooks.example/services/T0001/B0002/{HIDDEN}",
        ),
        ("http://eval/v1/models/llama-3-8b-instruct", "http://eval/v1/models/llama-3-8b-instruct"),
        ("user:pass@host/x", NO_HOST),
    ],
)
def test_redacted_url_examples(url: str, shown: str) -> None:
    assert redact_url(url) == shown


_token = st.text(alphabet="ABCDEFabcdef0123456789", min_size=32, max_size=64)


@given(before=st.text(max_size=40), token=_token, after=st.text(max_size=40))
def test_a_phrase_with_a_token_is_never_shown(before: str, token: str, after: str) -> None:
    assert safe_phrase(f"{before} {token} {after}") is None


@given(text=st.text(max_size=300), limit=st.integers(8, 100))
def test_a_shown_phrase_is_short_printable_ascii(text: str, limit: int) -> None:
    shown = safe_phrase(text, limit)
    if shown is not None:
        assert len(shown) <= limit
        assert shown.isascii()
        assert shown.isprintable()
        assert "\n" not in shown


def test_plain_reasons_are_shown() -> None:
    assert safe_phrase("  accuracy 0.81\nis below 0.85 ") == "accuracy 0.81 is below 0.85"
    assert safe_phrase("see https://x/y?token=1") is None


# --- logs -----------------------------------------------------------------------------------------


def test_request_urls_are_not_logged_even_when_verbose(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from modelrelease import __main__ as entry

    monkeypatch.setattr(entry, "new_api_client", lambda **_: ApiClient())
    monkeypatch.setattr(entry.kopf, "run", lambda **_: None)
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    levels = root.level, httpx_logger.level
    # What kopf.configure(verbose=True) does to the root logger.
    monkeypatch.setattr(entry.kopf, "configure", lambda **_: root.setLevel(logging.DEBUG))
    httpx_logger.setLevel(logging.NOTSET)
    try:
        entry.main(["--verbose", "--liveness", ""])
        # httpx logs "HTTP Request: POST <full URL>" at INFO.
        assert not httpx_logger.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(levels[0])
        httpx_logger.setLevel(levels[1])
