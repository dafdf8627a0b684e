#!/usr/bin/env bash
# The two commands of the README:
#   ./vizcore.sh app    install what is missing, then start the app (http://localhost:8501)
#   ./vizcore.sh test   install what is missing (test tools and Chromium included), then run the test suite
# Also: ./vizcore.sh bench [script]  runs the benchmarks under bench/ (printing JSON).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # bench/ and scripts/ import vizcore from this checkout

need_python() {  # $1: requirements file, $2...: modules that must import
  local req=$1; shift
  if ! "$PY" -c "import $(IFS=,; echo "$*")" 2>/dev/null; then
    echo "[vizcore] installing Python packages from $req (first time: a few minutes, torch is large)…"
    "$PY" -m pip install --disable-pip-version-check -q -r "$req"
  fi
}

apt_install() {  # best effort: only as root with apt-get; $@: Debian packages
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq "$@" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null 2>&1; }) \
      || echo "[vizcore] could not install $* with apt-get"
  else
    echo "[vizcore] please install: $* (Debian packages)"
  fi
}

base() {
  need_python requirements.txt torch torchvision streamlit plotly captum sklearn safetensors PIL
  # Fashion-MNIST for the default page; without it the app falls back to scikit-learn's digits.
  [ -d /usr/share/datasets/fashion-mnist ] || apt_install dataset-fashion-mnist
}

case "${1:-app}" in
  app)
    base
    exec "$PY" -m ui.serve --server.port "${PORT:-8501}" "${@:2}"
    ;;
  test)
    base
    need_python requirements-dev.txt pytest playwright
    command -v chromium >/dev/null || apt_install chromium
    exec "$PY" -m pytest -q "${@:2}"
    ;;
  bench)
    base
    shift
    for b in "${@:-bench/*.py}"; do echo "== $b" >&2; "$PY" "$b"; done
    ;;
  *)
    echo "usage: $0 app|test|bench" >&2; exit 2
    ;;
esac
