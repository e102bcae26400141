#!/usr/bin/env bash
# What token accounting costs the gateway over HTTP (docs/PERFORMANCE.md, "Token accounting"),
# in one run: two `keygate serve` processes from the same binary, forwarding to the same
# upstream double (bench_servers upstream), one with token accounting on (the default) and
# one with `token_accounting = false`; each loaded with wrk by
#   json:   a small OpenAI chat completion (usage read from the answer's tail)
#   stream: the same call streamed without `stream_options` (keygate asks the upstream for
#           usage, relays the stream and removes the usage-only chunk): the most work
#           accounting does for one call.
# Runs alternate (on, off, off, on, ...) over ROUNDS rounds; the median round of each is
# reported with the CPU time keygate used per request (from /proc/PID/stat), which depends
# much less on what else runs on the machine than requests/s do. The cost of accounting is
# 1 - (requests/s on) / (requests/s off), and (CPU per request on) / (off) - 1.
#
# CALLGRIND=1 counts instructions instead, which other work on the machine does not change:
# both servers run under `valgrind --tool=callgrind` (every thread, user space), each run's
# counters are zeroed before and read after (callgrind_control), and the instructions per
# request are reported; requests/s are then meaningless (valgrind is ~50x slower).
#
# Needs wrk (Debian/Ubuntu: apt-get install wrk), curl and jq. Knobs (environment):
# DURATION (10s), WARMUP (2s), THREADS (1), CONNECTIONS (32), ROUNDS (5), LOG_LEVEL (warn:
# the call's log line, written at info, is then off in both), SKIP_BUILD=1 to reuse
# target/release binaries. Raw outputs and the summary go to target/bench-results/accounting/.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-5}
LOG_LEVEL=${LOG_LEVEL:-warn}
CALLGRIND=${CALLGRIND:-0}
if [[ $CALLGRIND == 1 ]]; then
    DURATION=${CALLGRIND_DURATION:-15s}
    WARMUP=1s
    CONNECTIONS=4
    ROUNDS=${CALLGRIND_ROUNDS:-1}
    command -v valgrind >/dev/null || { echo "accounting.sh: CALLGRIND=1 needs valgrind" >&2; exit 1; }
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/target/bench-results/accounting"

# Under callgrind, each server's profile of its last run (the stream), for callgrind_annotate.
keep_profiles() { cp "$WORK"/callgrind-*.out "$OUT"/ 2>/dev/null || true; }
BENCH_NAME=accounting.sh
ON_CLEANUP=keep_profiles
# shellcheck source=bench/servers.sh
source "$ROOT/bench/servers.sh"

