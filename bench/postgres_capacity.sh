#!/usr/bin/env bash
# How far one PostgreSQL carries (docs/DEPLOYMENT.md, "How far one PostgreSQL per region
# carries"). On a fresh schema, with release binaries:
#   1. the write ceiling: management writes per second from concurrent clients over two
#      nodes (key disable/enable toggles, then key creates), and the connections each node holds;
#   2. the registry: resident memory and start-up time of one node holding the keys in
#      KEY_COUNTS (rows inserted with SQL: random 32-byte digests, one account "bulk"), with
#      glibc's default malloc arenas and with MALLOC_ARENA_MAX=1;
#   3. /auth/verify throughput of one node (wrk on loopback), beside /healthz on the same node.
#
#   bash bench/postgres_capacity.sh
#   KEY_COUNTS="100000 1000000" WRITE_SECONDS=10 bash bench/postgres_capacity.sh
source "$(dirname "$0")/common.sh"

key_counts=${KEY_COUNTS:-"100000 1000000"}
write_seconds=${WRITE_SECONDS:-10}
wrk_seconds=${WRK_SECONDS:-10}
port_a=${PORT_A:-18111}
port_b=${PORT_B:-18112}
sql() { psql -q -At -v ON_ERROR_STOP=1 "$database_url" -c "SET search_path TO $schema; $1"; }

bench_build management_write_throughput
bench_create_schema
cat >"$work_dir/node.toml" <<TOML
failed_authentications_per_minute = 1000000000
[[regions]]
id = "ap-southeast-1"
key_limit = 100000000
TOML
bench_machine
echo "postgres settings: fsync=$(psql -At "$database_url" -c 'SHOW fsync') synchronous_commit=$(psql -At "$database_url" -c 'SHOW synchronous_commit') shared_buffers=$(psql -At "$database_url" -c 'SHOW shared_buffers')"

