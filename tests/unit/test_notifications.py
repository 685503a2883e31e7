"""Notifications: which transitions are told (pure), the outbox in status (pure), the
payload of each service against its documented shape, the HMAC signature, the retry
policy, and the sender against a real HTTP server on 127.0.0.1 (no mock of httpx)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelrelease.api.constants import (
    CREDENTIALS_OPT_IN,
    LABEL_CREDENTIALS,
    NotificationType,
    Reason,
)
from modelrelease.api.models import (
    ModelReleaseSpec,
    ModelReleaseStatus,
    NotificationsSpec,
    PendingNotification,
)
from modelrelease.core.notifications import (
    MAX_PENDING,
    Intent,
    Settled,
    delivery_key,
    record,
    transitions,
)
from modelrelease.notify import slack, teams, webhook
from modelrelease.notify.message import Notice
from modelrelease.notify.sender import Answer, Notifier, RetryPolicy, classify, retry_after_seconds
from modelrelease.notify.targets import Target, request, target
from pydantic import ValidationError

from tests.notify_receiver import Receiver, running_receiver

UID = "6b1f1d2e-0000-4000-8000-000000000001"
NOW = datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC)
OLD, NEW = "a1b2c3d4e5", "f6a7b8c9d0"


# --- statuses ----------------------------------------------------------------------------


def status(**fields: Any) -> ModelReleaseStatus:
    base: dict[str, Any] = {
        "phase": "Succeeded",
        "champion": {"revision": OLD, "modelName": "chat-8b", "modelVersion": "2.0.0"},
    }
    return ModelReleaseStatus.model_validate({**base, **fields})


CHALLENGER = {"revision": NEW, "modelName": "chat-8b", "modelVersion": "2.1.0"}


def stage(name: str, type_: str = "canary", started: bool = True) -> dict[str, Any]:
    return {
        "index": 0,
        "type": type_,
        "name": name,
        "stageStartTime": NOW.isoformat() if started else None,
    }


def history(revision: str, outcome: str, reason: str, minutes: int = 0) -> dict[str, Any]:
    return {
        "revision": revision,
        "modelName": "chat-8b",
        "modelVersion": "2.1.0",
        "outcome": outcome,
        "reason": reason,
        "message": f"{outcome} because {reason}",
        "time": (NOW + timedelta(minutes=minutes)).isoformat(),
    }


def progressing(reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": "Progressing",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": NOW.isoformat(),
    }


def types(intents: list[Intent]) -> list[str]:
    return [intent.type.value for intent in intents]


# --- which transitions are told -------------------------------------------------------------


def test_a_new_challenger_and_its_first_stage_are_told_once() -> None:
    before = status()
    loading = status(
        phase="Progressing", challenger=CHALLENGER, currentStage=stage("ramp", started=False)
    )
    running = status(phase="Progressing", challenger=CHALLENGER, currentStage=stage("ramp"))

    started = transitions(UID, before, loading, NOW)
    assert types(started) == ["ChallengerStarted"]
    assert started[0].id == f"{UID}/{NEW}/0/ChallengerStarted"
    assert (started[0].model_version, started[0].champion_version) == ("2.1.0", "2.0.0")
    # The stage is told when its clock starts (the challenger is Ready), not before.
    stage_started = transitions(UID, loading, running, NOW)
    assert types(stage_started) == ["StageStarted"]
    assert stage_started[0].id == f"{UID}/{NEW}/0/StageStarted/ramp"
    assert transitions(UID, running, running, NOW) == []


def test_a_later_stage_is_told_and_an_approval_stage_says_waiting() -> None:
    first = status(phase="Progressing", challenger=CHALLENGER, currentStage=stage("ramp"))
    second = status(phase="Progressing", challenger=CHALLENGER, currentStage=stage("bake"))
    assert types(transitions(UID, first, second, NOW)) == ["StageStarted"]
    waiting = status(
        phase="Progressing",
        challenger=CHALLENGER,
        currentStage=stage("sign-off", "approval"),
        conditions=[progressing(Reason.WAITING_FOR_APPROVAL, "approve with: kubectl ...")],
    )
    told = transitions(UID, second, waiting, NOW)
    assert types(told) == ["WaitingForApproval"]
    assert told[0].stage == "sign-off"
    assert "approve with" in told[0].message
    assert transitions(UID, waiting, waiting, NOW) == []


def test_a_rollback_names_the_failing_slo_and_its_value() -> None:
    running = status(phase="Progressing", challenger=CHALLENGER, currentStage=stage("ramp"))
    checks = [
        {"name": "error-ratio", "value": 0.002, "max": 0.05, "verdict": "Pass"},
        {"name": "ttft-p95", "value": 0.91, "max": 0.75, "verdict": "Fail"},
    ]
    rolled_back = status(
        phase="RolledBack",
        checks=checks,
        history=[history(NEW, "RolledBack", "SLOFailed")],
        rejectedRevision=NEW,
    )
    told = transitions(UID, running, rolled_back, NOW)
    assert types(told) == ["RolledBack"]
    assert (told[0].slo, told[0].slo_value, told[0].slo_max) == ("ttft-p95", 0.91, 0.75)
    assert told[0].reason == "SLOFailed"
    assert told[0].id == f"{UID}/{NEW}/0/RolledBack"


def test_a_promotion_is_told_with_the_version_it_replaced() -> None:
    promoting = status(phase="Progressing", challenger=CHALLENGER)
    promoted = status(champion=CHALLENGER, history=[history(NEW, "Promoted", Reason.PROMOTED)])
    told = transitions(UID, promoting, promoted, NOW)
    assert types(told) == ["Promoted"]
    assert told[0].champion_version == "2.0.0"


def test_the_first_revision_a_superseded_one_and_an_undo_start_are_not_told() -> None:
    empty = ModelReleaseStatus()
    first = status(history=[history(OLD, "Promoted", Reason.INITIAL_REVISION)])
    assert transitions(UID, empty, first, NOW) == []
    running = status(phase="Progressing", challenger=CHALLENGER)
    superseded = status(history=[history(NEW, "Superseded", Reason.SUPERSEDED)])
    assert transitions(UID, running, superseded, NOW) == []
    undoing = status(challenger=CHALLENGER, undoRevision=NEW)
    assert transitions(UID, status(), undoing, NOW) == []


def test_failed_is_told_once_with_its_reason() -> None:
    running = status(phase="Progressing", challenger=CHALLENGER, currentStage=stage("ramp"))
    degraded = {
        "type": "Degraded",
        "status": "True",
        "reason": "ProgressDeadlineExceeded",
        "message": "m",
        "lastTransitionTime": NOW.isoformat(),
    }
    failed = status(
        phase="Failed", challenger=CHALLENGER, currentStage=stage("ramp"), conditions=[degraded]
    )
    told = transitions(UID, running, failed, NOW)
    assert types(told) == ["Failed"]
    assert told[0].reason == "ProgressDeadlineExceeded"
    assert transitions(UID, failed, failed, NOW) == []


def test_ids_repeat_for_the_same_transition_and_differ_for_a_retried_revision() -> None:
    running = status(phase="Progressing", challenger=CHALLENGER, currentStage=stage("ramp"))
    rolled_back = status(phase="RolledBack", history=[history(NEW, "RolledBack", "SLOFailed")])
    # A pass whose status write was lost decides the same transition again: same id.
    later = NOW + timedelta(seconds=5)
    first = [i.id for i in transitions(UID, running, rolled_back, NOW)]
    assert first == [i.id for i in transitions(UID, running, rolled_back, later)]
    assert first == [f"{UID}/{NEW}/0/RolledBack"]
    # Retried after the rollback: its history has one entry, so its ids are new.
    retried = status(
        phase="Progressing",
        challenger=CHALLENGER,
        history=[history(NEW, "RolledBack", "SLOFailed")],
    )
    again = transitions(UID, rolled_back, retried, NOW)
    assert [i.id for i in again] == [f"{UID}/{NEW}/1/ChallengerStarted"]


# --- the outbox -------------------------------------------------------------------------------


def receivers(*specs: dict[str, Any]) -> NotificationsSpec:
    return NotificationsSpec.model_validate({"receivers": list(specs)})


SLACK = {"name": "oncall", "slack": {"secretRef": {"name": "slack"}}}
AUDIT = {
    "name": "audit",
    "webhook": {"secretRef": {"name": "audit"}},
    "events": ["RolledBack", "Promoted"],
}


def intent(type_: NotificationType = NotificationType.ROLLED_BACK, n: int = 0) -> Intent:
    return Intent(id=f"{UID}/{NEW}/{n}/{type_.value}", type=type_, time=NOW, revision=NEW)


def test_each_intent_goes_to_each_receiver_that_wants_it() -> None:
    spec = receivers(SLACK, AUDIT)
    outbox = record(spec, [], [intent(NotificationType.CHALLENGER_STARTED), intent()], {})
    addressed = [(n.type.value, n.receiver) for n in outbox.pending]
    assert addressed == [
        ("ChallengerStarted", "oncall"),
        ("RolledBack", "oncall"),
        ("RolledBack", "audit"),
    ]
    assert outbox.events == []
    assert outbox.recorded == []
    # The same intent again (a repeated decision) adds nothing.
    again = record(spec, outbox.pending, [intent()], {})
    assert again.pending == outbox.pending


def test_settled_deliveries_leave_the_outbox_and_given_up_ones_say_why() -> None:
    spec = receivers(SLACK, AUDIT)
    pending = record(spec, [], [intent()], {}).pending
    delivered, failed = (delivery_key(n) for n in pending)
    settled = {delivered: Settled(True), failed: Settled(False, "the receiver answered HTTP 404")}
    outbox = record(spec, pending, [], settled)
    assert outbox.pending == []
    assert sorted(outbox.recorded) == sorted([delivered, failed])
    assert [(e.type.value, e.reason) for e in outbox.events] == [
        ("Warning", Reason.NOTIFICATION_FAILED)
    ]
    assert "receiver audit" in outbox.events[0].message
    assert "HTTP 404" in outbox.events[0].message
    # A settled delivery decided again (a lost status write) is not queued again.
    assert record(spec, [], [intent()], settled).pending == []


def test_a_transition_seen_again_after_it_was_told_is_not_told_again() -> None:
    spec = receivers(SLACK, AUDIT)
    pending = record(spec, [], [intent()], {}).pending
    sent = {delivery_key(n): Settled(True) for n in pending}
    recorded = record(spec, pending, [], sent)
    assert recorded.notified == [pending[0].id]
    # The sender has forgotten it; the same transition comes back (a flapping condition).
    again = record(spec, recorded.pending, [intent()], {}, notified=recorded.notified)
    assert again.pending == []
    # The list is bounded, newest last.
    many = [f"id-{n}" for n in range(40)]
    bounded = record(spec, pending, [], sent, notified=many).notified
    assert len(bounded) == 32
    assert bounded[-1] == pending[0].id
    assert bounded[0] == "id-9"


def test_a_receiver_removed_from_the_spec_drops_its_notifications() -> None:
    pending = record(receivers(SLACK, AUDIT), [], [intent()], {}).pending
    assert [n.receiver for n in record(receivers(SLACK), pending, [], {}).pending] == ["oncall"]
    assert record(None, pending, [], {}).pending == []


def test_the_outbox_is_bounded_and_says_what_it_dropped() -> None:
    spec = receivers(SLACK)
    many = [intent(NotificationType.STAGE_STARTED, n) for n in range(MAX_PENDING + 3)]
    outbox = record(spec, [], many, {})
    assert len(outbox.pending) == MAX_PENDING
    assert outbox.pending[-1].id == many[-1].id  # the newest are kept
    assert len(outbox.events) == 3


def test_receiver_problems_become_warning_events() -> None:
    outbox = record(receivers(SLACK), [], [], {}, ["Secret llm/slack does not exist"])
    assert [e.reason for e in outbox.events] == [Reason.NOTIFICATION_CONFIG_INVALID]


@given(
    st.lists(st.sampled_from(list(NotificationType)), max_size=8),
    st.lists(st.booleans(), max_size=8),
)
def test_every_notification_is_pending_until_settled_and_never_twice(
    kinds: list[NotificationType], outcomes: list[bool]
) -> None:
    spec = receivers(SLACK, AUDIT)
    intents = [intent(kind, n) for n, kind in enumerate(kinds)]
    pending = record(spec, [], intents, {}).pending
    keys = [delivery_key(n) for n in pending]
    assert len(keys) == len(set(keys))
    settled = {key: Settled(ok) for key, ok in zip(keys, outcomes, strict=False)}
    after = record(spec, pending, intents, settled)
    left = [delivery_key(n) for n in after.pending]
    assert set(left) == set(keys) - set(settled)
    assert len(after.events) == sum(1 for s in settled.values() if not s.delivered)


# --- the spec ---------------------------------------------------------------------------------


def test_a_receiver_needs_exactly_one_service_and_a_unique_name() -> None:
    with pytest.raises(ValidationError, match="exactly one of slack, teams or webhook"):
        receivers({"name": "x", "slack": SLACK["slack"], "teams": SLACK["slack"]})
    with pytest.raises(ValidationError, match="receiver names must be unique"):
        receivers(SLACK, SLACK)
    assert receivers(SLACK).receivers[0].events == list(NotificationType)


def test_the_release_spec_accepts_notifications() -> None:
    spec = ModelReleaseSpec.model_validate(
        {
            "model": {"name": "m", "version": "1"},
            "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
            "traffic": {"none": {}},
            "stages": [{"approval": {}}],
            "notifications": {"receivers": [SLACK, AUDIT]},
        }
    )
    assert spec.notifications is not None
    assert [r.secret_name for r in spec.notifications.receivers] == ["slack", "audit"]


# --- payloads ---------------------------------------------------------------------------------


def pending(
    type_: NotificationType = NotificationType.ROLLED_BACK, **extra: Any
) -> PendingNotification:
    fields: dict[str, Any] = {
        "id": f"{UID}/{NEW}/0/{type_.value}",
        "receiver": "oncall",
        "type": type_,
        "time": NOW,
        "revision": NEW,
        "modelName": "chat-8b",
        "modelVersion": "2.1.0",
        "championVersion": "2.0.0",
        "reason": "SLOFailed",
        "message": "rolled back revision f6a7b8c9d0: SLO ttft-p95 failed 1 checks in a row <&>",
        "slo": "ttft-p95",
        "sloValue": 0.91,
        "sloMax": 0.75,
    }
    return PendingNotification.model_validate({**fields, **extra})


def notice(type_: NotificationType = NotificationType.ROLLED_BACK, **extra: Any) -> Notice:
    return Notice("llm", "chat", pending(type_, **extra))


# Block Kit: the block types a message may hold, and the limits the docs give.
SLACK_BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image", "rich_text"}


def check_block_kit(message: dict[str, Any]) -> None:
    assert isinstance(message["text"], str)
    assert message["text"]
    blocks = message["blocks"]
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        assert block["type"] in SLACK_BLOCK_TYPES
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 1 <= len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] in ("mrkdwn", "plain_text")
                assert 1 <= len(block["text"]["text"]) <= 3000
            for item in block.get("fields", []):
                assert item["type"] in ("mrkdwn", "plain_text")
                assert 1 <= len(item["text"]) <= 2000
            assert len(block.get("fields", [])) <= 10
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(e["type"] in ("mrkdwn", "plain_text", "image") for e in block["elements"])


@pytest.mark.parametrize("type_", list(NotificationType))
def test_slack_messages_are_valid_block_kit(type_: NotificationType) -> None:
    message = slack.payload(notice(type_))
    check_block_kit(message)
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "section", "context"]


def test_slack_escapes_mrkdwn_and_cuts_long_text() -> None:
    message = slack.payload(notice(message="x" * 5000, stage="s" * 200))
    check_block_kit(message)
    text = json.dumps(slack.payload(notice()))
    assert "&lt;&amp;&gt;" in text
    assert "<&>" not in text
    fields = " ".join(f["text"] for f in message["blocks"][2]["fields"])
    assert "*Failing SLO*\nttft-p95 = 0.91 (max 0.75)" in fields


def check_teams_envelope(message: dict[str, Any]) -> dict[str, Any]:
    """The Workflows webhook's envelope: a message with one Adaptive Card attachment."""
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card: dict[str, Any] = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] == "1.4"  # Teams renders Adaptive Cards up to 1.5
    for element in card["body"]:
        assert element["type"] in ("TextBlock", "FactSet")
        if element["type"] == "TextBlock":
            assert isinstance(element["text"], str)
            assert element["text"]
            assert element.get("color", "Default") in (
                "Default",
                "Dark",
                "Light",
                "Accent",
                "Good",
                "Warning",
                "Attention",
            )
        else:
            for fact in element["facts"]:
                assert set(fact) == {"title", "value"}
                assert all(isinstance(v, str) for v in fact.values())
    return card


