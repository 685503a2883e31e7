"""Names shared by the API, the operator and the kubectl plugin.

Every phase, condition type, reason, label and annotation the operator writes
is a constant here, so a typo is a type error instead of a silent mismatch.
The enums are ``StrEnum``: their members compare equal to (and serialise as)
their string values.
"""

from __future__ import annotations

from enum import StrEnum

GROUP = "modelrelease.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

KIND_MODEL_RELEASE = "ModelRelease"
KIND_SLO_TEMPLATE = "SLOTemplate"
KIND_CLUSTER_SLO_TEMPLATE = "ClusterSLOTemplate"
PLURAL_MODEL_RELEASES = "modelreleases"
PLURAL_SLO_TEMPLATES = "slotemplates"
PLURAL_CLUSTER_SLO_TEMPLATES = "clusterslotemplates"
SHORT_NAME_MODEL_RELEASE = "mrel"
# `kubectl get modelrelease-all` lists every object of the API. It cannot be
# "modelrelease": a category equal to a resource's name shadows that resource, and
# `kubectl get modelrelease chat` would then look in every kind of the category.
CATEGORY = "modelrelease-all"

# Labels on every owned object and on the pods of every revision.
LABEL_RELEASE = f"{GROUP}/release"
LABEL_REVISION = f"{GROUP}/revision"
# A Secret the operator may read (Prometheus credentials, CA bundles) carries this label
# with this value: naming a Secret in a ModelRelease is not enough, its owner opts in.
LABEL_CREDENTIALS = f"{GROUP}/credentials"
CREDENTIALS_OPT_IN = "true"
# Imperative actions from the kubectl plugin; the operator consumes and removes it.
ANNOTATION_ACTION = f"{GROUP}/action"

# ``undo:<revision>``: an action's argument follows its name after this separator.
ACTION_ARGUMENT_SEPARATOR = ":"

# Upper bounds the operator keeps status within.
MAX_HISTORY = 20
"""The operator keeps at most this many ``status.history`` entries (oldest dropped)."""
MAX_MESSAGE_LENGTH = 32768
"""``metav1.Condition`` limit on ``message``; also used for the other messages."""


class Action(StrEnum):
    """Values of the ``modelrelease.dev/action`` annotation."""

    PROMOTE = "promote"
    """Skip every stage left and promote the challenger."""
    SKIP_STEP = "skip-step"
    """Advance the challenger one canary step, or past the current stage."""
    UNDO = "undo"
    """Go back to a kept former champion: ``undo`` (the newest) or ``undo:<revision>``."""
    ABORT = "abort"
    RETRY = "retry"
    APPROVE = "approve"
    PAUSE = "pause"
    RESUME = "resume"


class Phase(StrEnum):
    """``status.phase``: where the release is as a whole."""

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class StageType(StrEnum):
    """The stage kinds; the value is the stage's field name in the spec."""

    SHADOW = "shadow"
    CANARY = "canary"
    CHAMPION_CHALLENGER = "championChallenger"
    APPROVAL = "approval"
    WEBHOOK = "webhook"


class RouterType(StrEnum):
    """The traffic routers; the value is the router's field name in ``spec.traffic``."""

    GATEWAY_API = "gatewayAPI"
    ISTIO = "istio"
    NONE = "none"


class CapacityMode(StrEnum):
    """``spec.capacity.mode``."""

    CONSERVE = "conserve"
    SURGE = "surge"


class NoDataPolicy(StrEnum):
    """``spec.analysis.slos[].noData``: what an inconclusive check (an empty result, too
    few requests) becomes once ``maxInconclusive`` consecutive inconclusive checks have been
    tolerated. Failed reads are not inconclusive: ``analysis.onError`` decides those."""

    FAIL = "fail"
    PASS = "pass"


class OnErrorAction(StrEnum):
    """``spec.analysis.onError.action``: what a metrics outage leads to once it has
    lasted ``onError.after``."""

    ROLLBACK = "rollback"
    HOLD = "hold"


class TemplateKind(StrEnum):
    """Kinds an SLO ``templateRef`` may name."""

    SLO_TEMPLATE = KIND_SLO_TEMPLATE
    CLUSTER_SLO_TEMPLATE = KIND_CLUSTER_SLO_TEMPLATE


class MetricKind(StrEnum):
    """Kinds of champion-challenger comparison metrics."""

    RATIO = "ratio"
    HISTOGRAM = "histogram"
    DISTRIBUTION = "distribution"


class Better(StrEnum):
    """Which direction of a comparison metric is better for the challenger."""

    LOWER = "lower"
    HIGHER = "higher"


class Decision(StrEnum):
    """What the challenger must show to win a comparison."""

    NON_INFERIORITY = "nonInferiority"
    SUPERIORITY = "superiority"


DEFAULT_MARGIN = 0.05
"""The comparison's default non-inferiority margin: 5% worse than the champion at most."""


class OnInconclusive(StrEnum):
    """What happens when a comparison is still inconclusive at ``maxDuration``."""

    KEEP_CHAMPION = "keepChampion"
    PROMOTE = "promote"


