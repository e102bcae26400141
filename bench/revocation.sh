#!/usr/bin/env bash
# Revocation across two nodes on PostgreSQL (docs/CONTRACT.md#performance-targets: p99 under 100 ms).
#
# Builds the release binary and the measuring client, starts nodes A and B on a fresh schema
# with one master key, then disables a key through A ITERATIONS times (default 250) and
# measures, each time, from the moment A's answer has been read until B first refuses the
# key (B is asked over one keep-alive connection, back to back). Prints min/p50/p90/p99/max.
#
#   bash bench/revocation.sh                 # 250 revocations
#   ITERATIONS=1000 bash bench/revocation.sh
#   KEYGATE_BENCH_DATABASE_URL=postgres://user@db:5432/keygate_bench bash bench/revocation.sh
source "$(dirname "$0")/common.sh"

iterations=${ITERATIONS:-250}
port_a=${PORT_A:-18101}
port_b=${PORT_B:-18102}

bench_build revocation_propagation
bench_create_schema
cat >"$work_dir/node.toml" <<TOML
# Failed authentications are asked for on purpose here: never answer 429 instead of 401.
failed_authentications_per_minute = 1000000000
TOML
bench_start_node node-a "$port_a" --config "$work_dir/node.toml"
bench_start_node node-b "$port_b" --config "$work_dir/node.toml"

bench_machine
echo "nodes: A on :$port_a, B on :$port_b, each a release keygate serve on one PostgreSQL schema; $iterations revocations"
"$target_dir/release/examples/revocation_propagation" \
  --node-a "http://127.0.0.1:$port_a" --node-b "http://127.0.0.1:$port_b" --password "$root_password" --iterations "$iterations"
echo "load average (1, 5, 15 min) after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
