"""`make demo`: a release promoted, and a bad one rolled back, on the local cluster.

The Makefile has started the cluster and Prometheus. This starts the traffic
simulator and the operator, then:

1. applies version 1 of a chat model: it becomes the champion directly;
2. applies version 2 (healthy, fewer errors): a 50% shadow, a canary in steps
   and a champion-challenger bake-off, then promotion;
3. applies version 3 (a bad model: 20% errors, slow first tokens): rolled back
   automatically; the summary says how fast and how many requests it served.

`python hack/demo.py --down` deletes the release and stops the processes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hack.scenario import (
    KUBECONFIG,
    PROMETHEUS,
    Scenario,
    Watch,
    apply,
    challenger_ready,
    champion_is,
    error_ratio_slo,
    errors_comparison,
    release,
    rolled_back,
    ttft_slo,
)
from hack.simulator.stats import read_stats, served

SCENARIO = Scenario(namespace="demo", rate=40)
V1 = {"errorRatio": 0.02, "ttft": {"p50": 0.15, "p95": 0.4}}
V2 = {"errorRatio": 0.005, "ttft": {"p50": 0.12, "p95": 0.3}}
V3_BAD = {"errorRatio": 0.2, "ttft": {"p50": 0.9, "p95": 2.5}}
STAGES: list[dict[str, Any]] = [
    {"name": "shadow", "shadow": {"mirrorPercent": 50, "duration": "20s"}},
    {
        "name": "canary",
        "canary": {"steps": [{"weight": 10, "duration": "15s"}, {"weight": 30, "duration": "15s"}]},
    },
    {
        "name": "bake-off",
        "championChallenger": {
            "weight": 50,
            "maxDuration": "3m",
            "alpha": 0.05,
            "decision": "nonInferiority",
            "margin": 0.5,
            "onInconclusive": "promote",
            "metrics": [errors_comparison()],
        },
    },
]
SLOS = [error_ratio_slo(max_ratio=0.05, failure_limit=1), ttft_slo(0.75, 1, window="10s")]


def version(number: str, behaviour: dict[str, Any]) -> dict[str, Any]:
    return release(
        SCENARIO.namespace, SCENARIO.name, number, behaviour, STAGES, SLOS, interval="5s"
    )


def run() -> None:
    t0 = time.monotonic()
    print("== setting up: CRDs, SLO templates, namespace demo, simulator, operator")
    SCENARIO.up()
    print(f"   logs: {SCENARIO.folder}/operator.log, {SCENARIO.folder}/simulator.log")
    watch = Watch(SCENARIO)

    print(f"\n== version 1.0.0 becomes champion directly ({SCENARIO.rate:.0f} user req/s)")
    apply(version("1.0.0", V1))
    watch.until(champion_is("1.0.0"), 120, "version 1 becoming champion")

    print("\n== version 2.0.0 (healthy, 0.5% errors vs 2%): shadow -> canary -> bake-off")
    apply(version("2.0.0", V2))
    watch.until(champion_is("2.0.0"), 480, "version 2 being promoted")

    print("\n== version 3.0.0 (bad: 20% errors, TTFT p95 ~2.5 s): expect a rollback")
    apply(version("3.0.0", V3_BAD))
    ready = watch.until(challenger_ready, 180, "version 3's pods becoming Ready")
    bad_revision = ready["status"]["challenger"]["revision"]
    ready_at = time.monotonic()
    final = watch.until(rolled_back, 300, "version 3 being rolled back")
    seconds_to_rollback = time.monotonic() - ready_at

    stats = read_stats(SCENARIO.stats_file)
    history = final["status"].get("history") or []
    print("\n== summary")
    print(f"  champion: version {final['status']['champion'].get('modelVersion')}")
    if history:
        last = history[-1]
        print(f"  version 3: {last.get('outcome')} ({last.get('reason')})")
        print(f"    {last.get('message', '')}")
    print(f"  from version 3 Ready to rolled back: {seconds_to_rollback:.0f}s")
    print(
        f"  requests version 3 served: {served(stats, bad_revision)} from users,"
        f" {served(stats, bad_revision, kind='mirror')} mirrored copies"
    )
    print(f"  the demo took {time.monotonic() - t0:.0f}s; `make demo-down` cleans up.")
    print(
        f"  look around: KUBECONFIG={KUBECONFIG} kubectl get mrel -n {SCENARIO.namespace};"
        f" Prometheus at {PROMETHEUS}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--down", action="store_true", help="delete the release, stop processes")
    args = parser.parse_args()
    if args.down:
        SCENARIO.down()
        return
    try:
        run()
    except TimeoutError as error:
        sys.exit(f"demo: {error}")


if __name__ == "__main__":
    main()
