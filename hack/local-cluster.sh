#!/usr/bin/env bash
# A real local Kubernetes control plane with simulated GPU nodes, and Prometheus.
#
#   hack/local-cluster.sh up       start (a no-op when everything already runs)
#   hack/local-cluster.sh down     stop exactly what `up` started and remove the state
#   hack/local-cluster.sh status   say what runs; exit 0 only when all of it does
#   hack/local-cluster.sh env      print `export KUBECONFIG=...` for your shell
#   hack/local-cluster.sh stop COMPONENT | start COMPONENT | restart COMPONENT
#                                  one component of a running cluster (the chaos suite's
#                                  outages); its state (etcd data, Prometheus TSDB) is kept
#
# Components: etcd, kube-apiserver (RBAC, service-account tokens),
# kube-controller-manager, kube-scheduler (all built by hack/tools.sh), kwok
# managing fake nodes, and Prometheus scraping targets from file-based discovery.
# Everything listens on 127.0.0.1 only.
#
# Environment:
#   MODELRELEASE_CLUSTER_DIR  state folder (default: <repo>/.local-cluster)
#   GPU_NODES (2), GPUS_PER_NODE (4), CPU_NODES (1)
#   APISERVER_PORT (16443), ETCD_PORT (12379), PROMETHEUS_PORT (19090)
#   MODELRELEASE_AUDIT=1      (off by default) the API server writes an audit log of the
#                             operator's requests to $STATE/audit.log: JSON lines at Metadata
#                             level (verb, user, resource, namespace, name, response code,
#                             timestamps) for users in the group modelrelease:operators and
#                             ServiceAccounts of namespace modelrelease-rbac (the RBAC test) only,
#                             rotated at AUDIT_MAXSIZE_MB (500) with AUDIT_MAXBACKUP (4) old
#                             files kept (audit-<time>.log). Set at `up`; it sticks to the
#                             cluster (a `restart kube-apiserver` keeps it).
#   MODELRELEASE_SCALE=1      (off by default) limits for hundreds of releases: see scale_flags.
#
# The operator's own identity: $STATE/operator.kubeconfig, user modelrelease-operator in the
# groups system:masters (all rights, so no RBAC set-up) and modelrelease:operators (what the
# audit policy selects), so the audit log tells the operator's requests from everyone else's.
# `hack/local-cluster.sh identity NAME` writes $STATE/NAME.kubeconfig for one more such user
# (e.g. a second replica).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${MODELRELEASE_CLUSTER_DIR:-$ROOT/.local-cluster}"
CACHE="${MODELRELEASE_CACHE:-$HOME/.cache/modelrelease}"
BIN="$CACHE/bin"
GPU_NODES="${GPU_NODES:-2}"
GPUS_PER_NODE="${GPUS_PER_NODE:-4}"
CPU_NODES="${CPU_NODES:-1}"
APISERVER_PORT="${APISERVER_PORT:-16443}"
ETCD_PORT="${ETCD_PORT:-12379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-12380}"
CONTROLLER_MANAGER_PORT="${CONTROLLER_MANAGER_PORT:-16257}"
SCHEDULER_PORT="${SCHEDULER_PORT:-16259}"
KWOK_PORT="${KWOK_PORT:-16280}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"
START_TIMEOUT="${START_TIMEOUT:-90}"

PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
KUBECONFIG_FILE="$STATE/kubeconfig"
AUDIT_POLICY="$STATE/audit-policy.yaml"
AUDIT_MAXSIZE_MB="${AUDIT_MAXSIZE_MB:-500}"
AUDIT_MAXBACKUP="${AUDIT_MAXBACKUP:-4}"
OPERATORS_GROUP="modelrelease:operators"
# The chart's ServiceAccounts that tests/e2e/test_rbac.py runs the operator as: audited too.
RBAC_TEST_NAMESPACE="modelrelease-rbac"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok prometheus)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

