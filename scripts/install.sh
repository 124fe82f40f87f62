#!/usr/bin/env bash
# Install what berth needs on Debian/Ubuntu (as root): runtime packages, a venv with berth, and berth-shim.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in runc busybox-static tini gcc libc6-dev python3 python3-venv iproute2 nftables skopeo docker-registry umoci golang-github-opencontainers-image-spec-dev docker-compose; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  # Packaged services (docker-registry) must not start on install: tests start their own copies.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -z "$made_policy" ] || { rm -f /usr/sbin/policy-rc.d; trap - EXIT; }
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
scripts/build-shim.sh .venv/bin/berth-shim
.venv/bin/python -m compileall -q src  # bytecode ahead of time: the CLI starts fast even where PYTHONDONTWRITEBYTECODE is set
echo "berth installed: .venv/bin/berthd, .venv/bin/berth, .venv/bin/berth-shim"
