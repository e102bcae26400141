#!/usr/bin/env bash
# CreateApiKey bursts on PostgreSQL, and revocation across nodes while they run, for this
# build and a baseline build in one run (docs/PERFORMANCE.md, "Group commit").
#
# For each build (the baseline first, then this tree), on a fresh schema of its own: two
# release nodes, A and B, on one PostgreSQL; then
#   1. CREATE_CLIENTS clients (default 32, half on each node, bearer session tokens) call
#      CreateApiKey back to back for WRITE_SECONDS (default 15): keys created per second;
#      and where the machine's CPU went meanwhile: the two nodes, their PostgreSQL
#      connections, the clients, and everything else (other work on the machine);
#   2. the same load again, and meanwhile bench/revocation.sh's measurement
#      (`revocation_propagation`: disable through A until B refuses, ITERATIONS times,
#      default 200), started a second into the load, asking B every PAUSE_MILLISECONDS
#      (default 2) rather than back to back: asked back to back, B and the prober took
#      most of a core from the load measured beside them. Each revocation figure is then
#      late by at most the pause.
#
# Only the keygate binary differs between the two: the load and the prober are this tree's
# examples for both. The baseline is BASELINE_REV (default main), exported with `git
# archive` and built in the same target directory (so only the workspace's own crates
# build twice), or the keygate binary already in BASELINE_BIN (a directory); CURRENT_BIN
# likewise names a directory holding keygate, management_write_throughput and
# revocation_propagation already built from this tree.
#
#   bash bench/group_commit.sh
#   BASELINE_REV=27d207d WRITE_SECONDS=30 bash bench/group_commit.sh
#   BASELINE_BIN=/tmp/baseline-bin bash bench/group_commit.sh
#   BASELINE_BIN=/tmp/baseline-bin CURRENT_BIN=/tmp/current-bin bash bench/group_commit.sh
source "$(dirname "$0")/common.sh"

write_seconds=${WRITE_SECONDS:-15}
clients=${CREATE_CLIENTS:-32}
iterations=${ITERATIONS:-200}
pause_milliseconds=${PAUSE_MILLISECONDS:-2}
port_a=${PORT_A:-18121}
port_b=${PORT_B:-18122}
baseline_rev=${BASELINE_REV:-main}
examples=(management_write_throughput revocation_propagation)

mkdir -p "$work_dir/baseline" "$work_dir/current"
if [ -n "${BASELINE_BIN:-}" ]; then
  baseline_label="binaries in $BASELINE_BIN"
  cp "$BASELINE_BIN/keygate" "$work_dir/baseline/"
else
  baseline_label="$baseline_rev ($(git -C "$bench_root" rev-parse --short "$baseline_rev"))"
  echo "building the baseline $baseline_label..." >&2
  mkdir -p "$work_dir/baseline-src"
  git -C "$bench_root" archive "$baseline_rev" | tar -x -C "$work_dir/baseline-src"
  (cd "$work_dir/baseline-src" && CARGO_TARGET_DIR=$target_dir cargo build --release --bin keygate >&2)
  cp "$target_dir/release/keygate" "$work_dir/baseline/"
fi
if [ -n "${CURRENT_BIN:-}" ]; then
  cp "$CURRENT_BIN/keygate" "${examples[@]/#/$CURRENT_BIN/}" "$work_dir/current/"
else
  bench_build "${examples[@]}"
  cp "$target_dir/release/keygate" "${examples[@]/#/$target_dir/release/examples/}" "$work_dir/current/"
fi

cat >"$work_dir/node.toml" <<TOML
# Failed authentications are asked for on purpose (B refusing a revoked key): never 429.
failed_authentications_per_minute = 1000000000
[[regions]]
id = "ap-southeast-1"
key_limit = 100000000
TOML