pid_of() { [ -f "$PIDS/$1.pid" ] && cat "$PIDS/$1.pid"; }
alive() { local pid; pid="$(pid_of "$1")" || return 1; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# --- PKI ------------------------------------------------------------------
cert() {
  # cert NAME CN ORGS [SAN]  -> $PKI/NAME.{key,crt} signed by the cluster CA (or by
  # $PKI/$CERT_CA.crt); ORGS is comma-separated: each becomes an O, which Kubernetes
  # reads as a group
  local name="$1" cn="$2" org="$3" san="${4:-}" ext="$PKI/$1.ext" subj="" o
  local ca="${CERT_CA:-ca}"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  for o in ${org//,/ }; do subj="$subj/O=$o"; done
  subj="$subj/CN=$cn"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -days 365 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$ext"
}

kubeconfig_for() {
  # kubeconfig_for NAME FILE -> a kubeconfig using client cert $PKI/NAME.*
  local name="$1" file="$2"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: modelrelease-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $name
  user:
    client-certificate: $PKI/$name.crt
    client-key: $PKI/$name.key
contexts:
- name: modelrelease-local
  context: {cluster: modelrelease-local, user: $name}
current-context: modelrelease-local
EOF
}

make_pki() {
  [ -f "$PKI/ca.crt" ] && return 0
  log "creating PKI"
  mkdir -p "$PKI"
  openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=modelrelease-local-ca" -days 365 \
    -sha256 -out "$PKI/ca.crt" 2>/dev/null
  cert apiserver kube-apiserver "" \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin admin system:masters
  cert controller-manager system:kube-controller-manager ""
  cert scheduler system:kube-scheduler ""
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  kubeconfig_for admin "$KUBECONFIG_FILE"
  kubeconfig_for controller-manager "$STATE/controller-manager.kubeconfig"
  kubeconfig_for scheduler "$STATE/scheduler.kubeconfig"
  operator_identity modelrelease-operator "$STATE/operator.kubeconfig"
}

make_front_proxy_pki() {
  # The aggregation layer's identity towards extension API servers (a metrics adapter):
  # a CA of its own, as kubeadm makes, so no certificate of the cluster CA can assert
  # a user through request headers. Apart from make_pki so that an older state folder
  # gets it too.
  [ -f "$PKI/front-proxy-client.crt" ] && return 0
  openssl genrsa -out "$PKI/front-proxy-ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$PKI/front-proxy-ca.key" -subj "/CN=modelrelease-front-proxy-ca" \
    -days 365 -sha256 -out "$PKI/front-proxy-ca.crt" 2>/dev/null
  CERT_CA=front-proxy-ca cert front-proxy-client front-proxy-client ""
}

operator_identity() {
  # operator_identity USER FILE: a kubeconfig for USER in the operators' (audited) group
  local user="$1" file="$2"
  cert "$user" "$user" "system:masters,$OPERATORS_GROUP"
  kubeconfig_for "$user" "$file"
}

write_audit_policy() {
  # Metadata level: who, verb, object and response code, no bodies. Only the operators'
  # group is logged, so the file holds what the benchmarks count and stays small.
  cat >"$AUDIT_POLICY" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    userGroups: ["$OPERATORS_GROUP", "system:serviceaccounts:$RBAC_TEST_NAMESPACE"]
  - level: None
EOF
}

scale_flags() {
  # scale_flags COMPONENT: with MODELRELEASE_SCALE=1, limits that 1,000 releases need.
  # Priority and fairness is off, so the API server's in-flight limits (400 reads, 200
  # writes) are what answers 429: raised so a burst of passes after a restart measures the
  # operator, not this server. The controller manager's and scheduler's clients default to
  # 20 and 50 requests/s: creating 2,000 pods' ReplicaSets, Pods and bindings would take
  # minutes and the benchmark would time them instead of the operator. kwok's client has no
  # rate limit (it uses a fake always-allow limiter), so nothing to raise there.
  [ "${MODELRELEASE_SCALE:-0}" = 1 ] || return 0
  case "$1" in
    kube-apiserver) echo --max-requests-inflight 1600 --max-mutating-requests-inflight 800 ;;
    kube-controller-manager | kube-scheduler) echo --kube-api-qps 500 --kube-api-burst 1000 ;;
  esac
}

