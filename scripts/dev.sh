#!/usr/bin/env bash
# One entry point for a fresh machine:  bash scripts/dev.sh app   |   bash scripts/dev.sh test
# Creates .venv, installs the pinned requirements (and, for tests, Debian's chromium + ffmpeg),
# then starts the app or runs the whole test suite, offline.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

ensure_venv() {
  local reqs=$1 stamp
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  stamp="$VENV/.installed-$(cat requirements.txt "$reqs" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r "$reqs"
    touch "$stamp"
  fi
}

ensure_system_packages() {
  # Browser tests drive Debian's Chromium (never a downloaded browser); Gradio uses the ffmpeg CLI.
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

case "${1:-}" in
  app)
    ensure_venv requirements.txt
    shift
    exec "$VENV/bin/python" app.py "$@"
    ;;
  test)
    ensure_venv requirements-dev.txt
    ensure_system_packages
    shift
    exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh app|test [extra args]" >&2
    exit 2
    ;;
esac
