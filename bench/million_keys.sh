#!/usr/bin/env bash
# A million keys (docs/PERFORMANCE.md, "A million keys"): how long `keygate serve` takes to
# answer /readyz with N keys, and its resident memory after verifying a sample of them, on
# SQLite and on PostgreSQL.
#
# The keys are real: `generate_keys` (examples/ of the keygate package) makes them as CreateApiKey does
# and prints each one's digest and masked form; those go into `api_keys` with SQL (a
# multi-row INSERT on SQLite, COPY on PostgreSQL), in the columns the create path writes, for
# the root account's default workspace. The plaintexts of SAMPLE keys spread over the N
# (the first and the last among them) are kept in the run's work directory and presented
# to /auth/verify after start, each expected to answer 200.
#
# Each measurement starts `keygate serve` on the seeded database, counts the seconds from
# the start of the process to the first 200 of /readyz and the CPU time it had used by then
# (all threads, user and system: cpu_s), verifies the sample, waits 2 s and reads VmRSS
# and VmHWM from /proc/PID/status. With BASELINE_BIN (another build's keygate),
# that build is measured on the same databases too; with VARIANTS ("label=path ...": other
# builds of this tree, such as another allocator's), each of them as well. A round measures
# the baseline, this build and each variant in turn; ROUNDS rounds alternate them, so that
# the machine's load falls on each alike.
#
#   bash bench/million_keys.sh                                  # N=1000000
#   N=20000 bash bench/million_keys.sh                          # a smoke run
#   BASELINE_BIN=/tmp/keygate-before bash bench/million_keys.sh # against a baseline
#   BACKENDS=sqlite N=20000 bash bench/million_keys.sh          # one backend
#
# The allocators (the binary's features, Cargo.toml; jemalloc by default): build the others
# into copies, then measure them beside this build
#   cargo build --release --bin keygate --no-default-features && cp target/release/keygate /tmp/keygate-glibc
#   cargo build --release --bin keygate --no-default-features --features mimalloc && cp target/release/keygate /tmp/keygate-mimalloc
#   cargo build --release --bin keygate
#   SKIP_BUILD=1 ROUNDS=2 VARIANTS="glibc=/tmp/keygate-glibc mimalloc=/tmp/keygate-mimalloc" bash bench/million_keys.sh
#
# PostgreSQL: KEYGATE_BENCH_DATABASE_URL (see common.sh), a schema of the run's own,
# dropped at the end. SKIP_BUILD=1 uses the release binaries as they are.
source "$(dirname "$0")/common.sh"

key_count=${N:-1000000}
sample_count=${SAMPLE:-200}
backends=${BACKENDS:-"sqlite postgres"}
port=${PORT:-18131}
region=ap-southeast-1
baseline=${BASELINE_BIN:-}
variants=${VARIANTS:-}
rounds=${ROUNDS:-1}

