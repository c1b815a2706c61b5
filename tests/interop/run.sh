#!/usr/bin/env bash
# Interop tests of the C examples: the chat server against Python websockets
# clients (test_chat.py) and against headless Chromium (test_chat_browser.py).
#
#   tests/interop/run.sh [pytest args...]
#
# Environment:
#   INTEROP_VENV                venv to create/use (default /tmp/nopoll-interop-venv)
#   NOPOLL_INSTALL_DEPS=1       apt-get install chromium (and python3-venv) if
#                               missing; without it the browser test is skipped
#   NOPOLL_SKIP_EXAMPLES_BUILD=1  don't run `make examples` first
#   INTEROP_TEST_TIMEOUT        per-test limit in seconds (default 120)
#
# Exits with pytest's status; its last line is pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${INTEROP_VENV:-/tmp/nopoll-interop-venv}
REQS=tests/interop/requirements.txt
PYTHON=${PYTHON:-python3}

apt_install() {
  echo "interop: apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
}

# 1. Python venv with the pinned requirements (reinstalled when they change).
. tests/venv.sh
if ! ensure_venv interop "$VENV" "$REQS" "$PYTHON"; then
  if [ "${NOPOLL_INSTALL_DEPS:-0}" = 1 ]; then
    apt_install python3-venv
    rm -rf "$VENV"
    ensure_venv interop "$VENV" "$REQS" "$PYTHON"
  else
    echo "interop: cannot set up a venv with $PYTHON (install python3-venv, or set NOPOLL_INSTALL_DEPS=1)" >&2
    exit 1
  fi
fi

# 2. Chromium for the browser test (Debian's package; browsers are never downloaded).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "${NOPOLL_INSTALL_DEPS:-0}" = 1 ]; then
    apt_install chromium
  else
    echo "interop: chromium not installed: the browser test will be skipped (NOPOLL_INSTALL_DEPS=1 installs it)"
  fi
fi

# 3. The examples (make and cargo only rebuild what changed).
if [ "${NOPOLL_SKIP_EXAMPLES_BUILD:-0}" != 1 ] || [ ! -x build/examples/chat-server ]; then
  if grep -qs 'c-examples/Makefile.examples' Makefile; then
    make --no-print-directory examples
  else
    make --no-print-directory -f c-examples/Makefile.examples examples
  fi
fi

# 4. The tests, each bounded in time.
exec "$VENV/bin/python" -m pytest tests/interop -p no:cacheprovider -rs \
  --timeout="${INTEROP_TEST_TIMEOUT:-120}" "$@"