@pytest.mark.parametrize("type_", list(NotificationType))
def test_teams_messages_are_adaptive_cards_in_the_workflows_envelope(
    type_: NotificationType,
) -> None:
    card = check_teams_envelope(teams.payload(notice(type_)))
    facts = {f["title"]: f["value"] for f in card["body"][-1]["facts"]}
    assert facts["Release"] == "llm/chat"
    assert facts["Model"] == f"chat-8b 2.1.0 (revision {NEW})"


def test_the_webhook_body_carries_the_id_the_slo_and_its_value() -> None:
    document = webhook.body(notice())
    assert document["id"] == f"{UID}/{NEW}/0/RolledBack"
    assert document["type"] == "RolledBack"
    assert document["slo"] == {"name": "ttft-p95", "value": 0.91, "min": None, "max": 0.75}
    assert (document["namespace"], document["release"]) == ("llm", "chat")


# --- the signature ------------------------------------------------------------------------------

KEY = b"s3cr3t-signing-key"


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    found = Target("audit", webhook_type(), "Secret llm/audit", "http://127.0.0.1:1/h", KEY)
    outgoing = request(found, notice(), timestamp=1_780_000_000)
    expected = hmac.new(KEY, b"1780000000." + outgoing.content, hashlib.sha256).hexdigest()
    assert outgoing.headers["X-ModelRelease-Signature"] == f"sha256={expected}"
    assert outgoing.headers["X-ModelRelease-Timestamp"] == "1780000000"
    assert outgoing.headers["X-ModelRelease-Delivery"] == f"{UID}/{NEW}/0/RolledBack"
    assert json.loads(outgoing.content)["id"] == f"{UID}/{NEW}/0/RolledBack"