for tool in curl psql sqlite3 awk; do
  command -v "$tool" >/dev/null || { echo "million_keys: '$tool' is needed" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "building release binaries into $target_dir (slow on a small machine)..." >&2
  (cd "$bench_root" && CARGO_TARGET_DIR=$target_dir cargo build --release -p keygate --bin keygate --example generate_keys >&2)
fi
trap bench_cleanup EXIT

# serve BINARY BACKEND [NAME=VALUE...]: starts a node in the background on BACKEND's
# database, with the environment settings given; its pid is then ${node_pids[-1]}, its log
# $work_dir/serve.log.
serve() {
  local binary=$1 backend=$2
  shift 2
  local where=(--data-dir "$work_dir/sqlite")
  [ "$backend" = postgres ] && where=(--database-url "$(node_database_url million-keys)")
  KEYGATE_MASTER_KEY=$master_key KEYGATE_ROOT_PASSWORD=$root_password RUST_LOG=${RUST_LOG:-warn} \
    env "$@" "$binary" serve "${where[@]}" --listen "127.0.0.1:$port=$region" >"$work_dir/serve.log" 2>&1 &
  node_pids+=("$!")
}

# wait_ready: waits for /readyz to answer 200 (up to 10 minutes).
wait_ready() {
  local pid=${node_pids[-1]}
  local tries
  for tries in $(seq 1 12000); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "keygate serve exited:" >&2
      cat "$work_dir/serve.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  echo "keygate serve did not answer /readyz within 10 minutes" >&2
  exit 1
}

stop_node() {
  bench_stop_node "${node_pids[-1]}"
  node_pids=()
}

# seed BACKEND: migrates the database with a first start (which makes the root account),
# then writes the N keys into it.
seed() {
  local backend=$1 account workspace now started
  serve "$keygate" "$backend"
  wait_ready
  stop_node
  started=$(date +%s%N)
  now=$(($(date +%s) * 1000))
  if [ "$backend" = sqlite ]; then
    local database=$work_dir/sqlite/keygate.db
    account=$(sqlite3 "$database" "SELECT account_id FROM accounts WHERE name = 'root'")
    workspace=$(sqlite3 "$database" "SELECT workspace_id FROM workspaces WHERE account_id = $account AND region = '$region' AND is_default = 1")
    awk -F, -v account="$account" -v region="$region" -v workspace="$workspace" -v now="$now" '
      BEGIN { print "BEGIN;" }
      NR % 500 == 1 {
        if (NR > 1) print ";"
        printf "INSERT INTO api_keys (account_id, region, workspace_id, created_by, format, key_digest, masked_key, auth_type, created_at) VALUES\n"
        separator = ""
      }
      { printf "%s(%s, '\''%s'\'', '\''%s'\'', '\''root'\'', '\''secure'\'', X'\''%s'\'', '\''%s'\'', '\''All'\'', %s)\n", separator, account, region, workspace, $1, $2, now; separator = "," }
      END { print ";"; print "COMMIT;" }
    ' "$work_dir/keys.csv" | sqlite3 "$database"
    echo "seeded $(sqlite3 "$database" 'SELECT COUNT(*) FROM api_keys') keys into SQLite in $(((($(date +%s%N) - started)) / 1000000)) ms" >&2
  else
    # The run's schema on the search path: the triggers of api_keys name their tables unqualified.
    local sql=(env PGOPTIONS="-c search_path=$schema" psql -q -At -v ON_ERROR_STOP=1 "$database_url")
    account=$("${sql[@]}" -c "SELECT account_id FROM $schema.accounts WHERE name = 'root'")
    workspace=$("${sql[@]}" -c "SELECT workspace_id FROM $schema.workspaces WHERE account_id = $account AND region = '$region' AND is_default")
    # The trigger that keeps api_key_counts would upsert once per row: off during the COPY,
    # the counts then made as its migration makes them.
    "${sql[@]}" -c "ALTER TABLE $schema.api_keys DISABLE TRIGGER api_key_counts_follow"
    awk -F, -v OFS=, -v account="$account" -v region="$region" -v workspace="$workspace" -v now="$now" \
      '{ print account, region, workspace, "root", "secure", "\\x" $1, $2, "All", now }' "$work_dir/keys.csv" |
      "${sql[@]}" -c "\\copy $schema.api_keys (account_id, region, workspace_id, created_by, format, key_digest, masked_key, auth_type, created_at) FROM STDIN WITH (FORMAT csv)"
    "${sql[@]}" -c "DELETE FROM $schema.api_key_counts" \
      -c "INSERT INTO $schema.api_key_counts (account_id, region, creator_user_id, plan, keys) SELECT account_id, region, COALESCE(creator_user_id, 0), format = 'plan', COUNT(*) FROM $schema.api_keys GROUP BY 1, 2, 3, 4" \
      -c "ALTER TABLE $schema.api_keys ENABLE TRIGGER api_key_counts_follow"
    "${sql[@]}" -c "ANALYZE $schema.api_keys"
    echo "seeded $("${sql[@]}" -c "SELECT COUNT(*) FROM $schema.api_keys") keys into PostgreSQL in $(((($(date +%s%N) - started)) / 1000000)) ms" >&2
  fi
}

# measure LABEL BINARY BACKEND [NAME=VALUE...]: one start, the sample verified, the memory
# read.
measure() {
  local label=$1 binary=$2 backend=$3 started ready pid cpu_ticks key verified=0 presented=0
  shift 3
  started=$(date +%s%N)
  serve "$binary" "$backend" "$@"
  wait_ready
  ready=$(date +%s%N)
  pid=${node_pids[-1]}
  # The CPU time of every thread of the process so far (user and system, in clock ticks):
  # less at the mercy of the machine's other work than the wall-clock time.
  cpu_ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  while IFS= read -r key; do
    presented=$((presented + 1))
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "http://127.0.0.1:$port/auth/verify")" = 200 ] &&
      verified=$((verified + 1))
  done <"$work_dir/sample.txt"
  local unknown
  unknown=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -n 1 "$work_dir/sample.txt" | rev)" "http://127.0.0.1:$port/auth/verify")
  sleep 2
  printf 'backend=%s build=%s keys=%s readyz_after_s=%.2f cpu_s=%.2f verified=%s/%s unknown_key=%s vmrss_mib=%.0f vmhwm_mib=%.0f load=%s\n' \
    "$backend" "$label" "$key_count" "$(echo "($ready - $started) / 1000000000" | bc -l)" "$(echo "$cpu_ticks / $(getconf CLK_TCK)" | bc -l)" "$verified" "$presented" "$unknown" \
    "$(echo "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status") / 1024" | bc -l)" \
    "$(echo "$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") / 1024" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
  stop_node
  if [ "$verified" != "$presented" ]; then
    echo "million_keys: $((presented - verified)) sample keys did not verify" >&2
    exit 1
  fi
}

bench_machine
echo "keys: $key_count, sample verified after start: $sample_count"
started=$(date +%s%N)
"$target_dir/release/examples/generate_keys" "$key_count" "$work_dir/sample.txt" "$sample_count" >"$work_dir/keys.csv"
echo "generated $key_count keys in $(((($(date +%s%N) - started)) / 1000000)) ms" >&2
for backend in $backends; do
  echo
  echo "== $backend =="
  if [ "$backend" = postgres ]; then
    psql -q -v ON_ERROR_STOP=1 "$database_url" -c "CREATE SCHEMA $schema" >/dev/null
  else
    mkdir -p "$work_dir/sqlite"
  fi
  seed "$backend"
  for round in $(seq 1 "$rounds"); do
    [ -n "$baseline" ] && measure baseline "$baseline" "$backend"
    measure this "$keygate" "$backend"
    for variant in $variants; do
      measure "${variant%%=*}" "${variant#*=}" "$backend"
    done
  done
done
echo "load average (1, 5, 15 min) after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
