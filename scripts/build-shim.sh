#!/bin/sh
# Build berth-shim, the per-container monitor, from every shim/*.c (one binary).
# Usage: scripts/build-shim.sh [OUT]   (default OUT: .venv/bin/berth-shim under the repo root)
# Works from any directory; a relative OUT is taken relative to the caller's cwd.
set -eu

script_dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
repo_root=$(CDPATH= cd -- "$script_dir/.." && pwd)

out=${1:-"$repo_root/.venv/bin/berth-shim"}
mkdir -p -- "$(dirname -- "$out")"

gcc -O2 -Wall -Wextra -o "$out" "$repo_root"/shim/*.c
echo "built $out"
