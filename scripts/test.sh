#!/usr/bin/env bash
# Install berth and everything the tests need, then run the whole suite (no tests collected = failure).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/lint-imports
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi
exit "$rc"
