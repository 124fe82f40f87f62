#!/usr/bin/env bash
# Install berth, start berthd, make a busybox base image locally and run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
if ! berth version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup berthd >/var/log/berthd.log 2>&1 &
  for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! berth image inspect busybox:latest >/dev/null 2>&1; then
  .venv/bin/python scripts/busybox_rootfs.py /tmp/berth-busybox.tar
  berth import -c 'CMD ["sh"]' /tmp/berth-busybox.tar busybox:latest
  rm -f /tmp/berth-busybox.tar
fi
berth run --rm busybox echo hello from a container