# --- processes --------------------------------------------------------------
start() {
  # start NAME CMD... : detached, own session, logs to $LOGS/NAME.log
  local name="$1"
  shift
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

fail_component() {
  local name="$1" why="$2"
  log "$name failed to start: $why"
  log "last lines of $LOGS/$name.log:"
  tail -n 30 "$LOGS/$name.log" >&2 || true
  stop_processes
  exit 1
}

wait_until() {
  # wait_until NAME CHECK-COMMAND... : until the check passes or the process dies
  local name="$1" deadline=$((SECONDS + START_TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail_component "$name" "the process exited"
    [ "$SECONDS" -lt "$deadline" ] || fail_component "$name" "not healthy after ${START_TIMEOUT}s"
    sleep 0.3
  done
}

https_healthy() { curl -fsk "https://127.0.0.1:$1/healthz"; }

start_etcd() {
  start etcd "$BIN/etcd" --name local --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
  wait_until etcd curl -fs "http://127.0.0.1:$ETCD_PORT/health"
}

start_apiserver() {
  local audit=()
  if [ -f "$AUDIT_POLICY" ]; then
    audit=(--audit-policy-file "$AUDIT_POLICY" --audit-log-path "$STATE/audit.log"
      --audit-log-format json --audit-log-maxsize "$AUDIT_MAXSIZE_MB"
      --audit-log-maxbackup "$AUDIT_MAXBACKUP")
  fi
  make_front_proxy_pki
  # The --requestheader-* and --proxy-client-* flags let the aggregation layer proxy to
  # an extension API server (the e2e tests' metrics adapter) as the requesting user.
  # shellcheck disable=SC2046 # scale_flags prints plain words
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true --profiling=false \
    --enable-priority-and-fairness=false \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI/front-proxy-client.key" \
    "${audit[@]}" $(scale_flags kube-apiserver)
  wait_until kube-apiserver kubectl_ get --raw /readyz
}

start_controller_manager() {
  # The HPA controller syncs every 5 s instead of 15: tests/e2e/test_autoscaling.py waits
  # for it several times.
  # shellcheck disable=SC2046 # scale_flags prints plain words
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" \
    --service-account-private-key-file "$PKI/sa.key" \
    --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --leader-elect=false --profiling=false \
    --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10 \
    --concurrent-gc-syncs 20 --horizontal-pod-autoscaler-sync-period 5s \
    $(scale_flags kube-controller-manager)
  wait_until kube-controller-manager https_healthy "$CONTROLLER_MANAGER_PORT"
}

start_scheduler() {
  # shellcheck disable=SC2046 # scale_flags prints plain words
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" \
    --leader-elect=false --profiling=false $(scale_flags kube-scheduler)
  wait_until kube-scheduler https_healthy "$SCHEDULER_PORT"
}

stages_current() {
  # hack/tools.sh names the stage file after a hash of the repository's stages.
  local hash
  hash="$(sha256sum "$ROOT/hack/kwok/pod-stages.yaml" | cut -c1-12)"
  case "$(readlink "$CACHE/kwok-stages.yaml" 2>/dev/null)" in
    *-"$hash".yaml) return 0 ;;
    *) return 1 ;;
  esac
}

start_kwok() {
  start kwok "$BIN/kwok" \
    --kubeconfig "$KUBECONFIG_FILE" \
    --config "$CACHE/kwok-stages.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr 10.244.0.0/16 --node-ip 10.0.0.1 \
    --server-address "127.0.0.1:$KWOK_PORT"
  wait_until kwok curl -fs "http://127.0.0.1:$KWOK_PORT/healthz"
}

node_manifest() {
  # node_manifest NAME GPUS
  local name="$1" gpus="$2" gpu_labels="" gpu_capacity=""
  if [ "$gpus" -gt 0 ]; then
    gpu_labels="
    nvidia.com/gpu.present: \"true\"
    nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB
    nvidia.com/gpu.memory: \"81920\"
    nvidia.com/gpu.count: \"$gpus\""
    gpu_capacity="
    nvidia.com/gpu: \"$gpus\""
  fi
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    type: kwok$gpu_labels
status:
  allocatable:
    cpu: "32"
    memory: 256Gi
    pods: "110"$gpu_capacity
  capacity:
    cpu: "32"
    memory: 256Gi
    pods: "110"$gpu_capacity
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
EOF
}

create_nodes() {
  local i
  {
    for ((i = 0; i < GPU_NODES; i++)); do node_manifest "gpu-node-$i" "$GPUS_PER_NODE"; done
    for ((i = 0; i < CPU_NODES; i++)); do node_manifest "cpu-node-$i" 0; done
  } | kubectl_ apply -f - >/dev/null
  local total=$((GPU_NODES + CPU_NODES))
  wait_until kwok nodes_ready "$total"
}

nodes_ready() {
  local ready
  ready="$(kubectl_ get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)"
  [ "$ready" -ge "$1" ]
}

install_crds() {
  kubectl_ apply --server-side --force-conflicts -f "$CACHE/crds/gateway-api.yaml" >/dev/null
  kubectl_ apply --server-side --force-conflicts -f "$CACHE/crds/istio.yaml" >/dev/null
  kubectl_ apply --server-side --force-conflicts -f "$CACHE/crds/keda.yaml" >/dev/null
  # kubectl wait fails at once ("accessor error") while a new CRD has no status yet, as
  # happens on a loaded machine: retried until START_TIMEOUT.
  wait_until kube-apiserver kubectl_ wait --for condition=Established --timeout 10s \
    crd/httproutes.gateway.networking.k8s.io crd/virtualservices.networking.istio.io \
    crd/scaledobjects.keda.sh
}

start_prometheus() {
  local dir="$STATE/prometheus"
  mkdir -p "$dir/targets" "$dir/data"
  cat >"$dir/prometheus.yml" <<EOF
# Written by hack/local-cluster.sh. Targets come from file-based discovery:
# drop JSON target files into $dir/targets/ and Prometheus picks them up.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: local
    file_sd_configs:
      - files: ["$dir/targets/*.json", "$dir/targets/*.yaml"]
        refresh_interval: 2s
EOF
  start prometheus "$BIN/prometheus" \
    --config.file "$dir/prometheus.yml" \
    --storage.tsdb.path "$dir/data" \
    --storage.tsdb.retention.time 12h \
    --web.listen-address "127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-lifecycle
  wait_until prometheus curl -fs "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
}

all_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
}

