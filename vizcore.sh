#!/usr/bin/env bash
# The two commands of the README:
#   ./vizcore.sh app    set up .venv if needed, then start the app (http://localhost:8501)
#   ./vizcore.sh test   set up .venv with the test tools (and Debian's Chromium) if needed, then lint and test
# Also: ./vizcore.sh bench [script]  runs the benchmarks under bench/ (printing JSON).
#
# Everything is installed into an isolated environment, ./.venv (override with VIZCORE_VENV), never into the
# system interpreter: vizcore itself editable (pyproject.toml), so bench/ and scripts/ import it as installed.
# Installs go through uv (installed into the venv by pip on first use; pip is the fallback). A repeat run
# installs nothing: the environment records a hash of pyproject.toml and requirements*.txt and is reused
# while they are unchanged.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VIZCORE_VENV:-.venv}
PY="$VENV/bin/python"

log() { echo "[vizcore] $*" >&2; }

ensure_env() {  # vizcore with its dev extra (test tools: a few MB next to torch), one environment for all
  local spec=".[dev]" stamp="$VENV/.vizcore-installed" want
  want=$(cat pyproject.toml requirements*.txt | sha256sum | cut -c1-16)
  [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return  # installed from these files already
  if [ ! -x "$PY" ]; then
    log "creating $VENV with ${PYTHON:-python3}"
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
  log "installing vizcore$spec into $VENV (first time: a few minutes, torch is large)"
  if [ -x "$VENV/bin/uv" ] || "$PY" -m pip install --disable-pip-version-check -q uv; then
    "$VENV/bin/uv" pip install --python "$PY" -q -e "$spec"
  else
    "$PY" -m pip install --disable-pip-version-check -q -e "$spec"
  fi
  echo "$want" > "$stamp"
}

apt_install() {  # best effort: only as root with apt-get; $@: Debian packages
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    (apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1; }) \
      || log "could not install $* with apt-get"
  else
    log "please install: $* (Debian packages)"
  fi
}

data() {  # Fashion-MNIST for the default page; without it the app falls back to scikit-learn's digits.
  [ -d /usr/share/datasets/fashion-mnist ] || apt_install dataset-fashion-mnist
}

case "${1:-app}" in
  app)
    ensure_env
    data
    exec "$PY" -m streamlit run app.py --server.port "${PORT:-8501}" "${@:2}"
    ;;
  test)
    ensure_env
    data
    command -v chromium >/dev/null || apt_install chromium
    rc=0
    "$VENV/bin/ruff" check . || rc=$?
    # pytest's own exit code is the result (1 failures, 2 interrupted, 5 no test collected): never masked.
    "$PY" -m pytest -q "${@:2}" || rc=$?
    exit "$rc"
    ;;
  bench)
    ensure_env
    data
    shift
    [ $# -gt 0 ] || set -- bench/*.py
    for b in "$@"; do log "== $b"; "$PY" "$b"; done
    ;;
  *)
    echo "usage: $0 app|test|bench" >&2; exit 2
    ;;
esac
