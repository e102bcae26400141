#!/usr/bin/env bash
# What model limits cost and how well they hold across nodes (docs/PERFORMANCE.md, "Model
# limits"), in two parts:
#
# CALL=demo (the default): the calls go to the built-in demo upstream (demo-echo, which
# reports usage like a provider), so no provider's time is in the figures: a limit's cost is
# measured against the cheapest call keygate serves, the strictest baseline. CALL=forward:
# part (a)'s calls are forwarded to the upstream double of bench/load.sh (`bench_servers
# upstream`, model bench-model), the gateway's own work, as bench/load.sh measures it.
#
# (a) One node, three `keygate serve` from one binary (SQLite), each with a key of its
#     default workspace:
#       none:   the workspace has no limit of demo-echo;
#       memory: it has one (UpdateModelLimits: requests and tokens per minute, far above the
#               load, so every call is counted and charged and none refused), counted in
#               memory;
#       redis:  the same limit counted in Redis (BENCH_REDIS_URL, default the machine's
#               redis://127.0.0.1:6379, under a key prefix of this run's own);
#       key:    no model limit, but a key with every limit of its own (requests and tokens
#               per minute, calls in flight, a monthly token budget; far above the load),
#               counted in memory.
#     Each is loaded with wrk (a small OpenAI chat completion of demo-echo); runs alternate over ROUNDS
#     rounds and the medians are reported: requests/s, CPU per request (/proc/PID/stat) and
#     the cost 1 - (requests/s limited) / (requests/s none). CALLGRIND=1 counts keygate's
#     instructions per request instead (every thread, user space; Redis's own work, in its
#     process, is not counted, its round trip shows in the wall-clock figures).
#
# (b) Three nodes on one PostgreSQL schema (KEYGATE_BENCH_DATABASE_URL, else
#     KEYGATE_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test), first counting
#     in Redis, then without it (each node its share), under a platform default of LIMIT
#     requests an hour for demo-echo and demo-embed: wrk loads the three nodes at once with
#     chat calls (even load), then only the first node with embeddings (uneven load); the
#     calls served are compared with the limit (overshoot = served / limit - 1).
#
# Needs wrk, curl, jq, psql and redis-cli (and valgrind for CALLGRIND=1). Knobs
# (environment): DURATION (8s), WARMUP (2s), CONNECTIONS (16), ROUNDS (3), LIMIT (3000),
# LOAD_DURATION (5s, part b), PARTS ("a b"), SKIP_BUILD=1 to reuse target/release binaries.
# Raw outputs and the summary go to target/bench-results/limits/.
set -euo pipefail

DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-16}
ROUNDS=${ROUNDS:-3}
LIMIT=${LIMIT:-3000}
LOAD_DURATION=${LOAD_DURATION:-5s}
PARTS=${PARTS:-a b}
CALL=${CALL:-demo}
case $CALL in
    demo) MODEL=demo-echo ;;
    forward) MODEL=bench-model ;;
    *) echo "limits.sh: CALL is demo or forward, not '$CALL'" >&2; exit 1 ;;
esac
LOG_LEVEL=${LOG_LEVEL:-warn}
CALLGRIND=${CALLGRIND:-0}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
# Under valgrind keygate runs ~50x slower: give Redis calls time, so that the limited path
# measured is Redis's and not the fallback's (checked after each run).
REDIS_TIMEOUT_MILLISECONDS=50
if [[ $CALLGRIND == 1 ]]; then
    DURATION=${CALLGRIND_DURATION:-15s}
    WARMUP=1s
    CONNECTIONS=4
    ROUNDS=${CALLGRIND_ROUNDS:-1}
    REDIS_TIMEOUT_MILLISECONDS=2000
    command -v valgrind >/dev/null || { echo "limits.sh: CALLGRIND=1 needs valgrind" >&2; exit 1; }
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/target/bench-results/limits"
DATABASE_URL=${KEYGATE_BENCH_DATABASE_URL:-${KEYGATE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}}
RUN_ID=$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
PREFIX="kg-bench-$RUN_ID:"
SCHEMA="kg_bench_$RUN_ID"

