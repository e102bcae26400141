# Shared by the PostgreSQL benchmarks (sourced, not run): build the release binaries, make a
# fresh schema, start `keygate serve` nodes on it, and clean everything up on exit.
#
# KEYGATE_BENCH_DATABASE_URL names the database (default: KEYGATE_TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/test). Each run gets its own schema kg_bench_<random>,
# dropped at the end; nodes reach it through `options=-c search_path=...` in their URL.

set -euo pipefail

bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$bench_root/target}
database_url=${KEYGATE_BENCH_DATABASE_URL:-${KEYGATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}}
schema=kg_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
work_dir=$(mktemp -d)
root_password=bench-root-password-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
master_key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
keygate=$target_dir/release/keygate
node_pids=()

# The node URL: this run's schema on the search path, the node's name as application_name.
node_database_url() {
  local separator='?'
  [[ $database_url == *\?* ]] && separator='&'
  printf '%s%soptions=-c%%20search_path%%3D%s&application_name=%s' "$database_url" "$separator" "$schema" "$1"
}

bench_build() {
  echo "building release binaries into $target_dir (slow on a small machine)..." >&2
  (cd "$bench_root" && CARGO_TARGET_DIR=$target_dir cargo build --release --workspace --bin keygate "${@/#/--example=}" >&2)
}

bench_cleanup() {
  local pid
  for pid in "${node_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${node_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  psql -q "$database_url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work_dir"
}

bench_create_schema() {
  trap bench_cleanup EXIT
  psql -q -v ON_ERROR_STOP=1 "$database_url" -c "CREATE SCHEMA $schema" >/dev/null
  echo "schema $schema in $database_url" >&2
}

# bench_start_node NAME PORT [more serve arguments]: starts a node in the background and
# waits until /healthz answers; its pid is then ${node_pids[-1]}, its log $work_dir/NAME.log.
bench_start_node() {
  local name=$1 port=$2
  shift 2
  KEYGATE_MASTER_KEY=$master_key KEYGATE_ROOT_PASSWORD=$root_password RUST_LOG=${RUST_LOG:-warn} \
    "$keygate" serve --database-url "$(node_database_url "$name")" --listen "127.0.0.1:$port=ap-southeast-1" "$@" \
    >"$work_dir/$name.log" 2>&1 &
  local pid=$!
  node_pids+=("$pid")
  local tries
  for tries in $(seq 1 600); do
    if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "node $name exited:" >&2
      cat "$work_dir/$name.log" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "node $name did not answer /healthz within 30 s" >&2
  return 1
}

# bench_stop_node PID: a graceful stop (SIGTERM), waiting for the exit.
bench_stop_node() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# What the benchmark ran on, for the report.
bench_machine() {
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "postgres: $(psql -At "$database_url" -c 'SHOW server_version')"
  echo "load average (1, 5, 15 min) before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here)"
  echo "commit: $(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$bench_root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
}