stop_component() {
  # stop_component NAME: SIGTERM, then SIGKILL if it lingers; waited for
  local c="$1" pid
  pid="$(pid_of "$c" 2>/dev/null)" || return 0
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    wait_exit "$pid" 15 || { kill -9 "$pid" 2>/dev/null; wait_exit "$pid" 5 || true; }
  fi
  rm -f "$PIDS/$c.pid"
}

start_component() {
  case "$1" in
    etcd) start_etcd ;;
    kube-apiserver) start_apiserver ;;
    kube-controller-manager) start_controller_manager ;;
    kube-scheduler) start_scheduler ;;
    kwok) start_kwok ;;
    prometheus) start_prometheus ;;
  esac
}

cmd_component() {
  # cmd_component stop|start|restart NAME
  local action="$1" name="${2:-}"
  [[ " ${COMPONENTS[*]} " == *" $name "* ]] ||
    die "usage: $0 $action COMPONENT, one of: ${COMPONENTS[*]}"
  [ -d "$PIDS" ] || die "no cluster in $STATE: run '$0 up' first"
  if [ "$action" != start ]; then
    log "stopping $name"
    stop_component "$name"
  fi
  if [ "$action" != stop ]; then
    alive "$name" && { log "$name already runs"; return 0; }
    log "starting $name"
    start_component "$name"
  fi
}

stop_processes() {
  # Reverse start order; each gets SIGTERM, then SIGKILL if it lingers, and is
  # waited for, so a port is free again when this returns.
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    stop_component "${COMPONENTS[$i]}"
  done
}

wait_exit() {
  # wait_exit PID SECONDS: 0 once the process is gone (or a zombie)
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 0
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

cmd_up() {
  if all_alive && kubectl_ get --raw /readyz >/dev/null 2>&1; then
    log "already running (KUBECONFIG=$KUBECONFIG_FILE)"
    return 0
  fi
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl prometheus; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run hack/tools.sh (or make tools) first"
  done
  stages_current || die "the kwok stages in $CACHE are not those of hack/kwok/pod-stages.yaml: run hack/tools.sh kwok"
  if [ -d "$PIDS" ]; then
    log "a previous cluster is partly running; stopping it first"
    stop_processes
  fi
  rm -rf "$STATE/etcd" "$STATE/prometheus/data"
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  local t0=$SECONDS
  trap 'log "up failed; stopping what it started (logs kept in $LOGS)"; stop_processes' ERR
  make_pki
  if [ "${MODELRELEASE_AUDIT:-0}" = 1 ]; then
    log "API server audit log of the operator's requests: $STATE/audit.log"
    write_audit_policy
  else
    rm -f "$AUDIT_POLICY"
  fi
  log "starting etcd";                    start_etcd
  log "starting kube-apiserver";          start_apiserver
  log "starting kube-controller-manager"; start_controller_manager
  log "starting kube-scheduler";          start_scheduler
  log "starting kwok";                    start_kwok
  log "creating $GPU_NODES GPU node(s) x $GPUS_PER_NODE GPUs and $CPU_NODES CPU node(s)"
  create_nodes
  log "installing Gateway API, Istio and KEDA CRDs"
  install_crds
  log "starting Prometheus on 127.0.0.1:$PROMETHEUS_PORT"
  start_prometheus
  trap - ERR
  log "up in $((SECONDS - t0))s. export KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_down() {
  if [ -d "$PIDS" ]; then stop_processes; fi
  rm -rf "$STATE"
  log "down"
}

cmd_status() {
  local c rc=0
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then printf '%-24s running (pid %s)\n' "$c" "$(pid_of "$c")"
    else printf '%-24s stopped\n' "$c"; rc=1; fi
  done
  if [ "$rc" -eq 0 ]; then
    echo "kubeconfig: $KUBECONFIG_FILE"
    echo "prometheus: http://127.0.0.1:$PROMETHEUS_PORT"
  fi
  return "$rc"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
  identity)
    [ -n "${2:-}" ] && [ -f "$PKI/ca.crt" ] || die "usage: $0 identity NAME (on a running cluster)"
    operator_identity "$2" "$STATE/$2.kubeconfig"
    echo "$STATE/$2.kubeconfig" ;;
  stop | start | restart) cmd_component "$1" "${2:-}" ;;
  *) echo "usage: $0 up|down|status|env|identity NAME|stop|start|restart [COMPONENT]" >&2; exit 2 ;;
esac