for tool in psql redis-cli; do
    command -v "$tool" >/dev/null || { echo "limits.sh: '$tool' is needed" >&2; exit 1; }
done
drop_schema() {
    cp "$WORK"/*.log "$WORK"/callgrind-*.out "$OUT"/ 2>/dev/null || true
    psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
}
BENCH_NAME=limits.sh
ON_CLEANUP=drop_schema
# shellcheck source=bench/servers.sh
source "$ROOT/bench/servers.sh"

redis-cli -u "$REDIS_URL" ping >/dev/null || { echo "limits.sh: Redis at $REDIS_URL does not answer" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.txt
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# chat.lua: part (a)'s call (of MODEL); overshoot.lua: part (b)'s (always demo-echo).
for script in chat:$MODEL overshoot:demo-echo; do
    cat >"$WORK/${script%%:*}.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"model":"${script#*:}","messages":[{"role":"user","content":"Hello"}]}'
wrk.headers["Content-Type"] = "application/json"
EOF
done
cat >"$WORK/embed.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"demo-embed","input":"Hello"}'
wrk.headers["Content-Type"] = "application/json"
EOF

# session URL PASSWORD: a session token of root.
session() {
    curl -sf -X POST "$1/keygate/v1/sessions" -H 'content-type: application/json' \
        -d "{\"account\":\"root\",\"password\":\"$2\"}" | jq -r .token
}
# new_key URL TOKEN [LIMITS]: a new key of the default workspace, with keygateLimits LIMITS
# when given.
new_key() {
    local key limits=()
    [[ -n ${3:-} ]] && limits=(--data-urlencode "keygateLimits=$3")
    key=$(curl -sf -X POST -G "$1/modelstudio/apikeys" --data-urlencode description=limits-bench "${limits[@]}" -H "x-acs-bearer-token: $2" |
        jq -r .apiKey.apiKeyValue)
    [[ $key =~ ^sk- ]] || { echo "limits.sh: could not create a key on $1" >&2; exit 1; }
    echo "$key"
}
# limit_workspace URL TOKEN: UpdateModelLimits of the default workspace's MODEL.
limit_workspace() {
    local workspace answer
    workspace=$(curl -sf "$1/modelstudio/models/limits?maxResults=1" -H "x-acs-bearer-token: $2" | jq -r '.limits[0].workspaceId')
    answer=$(curl -sf -X POST "$1/modelstudio/models/limits" -H "x-acs-bearer-token: $2" --data-urlencode "workspaceId=$workspace" \
        --data-urlencode "workspaceLimits=[{\"model\":\"$MODEL\",\"requestLimit\":1000000000,\"requestLimitPeriod\":60,\"usageLimit\":1000000000000,\"usageLimitPeriod\":60}]")
    [[ $(jq -r .success <<<"$answer") == true ]] || { echo "limits.sh: UpdateModelLimits failed: $answer" >&2; exit 1; }
}
# upstream_config PREFIX [redis]: the settings every server of this script shares, with
# redis_url when asked.
upstream_config() {
    [[ ${2:-} == redis ]] && echo "redis_url = \"$REDIS_URL\""
    cat <<EOF
demo_upstream = true
redis_key_prefix = "$1"
redis_timeout_milliseconds = $REDIS_TIMEOUT_MILLISECONDS
EOF
    if [[ -n ${UPSTREAM:-} ]]; then
        cat <<EOF

[[upstreams]]
name = "bench-upstream"
openai_base_url = "$UPSTREAM/v1"
api_key_env = "BENCH_UPSTREAM_KEY"
models = ["bench-model"]
EOF
    fi
}
# limiter_metric URL NAME: a counter of the node's limiter.
limiter_metric() { curl -sf "$1/metrics" | awk -v name="$2" '$1 == name {print $2}'; }

instructions() { callgrind_control -e Ir "${PID_OF[$1]}" | awk '$1 == "Th" {gsub(",", "", $3); sum += $3} END {print sum + 0}'; }
rps() { awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk-$1-$2.txt"; }
median() { sort -n | awk -v middle=$(((ROUNDS + 1) / 2)) 'NR == middle {print $1}'; }

part_a() {
    declare -gA GATEWAY KEY
    if [[ $CALL == forward ]]; then
        start upstream "$SERVERS" upstream
        UPSTREAM=$(address_of upstream)
    fi
    for mode in none memory key redis; do
        upstream_config "$PREFIX" "$mode" >"$WORK/keygate-$mode.toml"
        local password under=()
        password="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
        [[ $CALLGRIND == 1 ]] && under=(valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind-$mode.out" --instr-atstart=no)
        start "keygate-$mode" env KEYGATE_ROOT_PASSWORD="$password" BENCH_UPSTREAM_KEY=upstream-secret RUST_LOG="$LOG_LEVEL" \
            "${under[@]}" "$KEYGATE" serve --config "$WORK/keygate-$mode.toml" --data-dir "$WORK/data-$mode" --listen 127.0.0.1:0=ap-southeast-1
        GATEWAY[$mode]=$(address_of "keygate-$mode")
        local token
        token=$(session "${GATEWAY[$mode]}" "$password")
        [[ $mode == memory || $mode == redis ]] && limit_workspace "${GATEWAY[$mode]}" "$token"
        local key_limits=
        [[ $mode == key ]] &&
            key_limits='{"requestsPerMinute":1000000000,"tokensPerMinute":1000000000000,"maxInFlight":100000,"budget":{"period":"month","tokens":1000000000000}}'
        KEY[$mode]=$(new_key "${GATEWAY[$mode]}" "$token" "$key_limits")
        # A limited answer carries the rate-limit headers: the limit is in force.
        local headers
        headers=$(curl -sf -D - -o /dev/null -X POST -H 'content-type: application/json' -H "Authorization: Bearer ${KEY[$mode]}" \
            -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}" "${GATEWAY[$mode]}/compatible-mode/v1/chat/completions")
        local limited=no
        grep -qi '^x-ratelimit-limit-requests' <<<"$headers" && limited=yes
        if [[ ($mode == none && $limited == yes) || ($mode != none && $limited == no) ]]; then
            echo "limits.sh: the rate-limit headers of $mode are not as expected:" >&2
            echo "$headers" >&2
            exit 1
        fi
    done
    echo "limits.sh (a): $ROUNDS rounds of wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after $WARMUP warm-up) on $(nproc) cores"
    local round mode order
    for round in $(seq "$ROUNDS"); do
        if ((round % 2)); then order="none memory key redis"; else order="redis key memory none"; fi
        for mode in $order; do
            local server="keygate-$mode" before requests
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$WORK/chat.lua" -H "Authorization: Bearer ${KEY[$mode]}" \
                "${GATEWAY[$mode]}/compatible-mode/v1/chat/completions" >/dev/null
            if [[ $CALLGRIND == 1 ]]; then
                callgrind_control -i on "${PID_OF[$server]}" >/dev/null
                callgrind_control -z "${PID_OF[$server]}" >/dev/null
            fi
            before=$(cpu_ticks "$server")
            wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 30s --latency -s "$WORK/chat.lua" \
                -H "Authorization: Bearer ${KEY[$mode]}" "${GATEWAY[$mode]}/compatible-mode/v1/chat/completions" >"$OUT/wrk-$mode-$round.txt"
            requests=$(awk '/requests in/ {print $1}' "$OUT/wrk-$mode-$round.txt")
            awk -v ticks=$(($(cpu_ticks "$server") - before)) -v tick="$TICK_MICROSECONDS" -v n="$requests" \
                'BEGIN {printf "%.1f\n", ticks * tick / n}' >"$OUT/cpu-$mode-$round.txt"
            if [[ $CALLGRIND == 1 ]]; then
                awk -v total="$(instructions "$server")" -v n="$requests" 'BEGIN {printf "%.0f\n", total / n}' >"$OUT/instructions-$mode-$round.txt"
            fi
            if grep -q 'Non-2xx\|Socket errors' "$OUT/wrk-$mode-$round.txt"; then
                echo "limits.sh: $mode had errors:" >&2
                cat "$OUT/wrk-$mode-$round.txt" >&2
                exit 1
            fi
        done
        echo "limits.sh (a): round $round of $ROUNDS done"
    done
    local failures fallback
    failures=$(limiter_metric "${GATEWAY[redis]}" keygate_limiter_failures_total)
    fallback=$(limiter_metric "${GATEWAY[redis]}" keygate_limiter_fallback_admissions_total)
    {
        echo "(a) one node, $MODEL ($CALL), a workspace limit of the model (memory, redis) or a key's own limits (key) against none; medians of $ROUNDS rounds:"
        printf '%-8s %12s %12s %10s %14s   %s\n' run requests/s "CPU us/req" p99 instructions "requests/s of every round"
        for mode in none memory key redis; do
            printf '%-8s %12s %12s %10s %14s   %s\n' "$mode" \
                "$(for r in $(seq "$ROUNDS"); do rps "$mode" "$r"; done | median)" \
                "$(for r in $(seq "$ROUNDS"); do cat "$OUT/cpu-$mode-$r.txt"; done | median)" \
                "$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$mode-1.txt")" \
                "$(if [[ $CALLGRIND == 1 ]]; then for r in $(seq "$ROUNDS"); do cat "$OUT/instructions-$mode-$r.txt"; done | median; else echo -; fi)" \
                "$(for r in $(seq "$ROUNDS"); do printf '%s ' "$(rps "$mode" "$r")"; done)"
        done
        for mode in memory key redis; do
            local ratios
            ratios=$(for r in $(seq "$ROUNDS"); do awk -v limited="$(rps "$mode" "$r")" -v none="$(rps none "$r")" 'BEGIN {printf "%.4f\n", limited / none}'; done)
            if [[ $CALLGRIND == 1 ]]; then
                ratios=$(for r in $(seq "$ROUNDS"); do
                    awk -v limited="$(cat "$OUT/instructions-$mode-$r.txt")" -v none="$(cat "$OUT/instructions-none-$r.txt")" 'BEGIN {printf "%.4f\n", limited / none}'
                done)
                echo "$mode: instructions per request limited/none, median $(median <<<"$ratios") (each round: $(tr '\n' ' ' <<<"$ratios"))"
            else
                echo "$mode: throughput limited/none, median $(median <<<"$ratios") (each round: $(tr '\n' ' ' <<<"$ratios"))"
            fi
        done
        echo "redis: $failures calls to Redis failed or timed out (redis_timeout_milliseconds = $REDIS_TIMEOUT_MILLISECONDS); $fallback admissions were counted in memory instead"
    } | tee -a "$OUT/summary.txt"
    for mode in none memory key redis; do kill "${PID_OF[keygate-$mode]}" 2>/dev/null || true; done
}

# node_url NAME: this run's schema on the search path.
node_url() {
    local separator='?'
    [[ $DATABASE_URL == *\?* ]] && separator='&'
    printf '%s%soptions=-c%%20search_path%%3D%s&application_name=%s' "$DATABASE_URL" "$separator" "$SCHEMA" "$1"
}

# overshoot BACKEND: three nodes on a fresh schema, even then uneven load, the served calls
# against LIMIT.
overshoot() {
    local backend=$1 node url password master_key token key
    psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" >/dev/null
    password="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
    master_key=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
    {
        upstream_config "${PREFIX}overshoot:" "$backend"
        # Both models limited by the platform default: each load has windows of its own.
        for model in demo-echo demo-embed; do
            printf '\n[[model_limits]]\nmodel = "%s"\nrequest_limit = %s\nrequest_limit_period_seconds = 3600\n' "$model" "$LIMIT"
        done
    } >"$WORK/node-$backend.toml"
    declare -gA NODE
    for node in 1 2 3; do
        start "node-$backend-$node" env KEYGATE_ROOT_PASSWORD="$password" KEYGATE_MASTER_KEY="$master_key" \
            RUST_LOG="$LOG_LEVEL" "$KEYGATE" serve --config "$WORK/node-$backend.toml" --database-url "$(node_url "bench-$backend-$node")" \
            --listen 127.0.0.1:0=ap-southeast-1
        NODE[$node]=$(address_of "node-$backend-$node")
    done
    for node in 1 2 3; do
        # Heartbeats every node_heartbeat_seconds (5 by default).
        for _ in $(seq 300); do
            [[ $(curl -sf "${NODE[$node]}/readyz" | jq -r '.limiter.liveNodes') == 3 ]] && break
            sleep 0.1
        done
    done
    token=$(session "${NODE[1]}" "$password")
    key=$(new_key "${NODE[1]}" "$token")
    sleep 1 # the key reaches the other nodes through the change feed
    # Both loads must fall in one hour's window.
    local left=$((3600 - $(date +%s) % 3600))
    if ((left < 60)); then sleep $((left + 1)); fi
    local pids=() served
    for node in 1 2 3; do
        wrk -t1 -c8 -d"$LOAD_DURATION" -s "$WORK/overshoot.lua" -H "Authorization: Bearer $key" \
            "${NODE[$node]}/compatible-mode/v1/chat/completions" >"$OUT/overshoot-$backend-even-$node.txt" &
        pids+=($!)
    done
    wait "${pids[@]}"
    wrk -t1 -c8 -d"$LOAD_DURATION" -s "$WORK/embed.lua" -H "Authorization: Bearer $key" \
        "${NODE[1]}/compatible-mode/v1/embeddings" >"$OUT/overshoot-$backend-uneven-1.txt"
    # served FILES...: requests answered 200 (all minus the 429s).
    served() { cat "$@" | awk '/requests in/ {total += $1} /Non-2xx/ {refused += $NF} END {print total - refused}'; }
    local even uneven offered
    even=$(served "$OUT"/overshoot-"$backend"-even-*.txt)
    uneven=$(served "$OUT/overshoot-$backend-uneven-1.txt")
    offered=$(cat "$OUT"/overshoot-"$backend"-even-*.txt | awk '/requests in/ {total += $1} END {print total}')
    local failures=0 fallback=0
    for node in 1 2 3; do
        failures=$((failures + $(limiter_metric "${NODE[$node]}" keygate_limiter_failures_total)))
        fallback=$((fallback + $(limiter_metric "${NODE[$node]}" keygate_limiter_fallback_admissions_total)))
    done
    awk -v backend="$backend" -v limit="$LIMIT" -v even="$even" -v uneven="$uneven" -v offered="$offered" -v failures="$failures" -v fallback="$fallback" 'BEGIN {
        printf "%-10s even load (%d calls to 3 nodes): served %d of a limit of %d (%+.2f%%); all load on one node: served %d (%+.2f%%)",
            backend, offered, even, limit, (even / limit - 1) * 100, uneven, (uneven / limit - 1) * 100
        if (backend == "redis") printf "; %d Redis calls failed, %d admissions counted in memory", failures, fallback
        printf "\n" }' | tee -a "$OUT/summary.txt"
    for node in 1 2 3; do kill "${PID_OF[node-$backend-$node]}" 2>/dev/null || true; done
    for node in 1 2 3; do wait "${PID_OF[node-$backend-$node]}" 2>/dev/null || true; done
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start: $LOAD_BEFORE"
    echo "redis: $(redis-cli -u "$REDIS_URL" info server | awk -F: '/^redis_version/ {print $2}' | tr -d '\r') at $REDIS_URL"
} | tee "$OUT/summary.txt"
if [[ " $PARTS " == *" a "* ]]; then part_a; fi
if [[ " $PARTS " == *" b "* && $CALLGRIND != 1 ]]; then
    echo "(b) three nodes on PostgreSQL, a limit of $LIMIT requests an hour, wrk -t1 -c8 -d$LOAD_DURATION per node:" | tee -a "$OUT/summary.txt"
    overshoot redis
    overshoot share
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.txt"