bench_machine
echo "postgres settings: fsync=$(psql -At "$database_url" -c 'SHOW fsync') synchronous_commit=$(psql -At "$database_url" -c 'SHOW synchronous_commit')"
echo "baseline: $baseline_label; this build: the tree above"
# CPU ticks (user + system) of every process, "pid ticks" per line; the machine's busy and
# idle ticks on the last line, as "machine busy idle".
cpu_snapshot() {
  # cat, not awk, opens the files: a process that ends meanwhile is skipped, not fatal.
  cat /proc/[0-9]*/stat 2>/dev/null |
    awk '{ split($0, head, " "); match($0, /\) /); split(substr($0, RSTART + 2), fields, " "); print head[1], fields[12] + fields[13] }' || true
  awk '/^cpu / { print "machine", $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat
}
# cpu_split BEFORE AFTER SECONDS "NAME PID..."...: the CPU seconds each group of processes
# used between the snapshots, the rest of the machine's busy time, and its idle time.
cpu_split() {
  local before=$1 after=$2 seconds=$3 hertz group name pids used total=0 line
  shift 3
  hertz=$(getconf CLK_TCK)
  line="  CPU over the ${seconds}s of load ($(nproc) cores, so $(($(nproc) * seconds)) CPU-seconds in all):"
  for group in "$@"; do
    name=${group%% *}
    pids=" ${group#* } "
    used=$(awk -v pids="$pids" 'NR == FNR { if (index(pids, " " $1 " ")) start[$1] = $2; next }
      index(pids, " " $1 " ") { sum += $2 - start[$1] } END { print sum + 0 }' "$before" "$after")
    total=$((total + used))
    line+=" $name $(echo "scale=1; $used / $hertz" | bc) s,"
  done
  read -r _ busy_before idle_before < <(grep '^machine' "$before")
  read -r _ busy_after idle_after < <(grep '^machine' "$after")
  line+=" everything else $(echo "scale=1; ($busy_after - $busy_before - $total) / $hertz" | bc) s, idle $(echo "scale=1; ($idle_after - $idle_before) / $hertz" | bc) s"
  echo "$line"
}

schemas=()
drop_schemas() {
  local name
  for name in "${schemas[@]}"; do
    psql -q "$database_url" -c "DROP SCHEMA IF EXISTS $name CASCADE" >/dev/null 2>&1 || true
  done
  bench_cleanup
}
trap drop_schemas EXIT
base_schema=$schema

for build in baseline current; do
  schema=${base_schema}_$build
  schemas+=("$schema")
  psql -q -v ON_ERROR_STOP=1 "$database_url" -c "CREATE SCHEMA $schema" >/dev/null
  keygate=$work_dir/$build/keygate
  bench_start_node "gc-$build-a" "$port_a" --config "$work_dir/node.toml"
  bench_start_node "gc-$build-b" "$port_b" --config "$work_dir/node.toml"
  nodes="http://127.0.0.1:$port_a,http://127.0.0.1:$port_b"
  echo
  echo "== $build: CreateApiKey, $clients clients over two nodes, ${write_seconds}s =="
  "$work_dir/current/management_write_throughput" --nodes "$nodes" --password "$root_password" \
    --operation create --concurrency "$clients" --seconds "$write_seconds" &
  load=$!
  # The CPU split covers the load from its second second to a second before its end.
  sleep 1
  postgres_pids=$(psql -At "$database_url" -c "SELECT pid FROM pg_stat_activity WHERE application_name IN ('gc-$build-a', 'gc-$build-b')" | tr '\n' ' ')
  cpu_snapshot >"$work_dir/cpu.before"
  sleep $((write_seconds - 2))
  cpu_snapshot >"$work_dir/cpu.after"
  wait "$load"
  cpu_split "$work_dir/cpu.before" "$work_dir/cpu.after" $((write_seconds - 2)) "nodes ${node_pids[*]}" \
    "their-postgres-connections $postgres_pids" "clients $load"
  echo "-- the same load, and revocation across the nodes meanwhile ($iterations revocations, B asked every ${pause_milliseconds} ms):"
  "$work_dir/current/management_write_throughput" --nodes "$nodes" --password "$root_password" \
    --operation create --concurrency "$clients" --seconds "$write_seconds" >"$work_dir/load.txt" &
  load=$!
  sleep 1
  started=$SECONDS
  "$work_dir/current/revocation_propagation" --node-a "http://127.0.0.1:$port_a" --node-b "http://127.0.0.1:$port_b" \
    --password "$root_password" --iterations "$iterations" --pause-milliseconds "$pause_milliseconds" >"$work_dir/revocation.txt" &
  prober=$!
  # The same CPU split as above, the prober (revocation_propagation) apart.
  postgres_pids=$(psql -At "$database_url" -c "SELECT pid FROM pg_stat_activity WHERE application_name IN ('gc-$build-a', 'gc-$build-b')" | tr '\n' ' ')
  cpu_snapshot >"$work_dir/cpu.before"
  sleep $((write_seconds - 3))
  cpu_snapshot >"$work_dir/cpu.after"
  wait "$prober"
  revocation_seconds=$((SECONDS - started))
  wait "$load"
  sed 's/^/  /' "$work_dir/revocation.txt"
  sed 's/^/  /' "$work_dir/load.txt"
  cpu_split "$work_dir/cpu.before" "$work_dir/cpu.after" $((write_seconds - 3)) "nodes ${node_pids[*]}" \
    "their-postgres-connections $postgres_pids" "clients $load" "prober $prober"
  if [ $((revocation_seconds + 1)) -gt "$write_seconds" ]; then
    echo "  WARNING: the revocations took ${revocation_seconds}s, past the end of the load: lower ITERATIONS or raise WRITE_SECONDS"
  else
    echo "  the revocations took ${revocation_seconds}s, all within the load"
  fi
  echo "changes in the feed: $(psql -At "$database_url" -c "SELECT count(*) FROM $schema.changes")"
  for pid in "${node_pids[@]}"; do bench_stop_node "$pid"; done
  node_pids=()
done
echo "load average (1, 5, 15 min) after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