def webhook_type() -> Any:
    from modelrelease.api.constants import ReceiverType

    return ReceiverType.WEBHOOK


@given(st.binary(max_size=200), st.integers(min_value=1_700_000_000, max_value=1_900_000_000))
def test_a_receiver_accepts_only_the_untouched_request_in_time(body: bytes, moment: int) -> None:
    signature = webhook.signature(KEY, moment, body)
    assert webhook.verify(KEY, body, str(moment), signature, now=moment + 10)
    assert not webhook.verify(KEY, body + b" ", str(moment), signature, now=moment)
    assert not webhook.verify(b"other key", body, str(moment), signature, now=moment)
    assert not webhook.verify(KEY, body, str(moment + 1), signature, now=moment)  # moved time
    assert not webhook.verify(KEY, body, str(moment), signature, now=moment + 301)  # replayed
    assert not webhook.verify(KEY, body, "soon", signature, now=moment)


# --- retries ---------------------------------------------------------------------------------


def test_which_answers_are_retried() -> None:
    assert classify(200) is Answer.DELIVERED
    assert classify(202) is Answer.DELIVERED
    assert all(classify(code) is Answer.RETRY for code in (408, 425, 429, 500, 502, 503))
    assert all(classify(code) is Answer.REFUSED for code in (400, 401, 403, 404, 410))
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT") is None


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=0.999))
def test_backoff_doubles_with_jitter_up_to_the_cap(failures: int, jitter: float) -> None:
    policy = RetryPolicy(base=1.0, cap=60.0)
    full = min(60.0, 2.0 ** (failures - 1))
    assert full / 2 <= policy.delay(failures, jitter) <= full
    assert policy.delay(failures, jitter, retry_after=30) >= min(30.0, 60.0)
    assert policy.delay(failures, jitter, retry_after=3600) == 60.0


