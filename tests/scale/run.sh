#!/usr/bin/env bash
# Scale-out tests (make test-scale): two chat-server-redis instances behind
# a real nginx and a real HAProxy, sharing one room through a real Redis,
# with Python websockets clients (tests/scale/test_scale.py). Everything on
# loopback ports picked at run time, started and stopped by the tests.
#
#   tests/scale/run.sh [pytest args...]
#
# Needs Debian's redis-server, nginx, haproxy and libhiredis-dev (.ci/run
# installs them; NOPOLL_INSTALL_DEPS=1 makes this script install them).
# Uses the interop tests' venv (same pinned requirements).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${INTEROP_VENV:-/tmp/nopoll-interop-venv}
REQS=tests/interop/requirements.txt
PYTHON=${PYTHON:-python3}

missing=()
for tool in redis-server:redis-server nginx:nginx-light haproxy:haproxy; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
[ -f /usr/include/hiredis/async.h ] || missing+=(libhiredis-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${NOPOLL_INSTALL_DEPS:-0}" = 1 ]; then
    echo "scale: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "scale: missing ${missing[*]} (NOPOLL_INSTALL_DEPS=1 installs them)" >&2
    exit 1
  fi
fi
# The packages' own services (if the system runs them) are left alone: the
# tests start their own processes on ports picked at run time.

. tests/venv.sh
ensure_venv interop "$VENV" "$REQS" "$PYTHON"

if grep -qs 'c-examples/Makefile.examples' Makefile; then
  make --no-print-directory build/examples/chat-server-redis
else
  make --no-print-directory -f c-examples/Makefile.examples build/examples/chat-server-redis
fi

exec timeout 600 "$VENV/bin/python" -m pytest tests/scale -p no:cacheprovider -rs --timeout=120 "$@"
