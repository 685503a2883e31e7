#!/usr/bin/env bash
# pytest with exit code 5 ("no tests collected") turned into a clear failure:
# a suite that selects nothing must not pass silently.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests from: $*; that is a mistake in the selection, not a pass" >&2
  exit 1
fi
exit "$rc"