class Verdict(StrEnum):
    """Result of one SLO check or of a comparison."""

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
    """The metrics could not be read: never a pass, and not "no data" either."""


class NotificationType(StrEnum):
    """What a notification announces."""

    CHALLENGER_STARTED = "ChallengerStarted"
    STAGE_STARTED = "StageStarted"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    ROLLED_BACK = "RolledBack"
    PROMOTED = "Promoted"
    FAILED = "Failed"


class ReceiverType(StrEnum):
    """The notification services; the value is the receiver's field name in the spec."""

    SLACK = "slack"
    TEAMS = "teams"
    WEBHOOK = "webhook"


# Keys of a receiver's Secret.
SECRET_KEY_URL = "url"
SECRET_KEY_SIGNING_KEY = "signingKey"


class Outcome(StrEnum):
    """How a revision's release ended, in ``status.history``."""

    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    SUPERSEDED = "Superseded"
    CHAMPION_KEPT = "ChampionKept"
    """A comparison stayed inconclusive and the champion was kept: not a failure."""


class ConditionType(StrEnum):
    """``status.conditions[].type``."""

    AVAILABLE = "Available"
    """The champion serves traffic with ready replicas."""
    PROGRESSING = "Progressing"
    """A challenger is being released (True) or not (False, with the reason why)."""
    DEGRADED = "Degraded"
    """Something needs attention: a failed check, a spec the cluster cannot honour."""


class ConditionStatus(StrEnum):
    """``status.conditions[].status``."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Reasons of conditions, Events and history entries (CamelCase, as Kubernetes wants)."""

    # lifecycle
    INITIAL_REVISION = "InitialRevision"
    NEW_REVISION = "NewRevision"
    SUPERSEDED = "Superseded"
    STAGE_STARTED = "StageStarted"
    STAGE_COMPLETED = "StageCompleted"
    STEP_ADVANCED = "StepAdvanced"
    WAITING_FOR_CHALLENGER = "WaitingForChallenger"
    CHALLENGER_READY = "ChallengerReady"
    WAITING_FOR_APPROVAL = "WaitingForApproval"
    APPROVED = "Approved"
    WAITING_FOR_WEBHOOK = "WaitingForWebhook"
    WEBHOOK_PASSED = "WebhookPassed"
    WEBHOOK_FAILED = "WebhookFailed"
    PROMOTING = "Promoting"
    PROMOTED = "Promoted"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    RETRYING = "Retrying"
    REVISION_REJECTED = "RevisionRejected"
    STEP_SKIPPED = "StepSkipped"
    UNDOING = "Undoing"
    UNDONE = "Undone"
    UNDO_REFUSED = "UndoRefused"
    STABLE = "Stable"
    # analysis
    SLO_FAILED = "SLOFailed"
    SLO_INCONCLUSIVE = "SLOInconclusive"
    SLO_GUARD_TRIPPED = "SLOGuardTripped"  # the sequential guard: a rate clearly above max
    COMPARISON_WON = "ComparisonWon"
    COMPARISON_LOST = "ComparisonLost"
    DISTRIBUTION_DRIFTED = "DistributionDrifted"
    COMPARISON_INCONCLUSIVE = "ComparisonInconclusive"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    COMPARISON_STATE_CARRIED_OVER = "ComparisonStateCarriedOver"
    UNKNOWN_QUERY_VARIABLE = "UnknownQueryVariable"
    TEMPLATE_NOT_FOUND = "TemplateNotFound"
    # capacity and pods
    INSUFFICIENT_GPU = "InsufficientGPU"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    UNSCHEDULABLE = "Unschedulable"
    CRASH_LOOPING = "CrashLooping"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CONTAINER_CONFIG_ERROR = "ContainerConfigError"
    CHAMPION_UNAVAILABLE = "ChampionUnavailable"
    # an autoscaler aimed at an owned Deployment, not at the release (Warning Event only)
    HPA_TARGETS_OWNED_DEPLOYMENT = "HPATargetsOwnedDeployment"
    # traffic
    ROUTE_NOT_FOUND = "RouteNotFound"
    ROUTE_RULE_NOT_FOUND = "RouteRuleNotFound"
    MIRROR_NOT_SUPPORTED = "MirrorNotSupported"
    # spec and operator
    INVALID_SPEC = "InvalidSpec"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_NOT_OPTED_IN = "SecretNotOptedIn"
    RECONCILE_ERROR = "ReconcileError"
    # notifications (Warning Events only: a notification never holds a release)
    NOTIFICATION_FAILED = "NotificationFailed"
    NOTIFICATION_CONFIG_INVALID = "NotificationConfigInvalid"


def action_value(action: Action, argument: str | None = None) -> str:
    """The annotation value asking for ``action`` (with its argument, if any)."""
    return (
        action.value if argument is None else f"{action.value}{ACTION_ARGUMENT_SEPARATOR}{argument}"
    )
