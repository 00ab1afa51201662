#!/usr/bin/env bash
# One entry point that sets everything up on a fresh machine, then runs what you ask for:
#   ./run.sh demo    offline demo: bundled Slack emulator -> Prefect flow -> DuckDB
#   ./run.sh test    the test suite (what CI runs)
#   ./run.sh lint    ruff check + format check
#   ./run.sh bench   the benchmarks at their small default sizes
#   ./run.sh alerts  create/update the alert automations on the server in PREFECT_API_URL
#   ./run.sh import-export PATH.zip   backfill from a Slack export, then the daily run continues
#   ./run.sh <args>  anything else goes to slack_pipeline_with_prefect.py (run, serve, ...)
set -euo pipefail
cd "$(dirname "$0")"

UV_VERSION=0.13.9
VENV=.venv
PY="$VENV/bin/python"

setup() {
  # Recreate the environment only when requirements.txt changed since the last install.
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  echo "Setting up $VENV (one time, ~30 s)..." >&2
  command -v python3 >/dev/null || { echo "error: python3 (3.11+) is required" >&2; exit 2; }
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  "$PY" -m pip install --quiet "uv==$UV_VERSION"
  # Bytecode compiled once here: this machine sets PYTHONDONTWRITEBYTECODE, which would make
  # every later start of Prefect + dlt seconds slower.
  UV_PYTHON_DOWNLOADS=never "$VENV/bin/uv" pip install --quiet --python "$PY" \
    --compile-bytecode -r requirements.txt
  echo "$want" > "$stamp"
}

export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}"

setup
case "${1:-demo}" in
  test)  shift; exec "$PY" -m pytest "$@" ;;
  lint)  "$VENV/bin/ruff" check . && exec "$VENV/bin/ruff" format --check . ;;
  bench) shift; exec "$PY" -m bench.smoke "$@" ;;
  demo)  shift; exec "$PY" slack_pipeline_with_prefect.py demo "$@" ;;
  alerts) shift; exec "$PY" -m orchestration.automations apply "$@" ;;
  import-export) shift; exec "$PY" slack_pipeline_with_prefect.py import-export "$@" ;;
  *)     exec "$PY" slack_pipeline_with_prefect.py "$@" ;;
esac
