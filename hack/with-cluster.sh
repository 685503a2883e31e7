#!/usr/bin/env bash
# Run a command against the local cluster. If the cluster was not running
# before, it is started for the command and stopped afterwards, so `make test`
# leaves no process behind; a cluster you started yourself is left running.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if "$here/local-cluster.sh" status >/dev/null 2>&1; then
  exec "$@"
fi
"$here/local-cluster.sh" up || exit 1
"$@"
rc=$?
"$here/local-cluster.sh" down
exit "$rc"
