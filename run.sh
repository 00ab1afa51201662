#!/usr/bin/env bash
# One entry point that sets everything up on a fresh machine, then runs what you ask for:
#   ./run.sh demo    offline demo: bundled Slack emulator -> Prefect flow -> DuckDB
#   ./run.sh test    the test suite (what CI runs), after setting up the BigQuery emulator
#   ./run.sh lint    ruff check + format check
#   ./run.sh bench   the benchmarks at their small default sizes
#   ./run.sh check   token, scopes, channels and destination of a run; loads nothing
#   ./run.sh alerts  create/update the alert automations on the server in PREFECT_API_URL
#   ./run.sh workspaces  one run of the parent flow: every configured workspace on the pool
#   ./run.sh python  the project's Python with its settings (e.g. -m tooling.bench.throughput ...)
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
  # every later start of Prefect + dlt slower.
  UV_PYTHON_DOWNLOADS=never "$VENV/bin/uv" pip install --quiet --python "$PY" \
    --compile-bytecode -r requirements.txt
  echo "$want" > "$stamp"
}

BQEMU_VENV=.venv-bqemu
BQEMU_REQUIREMENTS=tooling/requirements-bqemu.txt

setup_bigquery_emulator() {
  # The BigQuery emulator for the tests, in its own venv (its duckdb and sqlglot pins clash with
  # dlt's); recreated only when requirements-bqemu.txt changed, like .venv above.
  local stamp="$BQEMU_VENV/.requirements.sha256"
  local want
  want=$(sha256sum "$BQEMU_REQUIREMENTS" | cut -d' ' -f1)
  if [[ -x "$BQEMU_VENV/bin/bqemulator" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  echo "Setting up $BQEMU_VENV, the BigQuery emulator (one time, ~15 s)..." >&2
  rm -rf "$BQEMU_VENV"
  UV_PYTHON_DOWNLOADS=never "$VENV/bin/uv" venv --quiet --python "$(command -v python3)" "$BQEMU_VENV"
  UV_PYTHON_DOWNLOADS=never "$VENV/bin/uv" pip install --quiet --python "$BQEMU_VENV/bin/python" \
    --compile-bytecode -r "$BQEMU_REQUIREMENTS"
  echo "$want" > "$stamp"
}

prepare_prefect_home() {
  # The home of a local Prefect API (the demo's, or the temporary one a one-off run starts),
  # prepared once here: its first server start migrates the SQLite database and registers block
  # types, which a first demo would otherwise spend inside its own wall. Not with a server of
  # your own (PREFECT_API_URL) or another database.
  [[ -n "${PREFECT_API_URL:-}" || -n "${PREFECT_API_DATABASE_CONNECTION_URL:-}" ]] && return
  local home="${PREFECT_HOME:-$HOME/.prefect}"
  [[ -f "$home/prefect.db" && -f "$home/memo_store.toml" ]] && return
  echo "Preparing Prefect's database in $home (one time, ~12 s)..." >&2
  "$PY" -m orchestration.prefect_server prepare-home "$home"
}

# Settings: Prefect's in prefect.toml, dlt's in .dlt/; the allocator settings are applied by
# the run's process itself (orchestration/memory.py), so that `python slack_pipeline_with_prefect.py`,
# `serve` and a worker get them too.

setup
case "${1:-demo}" in
  test)  shift; setup_bigquery_emulator; exec "$PY" -m pytest "$@" ;;
  lint)  "$VENV/bin/ruff" check . && exec "$VENV/bin/ruff" format --check . ;;
  bench) shift; exec "$PY" -m tooling.bench.smoke "$@" ;;
  demo)  shift; prepare_prefect_home; exec "$PY" -m tooling.demo "$@" ;;
  alerts) shift; exec "$PY" -m orchestration.automations apply "$@" ;;
  workspaces) shift; exec "$PY" slack_workspaces_with_prefect.py "$@" ;;
  python) shift; exec "$PY" "$@" ;;
  reconcile) shift; exec "$PY" slack_pipeline_with_prefect.py reconcile "$@" ;;
  import-export) shift; prepare_prefect_home; exec "$PY" slack_pipeline_with_prefect.py import-export "$@" ;;
  *)     prepare_prefect_home; exec "$PY" slack_pipeline_with_prefect.py "$@" ;;
esac