# --- the sender, against a real HTTP server ----------------------------------------------------


@dataclass
class Secrets:
    """What ``kube.get_secret`` would answer, with the calls it got."""

    data: dict[str, dict[str, str]] = field(default_factory=dict)
    opted_in: bool = True
    reads: list[str] = field(default_factory=list)

    def get(self, namespace: str, name: str) -> Any:
        self.reads.append(f"{namespace}/{name}")
        if name not in self.data:
            return None
        labels = {LABEL_CREDENTIALS: CREDENTIALS_OPT_IN} if self.opted_in else {}
        return _Secret(labels, self.data[name])


@dataclass
class _Secret:
    labels: dict[str, str]
    values: dict[str, str] = field(repr=False)

    def decoded(self) -> dict[str, str]:
        return dict(self.values)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, timeout=2.0)
KEY_OF_RELEASE = ("llm", "chat")


def all_receivers(server: Receiver) -> tuple[NotificationsSpec, Secrets]:
    spec = receivers(
        SLACK,
        {"name": "ml-team", "teams": {"secretRef": {"name": "teams"}}},
        {"name": "audit", "webhook": {"secretRef": {"name": "audit"}}},
    )
    secrets = Secrets(
        {
            "slack": {"url": server.url("/slack")},
            "teams": {"url": server.url("/teams")},
            "audit": {"url": server.url("/audit"), "signingKey": KEY.decode()},
        }
    )
    return spec, secrets