echo
echo "== 1. management writes (two nodes, one PostgreSQL) =="
bench_start_node bench-node-a "$port_a" --config "$work_dir/node.toml"
bench_start_node bench-node-b "$port_b" --config "$work_dir/node.toml"
nodes="http://127.0.0.1:$port_a,http://127.0.0.1:$port_b"
pg_fsync=$(command -v pg_test_fsync || ls /usr/lib/postgresql/*/bin/pg_test_fsync 2>/dev/null | tail -n 1 || true)
if [ -n "$pg_fsync" ]; then
  echo "the disk (same filesystem as PostgreSQL's here): $("$pg_fsync" -s 2 -f "$work_dir/fsync.test" | grep -m1 -E '^ +fdatasync' | tr -s ' ')"
fi
# What the nodes' connections wait on while 8 clients write: every 50 ms, one row per busy connection.
sample_waits() {
  local deadline=$((SECONDS + write_seconds))
  while [ $SECONDS -lt $deadline ]; do
    psql -At "$database_url" -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU') FROM pg_stat_activity
      WHERE application_name IN ('bench-node-a', 'bench-node-b') AND state <> 'idle' AND query NOT ILIKE 'LISTEN%'"
    sleep 0.05
  done >"$work_dir/waits.txt"
}
for concurrency in 1 8 32; do
  [ "$concurrency" = 8 ] && { sample_waits & sampler=$!; }
  "$target_dir/release/examples/management_write_throughput" --nodes "$nodes" --password "$root_password" \
    --operation toggle --concurrency "$concurrency" --seconds "$write_seconds"
  if [ "$concurrency" = 8 ]; then
    wait "$sampler"
    echo "  while 8 clients wrote, the busy connections of the nodes were (samples every 50 ms):"
    sort "$work_dir/waits.txt" | uniq -c | sort -rn | head -n 6 | sed 's/^/   /'
  fi
done
"$target_dir/release/examples/management_write_throughput" --nodes "$nodes" --password "$root_password" \
  --operation create --concurrency 16 --seconds "$write_seconds"
echo "connections to PostgreSQL per node after the load (pool + LISTEN):"
psql -At "$database_url" -c "SELECT application_name, count(*) FILTER (WHERE query ILIKE 'LISTEN%') AS listen, count(*) AS total FROM pg_stat_activity WHERE application_name IN ('bench-node-a', 'bench-node-b') GROUP BY 1 ORDER BY 1" |
  sed 's/^/  /; s/|/: LISTEN /; s/|/, total /'
echo "changes in the feed: $(sql 'SELECT count(*) FROM changes')"
for pid in "${node_pids[@]}"; do bench_stop_node "$pid"; done
node_pids=()

echo
echo "== 2. the registry: memory and start-up of one node =="
# Start-up: /healthz answers after the first full load; the change-feed follower then loads
# everything once more (/readyz shows its feedVersion once it has; a 503 on the way means
# that second load outlasted max_staleness_seconds). Memory is read 3 s after that, with
# glibc's default arenas and with MALLOC_ARENA_MAX=1.
measure_node() {
  local arena_setting
  for arena_setting in default 1; do
    local started healthy ready pid answer stale_answers=0
    started=$(date +%s%N)
    if [ "$arena_setting" = default ]; then
      bench_start_node bench-node-m "$port_a" --config "$work_dir/node.toml"
    else
      MALLOC_ARENA_MAX=$arena_setting bench_start_node bench-node-m "$port_a" --config "$work_dir/node.toml"
    fi
    healthy=$(date +%s%N)
    while :; do
      answer=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port_a/readyz")
      [ "${answer##* }" = 503 ] && stale_answers=$((stale_answers + 1))
      [ "$(echo "${answer% *}" | jq -r '.feedVersion // 0')" -gt 0 ] && [ "${answer##* }" = 200 ] && break
      sleep 0.1
    done
    ready=$(date +%s%N)
    sleep 3
    pid=${node_pids[-1]}
    printf 'keys=%s malloc_arenas=%s healthz_after_s=%.2f feed_resynced_after_s=%.2f readyz_503_answers=%s vmrss_mib=%.0f vmhwm_mib=%.0f\n' \
      "$(sql 'SELECT count(*) FROM api_keys')" "$arena_setting" "$(echo "($healthy - $started) / 1000000000" | bc -l)" \
      "$(echo "($ready - $started) / 1000000000" | bc -l)" "$stale_answers" \
      "$(echo "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") / 1024" | bc -l)" \
      "$(echo "$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") / 1024" | bc -l)"
    bench_stop_node "$pid"
    node_pids=()
  done
}
measure_node
bulk_account=$(sql "INSERT INTO accounts (name, password_hash, created_at) VALUES ('bulk', 'no-login', 0) RETURNING account_id")
sql "INSERT INTO workspaces (workspace_id, account_id, region, name, is_default, created_at) VALUES ('llm-bulkbulkbulkbulk', $bulk_account, 'ap-southeast-1', 'Default', TRUE, 0)" >/dev/null
inserted=0
for count in $key_counts; do
  started=$(date +%s)
  sql "INSERT INTO api_keys (account_id, region, workspace_id, created_by, format, key_digest, masked_key, auth_type, created_at)
       SELECT $bulk_account, 'ap-southeast-1', 'llm-bulkbulkbulkbulk', 'bulk', 'secure',
              decode(md5(random()::text || g::text) || md5(g::text || random()::text), 'hex'), 'sk-ws-bulk****bulk', 'All', 0
       FROM generate_series($((inserted + 1)), $count) AS g" >/dev/null
  sql "ANALYZE api_keys" >/dev/null
  echo "inserted $((count - inserted)) keys with SQL in $(($(date +%s) - started)) s"
  inserted=$count
  measure_node
done

echo
echo "== 3. /auth/verify on one node holding the keys above (wrk on the same cores) =="
bench_start_node bench-node-w "$port_a" --config "$work_dir/node.toml"
token=$(curl -fs "http://127.0.0.1:$port_a/keygate/v1/sessions" -H 'content-type: application/json' \
  -d "{\"account\":\"root\",\"password\":\"$root_password\"}" | jq -r .token)
key=$(curl -fs -X POST "http://127.0.0.1:$port_a/modelstudio/apikeys" -H "x-acs-bearer-token: $token" | jq -r .apiKey.apiKeyValue)
# Wait for the follower's own full load too, so that wrk measures a settled node.
until [ "$(curl -fs "http://127.0.0.1:$port_a/readyz" | jq -r '.feedVersion // 0')" -gt 0 ]; do sleep 0.1; done
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port_a/auth/verify" -H "Authorization: Bearer $key")" = 200 ]; do sleep 0.05; done
for connections in 16 64; do
  echo "-- /auth/verify, a valid key, $connections connections, ${wrk_seconds}s:"
  wrk -t2 -c"$connections" -d"${wrk_seconds}s" --latency -H "Authorization: Bearer $key" "http://127.0.0.1:$port_a/auth/verify" |
    grep -E 'Requests/sec|Latency  |50%|99%|Non-2xx'
done
echo "-- /healthz (no key work) on the same node, 64 connections, ${wrk_seconds}s:"
wrk -t2 -c64 -d"${wrk_seconds}s" --latency "http://127.0.0.1:$port_a/healthz" | grep -E 'Requests/sec|Latency  |50%|99%'
echo "load average (1, 5, 15 min) after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