mkdir -p "$OUT"
rm -f "$OUT"/*.txt
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
start upstream "$SERVERS" upstream
UPSTREAM=$(address_of upstream)

declare -A GATEWAY KEY
for mode in on off; do
    accounting=true
    [[ $mode == off ]] && accounting=false
    cat >"$WORK/keygate-$mode.toml" <<EOF
demo_upstream = true
token_accounting = $accounting

[[upstreams]]
name = "bench-upstream"
openai_base_url = "$UPSTREAM/v1"
api_key_env = "BENCH_UPSTREAM_KEY"
models = ["bench-model"]
EOF
    password="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
    under=()
    [[ $CALLGRIND == 1 ]] && under=(valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind-$mode.out" --instr-atstart=no)
    start "keygate-$mode" env KEYGATE_ROOT_PASSWORD="$password" BENCH_UPSTREAM_KEY=upstream-secret RUST_LOG="$LOG_LEVEL" \
        "${under[@]}" "$KEYGATE" serve --config "$WORK/keygate-$mode.toml" --data-dir "$WORK/data-$mode" --listen 127.0.0.1:0=ap-southeast-1
    GATEWAY[$mode]=$(address_of "keygate-$mode")
    token=$(curl -sf -X POST "${GATEWAY[$mode]}/keygate/v1/sessions" -H 'content-type: application/json' \
        -d "{\"account\":\"root\",\"password\":\"$password\"}" | jq -r .token)
    KEY[$mode]=$(curl -sf -X POST "${GATEWAY[$mode]}/modelstudio/apikeys?description=accounting-bench" \
        -H "x-acs-bearer-token: $token" | jq -r .apiKey.apiKeyValue)
    [[ "${KEY[$mode]}" =~ ^sk- ]] || { echo "accounting.sh: could not create a key ($mode)" >&2; exit 1; }
done

# The stream the client receives must be the upstream's without the usage chunk, and the
# answers must be 200, before anything is measured.
for mode in on off; do
    body=$(curl -sf -X POST -H 'content-type: application/json' -H "Authorization: Bearer ${KEY[$mode]}" \
        -d '{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"Hello"}]}' \
        "${GATEWAY[$mode]}/compatible-mode/v1/chat/completions")
    if grep -q '"usage"' <<<"$body" || ! grep -q '\[DONE\]' <<<"$body"; then
        echo "accounting.sh: the streamed answer through keygate ($mode) is not the expected stream:" >&2
        echo "$body" >&2
        exit 1
    fi
done

# instructions NAME: the instructions callgrind counted in server NAME since its counters
# were zeroed.
instructions() { callgrind_control -e Ir "${PID_OF[$1]}" | awk '$1 == "Th" {gsub(",", "", $3); sum += $3} END {print sum + 0}'; }
load() {
    local name=$1 round=$2 server=$3 before requests
    shift 3
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" >/dev/null
    if [[ $CALLGRIND == 1 ]]; then
        callgrind_control -i on "${PID_OF[$server]}" >/dev/null
        callgrind_control -z "${PID_OF[$server]}" >/dev/null
    fi
    before=$(cpu_ticks "$server")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 30s --latency "$@" >"$OUT/wrk-$name-$round.txt"
    requests=$(awk '/requests in/ {print $1}' "$OUT/wrk-$name-$round.txt")
    awk -v ticks=$(($(cpu_ticks "$server") - before)) -v tick="$TICK_MICROSECONDS" -v n="$requests" \
        'BEGIN {printf "%.1f\n", ticks * tick / n}' >"$OUT/cpu-$name-$round.txt"
    if [[ $CALLGRIND == 1 ]]; then
        awk -v total="$(instructions "$server")" -v n="$requests" 'BEGIN {printf "%.0f\n", total / n}' >"$OUT/instructions-$name-$round.txt"
    fi
    if grep -q 'Non-2xx\|Socket errors' "$OUT/wrk-$name-$round.txt"; then
        echo "accounting.sh: $name had errors:" >&2
        cat "$OUT/wrk-$name-$round.txt" >&2
        exit 1
    fi
}
run() {
    local kind=$1 mode=$2 round=$3
    load "$kind-$mode" "$round" "keygate-$mode" -s "$ROOT/bench/chat_$kind.lua" \
        -H "Authorization: Bearer ${KEY[$mode]}" "${GATEWAY[$mode]}/compatible-mode/v1/chat/completions"
}

echo "accounting.sh: $ROUNDS rounds of wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after $WARMUP warm-up) on $(nproc) cores"
for round in $(seq "$ROUNDS"); do
    # Alternate which runs first, so that neither side always follows the other.
    if ((round % 2)); then order="on off"; else order="off on"; fi
    for kind in json stream; do
        for mode in $order; do run "$kind" "$mode" "$round"; done
    done
    echo "accounting.sh: round $round of $ROUNDS done"
done

rps() { awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk-$1-$2.txt"; }
cpu() { cat "$OUT/cpu-$1-$2.txt"; }
p99() { awk '$1 == "99%" {print $2}' "$OUT/wrk-$1-$2.txt"; }
median() { sort -n | awk -v middle=$(((ROUNDS + 1) / 2)) 'NR == middle {print $1}'; }
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start: $LOAD_BEFORE, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per run, $ROUNDS rounds, RUST_LOG=$LOG_LEVEL; medians over the rounds:"
    printf '%-12s %12s %12s %10s   %s\n' run requests/s "CPU us/req" "p99" "requests/s of every round"
    for kind in json stream; do
        for mode in on off; do
            name="$kind-$mode"
            every=$(for r in $(seq "$ROUNDS"); do printf '%s ' "$(rps "$name" "$r")"; done)
            printf '%-12s %12s %12s %10s   %s\n' "$name" \
                "$(for r in $(seq "$ROUNDS"); do rps "$name" "$r"; done | median)" \
                "$(for r in $(seq "$ROUNDS"); do cpu "$name" "$r"; done | median)" \
                "$(p99 "$name" 1)" "$every"
        done
        rps_ratios=$(for r in $(seq "$ROUNDS"); do awk -v on="$(rps "$kind-on" "$r")" -v off="$(rps "$kind-off" "$r")" 'BEGIN {printf "%.4f\n", on / off}'; done)
        cpu_ratios=$(for r in $(seq "$ROUNDS"); do awk -v on="$(cpu "$kind-on" "$r")" -v off="$(cpu "$kind-off" "$r")" 'BEGIN {printf "%.4f\n", on / off}'; done)
        if [[ $CALLGRIND == 1 ]]; then
            ratios=$(for r in $(seq "$ROUNDS"); do
                awk -v on="$(cat "$OUT/instructions-$kind-on-$r.txt")" -v off="$(cat "$OUT/instructions-$kind-off-$r.txt")" 'BEGIN {printf "%.4f\n", on / off}'
            done)
            every=$(for r in $(seq "$ROUNDS"); do printf '%s/%s ' "$(cat "$OUT/instructions-$kind-on-$r.txt")" "$(cat "$OUT/instructions-$kind-off-$r.txt")"; done)
            echo "$kind: instructions per request (callgrind, every thread), on/off: median $(median <<<"$ratios") (each round on/off: $every)"
            continue
        fi
        echo "$kind: throughput on/off, median of the rounds' ratios: $(median <<<"$rps_ratios") (each: $(tr '\n' ' ' <<<"$rps_ratios")); CPU per request on/off: $(median <<<"$cpu_ratios") (each: $(tr '\n' ' ' <<<"$cpu_ratios"))"
    done
} | tee "$OUT/summary.txt"