POLL_SECONDS = 0.01


async def eventually(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Until ``predicate`` holds (the sender works in the same event loop)."""
    for _ in range(int(seconds / POLL_SECONDS)):
        if predicate():
            return
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"not within {seconds}s")


async def settle(notifier: Notifier, count: int) -> dict[Any, Settled]:
    """Until ``count`` deliveries of the release are settled."""
    await eventually(lambda: len(notifier.settled(KEY_OF_RELEASE)) >= count)
    return notifier.settled(KEY_OF_RELEASE)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_every_service_receives_its_payload_signed_where_asked(receiver: Receiver) -> None:
    spec, secrets = all_receivers(receiver)
    woken: list[Any] = []

    async def go() -> dict[Any, Settled]:
        notifier = Notifier(secrets.get, woken.append, policy=FAST)
        notifier.start()
        outbox = record(spec, [], [intent()], {})
        assert notifier.enqueue(KEY_OF_RELEASE, "chat", outbox.pending, spec) == 3
        # Queued or in flight: not queued twice.
        assert notifier.enqueue(KEY_OF_RELEASE, "chat", outbox.pending, spec) == 0
        settled = await settle(notifier, 3)
        assert notifier.enqueue(KEY_OF_RELEASE, "chat", outbox.pending, spec) == 0
        await notifier.close()
        return settled

    settled = run(go())
    assert all(outcome.delivered for outcome in settled.values())
    assert woken
    assert set(woken) == {KEY_OF_RELEASE}
    check_block_kit(receiver.at("/slack")[0].json)
    check_teams_envelope(receiver.at("/teams")[0].json)
    (signed,) = receiver.at("/audit")
    headers = {k.lower(): v for k, v in signed.headers.items()}
    timestamp = headers["x-modelrelease-timestamp"]
    assert webhook.verify(
        KEY, signed.body, timestamp, headers["x-modelrelease-signature"], now=float(timestamp)
    )
    ids = {r.headers.get("X-ModelRelease-Delivery") for r in receiver.received}
    assert ids == {f"{UID}/{NEW}/0/RolledBack"}


def test_failures_are_retried_with_backoff_and_refusals_are_not(receiver: Receiver) -> None:
    spec, secrets = all_receivers(receiver)
    receiver.answers["/slack"] = [503, 429, 200]
    receiver.answers["/teams"] = [404]
    receiver.answers["/audit"] = [500] * 10

    async def go() -> dict[Any, Settled]:
        notifier = Notifier(secrets.get, policy=FAST)
        notifier.start()
        notifier.enqueue(KEY_OF_RELEASE, "chat", record(spec, [], [intent()], {}).pending, spec)
        settled = await settle(notifier, 3)
        await notifier.close()
        return settled

    settled = {receiver_name: s for (_, receiver_name), s in run(go()).items()}
    assert settled["oncall"].delivered
    assert len(receiver.at("/slack")) == 3
    assert not settled["ml-team"].delivered
    assert len(receiver.at("/teams")) == 1
    assert "HTTP 404, which is not retried" in settled["ml-team"].message
    assert not settled["audit"].delivered
    assert len(receiver.at("/audit")) == FAST.attempts
    assert "4 attempts failed, the last with HTTP 500" in settled["audit"].message
    # Retries keep the id: a receiver can drop repeats.
    assert {r.headers["X-ModelRelease-Delivery"] for r in receiver.at("/slack")} == {
        f"{UID}/{NEW}/0/RolledBack"
    }
    # Never the URL (it is the secret of a Slack or Teams webhook).
    assert all("127.0.0.1" not in s.message for s in settled.values())


def test_a_missing_or_unlabelled_secret_or_a_bad_url_is_said_without_sending(
    receiver: Receiver,
) -> None:
    spec, secrets = all_receivers(receiver)
    del secrets.data["slack"]
    secrets.data["teams"]["url"] = "ftp://example.com/hook"
    del secrets.data["audit"]["signingKey"]

    async def go() -> tuple[dict[Any, Settled], list[str]]:
        notifier = Notifier(secrets.get, policy=FAST)
        notifier.start()
        notifier.check(KEY_OF_RELEASE, spec)
        notifier.enqueue(KEY_OF_RELEASE, "chat", record(spec, [], [intent()], {}).pending, spec)
        settled = await settle(notifier, 3)
        await eventually(lambda: bool(notifier.problems(KEY_OF_RELEASE)))
        problems = notifier.problems(KEY_OF_RELEASE)
        await notifier.close()
        return settled, problems

    settled, problems = run(go())
    messages = {name: s.message for (_, name), s in settled.items()}
    assert "Secret llm/slack, which does not exist" in messages["oncall"]
    assert "is not an absolute http or https URL" in messages["ml-team"]
    assert "no (or an empty) key signingKey" in messages["audit"]
    assert receiver.received == []
    assert len(problems) == 3
    assert all("the release goes on" in p for p in problems)
    secrets.opted_in = False
    found = target(spec.receivers[1], "llm", secrets.get("llm", "teams"))
    assert isinstance(found, str)
    assert f"{LABEL_CREDENTIALS}={CREDENTIALS_OPT_IN}" in found


def test_a_restart_between_delivery_and_record_sends_again_with_the_same_id(
    receiver: Receiver,
) -> None:
    """At least once: the outbox in status outlives the process; only the id dedupes."""
    spec, secrets = all_receivers(receiver)
    outbox = record(spec, [], [intent()], {}).pending

    async def deliver_once() -> None:
        notifier = Notifier(secrets.get, policy=FAST)  # a fresh process: empty memory
        notifier.start()
        notifier.enqueue(KEY_OF_RELEASE, "chat", outbox, spec)
        await settle(notifier, 3)
        await notifier.close()

    run(deliver_once())
    run(deliver_once())  # killed before a pass recorded it: status still holds it
    ids = [r.headers["X-ModelRelease-Delivery"] for r in receiver.at("/audit")]
    assert ids == [f"{UID}/{NEW}/0/RolledBack"] * 2


def test_a_full_queue_never_blocks_and_each_receiver_keeps_the_order(receiver: Receiver) -> None:
    spec, secrets = all_receivers(receiver)
    receiver.answers["/slack"] = [503, 503]  # the first is retried; the others wait for it

    async def go() -> None:
        notifier = Notifier(secrets.get, policy=FAST, queue_size=2, workers=1)
        notifier.start()
        many = record(spec, [], [intent(NotificationType.STAGE_STARTED, n) for n in range(3)], {})
        # 3 receivers x 3: two lanes fit the queue, the third waits for a later pass.
        assert notifier.enqueue(KEY_OF_RELEASE, "chat", many.pending, spec) == 6
        settled = await settle(notifier, 6)
        assert {name for _, name in settled} == {"oncall", "ml-team"}
        notifier.recorded(KEY_OF_RELEASE, list(settled))
        assert notifier.settled(KEY_OF_RELEASE) == {}
        left = [n for n in many.pending if delivery_key(n) not in settled]  # the next pass's
        assert notifier.enqueue(KEY_OF_RELEASE, "chat", left, spec) == 3
        await settle(notifier, 3)
        await notifier.close()

    run(go())
    sent = [r.header("X-ModelRelease-Delivery") for r in receiver.delivered("/slack")]
    assert sent == [f"{UID}/{NEW}/{n}/StageStarted" for n in range(3)]
    assert len(receiver.delivered("/audit")) == 3


def test_enqueue_never_waits_for_a_slow_receiver(receiver: Receiver) -> None:
    spec, secrets = all_receivers(receiver)
    receiver.slow = {path: 1.0 for path in ("/slack", "/teams", "/audit")}

    async def go() -> float:
        notifier = Notifier(secrets.get, policy=FAST)
        notifier.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(20):
            outbox = record(spec, [], [intent(NotificationType.STAGE_STARTED, n)], {})
            notifier.enqueue(KEY_OF_RELEASE, "chat", outbox.pending, spec)
        took = loop.time() - started
        await settle(notifier, 3)  # the first of each lane, a second later
        await notifier.close()
        return took

    assert run(go()) < 0.2


def test_no_secret_value_in_reprs() -> None:
    found = Target("audit", webhook_type(), "Secret llm/audit", "https://h/s3cr3t", KEY)
    assert "s3cr3t" not in repr(found)
    assert "s3cr3t" not in repr(request(found, notice(), 1))
    assert base64.b64encode(KEY).decode() not in repr(found)
