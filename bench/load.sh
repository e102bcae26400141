#!/usr/bin/env bash
# HTTP load comparison of docs/CONTRACT.md#performance-targets, all on 127.0.0.1, in one run (docs/PERFORMANCE.md):
#   (a) a bare hyper server answering 200          (b) keygate /auth/verify with a key
#   (b2) /auth/verify asked for the key's identity (X-Keygate-Identity: on)
#   (c) an upstream double, called directly        (d) keygate's gateway forwarding to (c)
# and the ratios b/a (target >= 0.90 in every round) and d/c; also (a2) an empty axum router served as
# keygate serves one, to show the framework's share, and (a3) a second bare hyper server, whose
# ratio a3/a is the spread of the measurement itself (two identical servers). Raw wrk outputs and a summary go to
# target/bench-results/.
#
# Needs wrk (Debian/Ubuntu: apt-get install wrk), curl and jq.
# Every run is repeated ROUNDS times, interleaved (a, a2, b, c, d, a, ...), and the
# median round of each is reported, with the ratio of each round: on a shared machine one
# 10-second run can be slowed by anything else that runs. With SLICES=N a round of each run
# is N shorter runs of DURATION, alternating with the other runs' slices (a, b, a, b, ...),
# and its requests/s is all its requests over all its time: both sides of a ratio then see
# the same stretch of the machine's time, and each slice opens its connections anew (how
# they fall on the server's threads moves one run's throughput by 10% or more). The CPU time the server under
# test used per request (from /proc/PID/stat) is reported too: it depends much less on
# what else runs.
#
# Knobs (environment): DURATION (10s), WARMUP (2s, once per round before a run's first
# slice), SLICES (1), THREADS (2), CONNECTIONS (64), ROUNDS (3), SKIP_BUILD=1 to reuse
# target/release binaries, RUNS (which runs, by name; all but a3 by default;
# `RUNS="a-bare-hyper b-auth-verify a3-bare-hyper-again" ROUNDS=9 SLICES=5 DURATION=2s` is the
# `/auth/verify` comparison of docs/PERFORMANCE.md). BASELINE_BIN=/path/to/an/older/keygate adds (b0), that
# binary's /auth/verify with a key of its own, to the same rounds right after (b), and the
# ratio b/b0: a change measured against the build before it on the same load.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SLICES=${SLICES:-1}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/target/bench-results"

BENCH_NAME=load.sh
# shellcheck source=bench/servers.sh
source "$ROOT/bench/servers.sh"

# check WHAT STATUS CURL-ARGS...: one request must answer STATUS before loading it.
check() {
    local what=$1 expected=$2 status
    shift 2
    status=$(curl -s -o "$WORK/check.body" -w '%{http_code}' "$@")
    if [[ "$status" != "$expected" ]]; then
        echo "load.sh: $what answered $status, expected $expected:" >&2
        cat "$WORK/check.body" >&2
        exit 1
    fi
}

# load NAME ROUND SLICE SERVER WRK-ARGS...: a warm-up before a round's first slice, then
# the measured run into $OUT/wrk-NAME-ROUND-SLICE.txt, and the CPU clock ticks that SERVER
# used meanwhile into $OUT/ticks-NAME-ROUND-SLICE.txt.
load() {
    local name=$1 round=$2 slice=$3 server=$4 before
    shift 4
    if [[ "$slice" == 1 ]]; then
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$@" >/dev/null
    fi
    before=$(cpu_ticks "$server")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" >"$OUT/wrk-$name-$round-$slice.txt"
    echo $(($(cpu_ticks "$server") - before)) >"$OUT/ticks-$name-$round-$slice.txt"
    if grep -q 'Non-2xx\|Socket errors' "$OUT/wrk-$name-$round-$slice.txt"; then
        echo "load.sh: $name had errors:" >&2
        cat "$OUT/wrk-$name-$round-$slice.txt" >&2
        exit 1
    fi
}

ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2f", x / y}'; }
mkdir -p "$OUT"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# The servers. keygate logs at warn so that logging does not dominate.
start bare "$SERVERS" bare
start bare_again "$SERVERS" bare
start axum "$SERVERS" axum
start upstream "$SERVERS" upstream
BARE=$(address_of bare)
BARE_AGAIN=$(address_of bare_again)
AXUM=$(address_of axum)
UPSTREAM=$(address_of upstream)
cat >"$WORK/keygate.toml" <<EOF
demo_upstream = true

[[upstreams]]
name = "bench-upstream"
openai_base_url = "$UPSTREAM/v1"
api_key_env = "BENCH_UPSTREAM_KEY"
models = ["bench-model"]
EOF
PASSWORD="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
start keygate env KEYGATE_ROOT_PASSWORD="$PASSWORD" BENCH_UPSTREAM_KEY=upstream-secret RUST_LOG=warn \
    "$KEYGATE" serve --config "$WORK/keygate.toml" --data-dir "$WORK/data" --listen 127.0.0.1:0=ap-southeast-1
GATEWAY=$(address_of keygate)
BASELINE_BIN=${BASELINE_BIN:-}
if [[ -n "$BASELINE_BIN" ]]; then
    start baseline env KEYGATE_ROOT_PASSWORD="$PASSWORD" RUST_LOG=warn \
        "$BASELINE_BIN" serve --data-dir "$WORK/data-baseline" --listen 127.0.0.1:0=ap-southeast-1
    BASELINE=$(address_of baseline)
fi

# A key, through the management API, as a user would make one.
TOKEN=$(curl -sf -X POST "$GATEWAY/keygate/v1/sessions" -H 'content-type: application/json' \
    -d "{\"account\":\"root\",\"password\":\"$PASSWORD\"}" | jq -r .token)
KEY=$(curl -sf -X POST "$GATEWAY/modelstudio/apikeys?description=load-test" -H "x-acs-bearer-token: $TOKEN" | jq -r .apiKey.apiKeyValue)
if [[ ! "$KEY" =~ ^sk- ]]; then
    echo "load.sh: could not create a key" >&2
    exit 1
fi
if [[ -n "$BASELINE_BIN" ]]; then
    BASELINE_TOKEN=$(curl -sf -X POST "$BASELINE/keygate/v1/sessions" -H 'content-type: application/json' \
        -d "{\"account\":\"root\",\"password\":\"$PASSWORD\"}" | jq -r .token)
    BASELINE_KEY=$(curl -sf -X POST "$BASELINE/modelstudio/apikeys?description=load-test" -H "x-acs-bearer-token: $BASELINE_TOKEN" | jq -r .apiKey.apiKeyValue)
    check "the baseline's /auth/verify" 200 -H "Authorization: Bearer $BASELINE_KEY" "$BASELINE/auth/verify"
fi

CHAT='{"model":"bench-model","messages":[{"role":"user","content":"Hello"}]}'
check "bare hyper" 200 "$BARE/"
check "the second bare hyper" 200 "$BARE_AGAIN/"
check "empty axum" 200 "$AXUM/"
check "/auth/verify" 200 -H "Authorization: Bearer $KEY" "$GATEWAY/auth/verify"
check "the upstream double" 200 -X POST -H 'content-type: application/json' -d "$CHAT" "$UPSTREAM/v1/chat/completions"
check "the gateway" 200 -X POST -H 'content-type: application/json' -H "Authorization: Bearer $KEY" -d "$CHAT" "$GATEWAY/compatible-mode/v1/chat/completions"

RUNS=${RUNS:-a-bare-hyper a2-axum-empty b-auth-verify b2-verify-identity c-upstream-direct d-gateway}
if [[ -n "$BASELINE_BIN" && " $RUNS " == *" b-auth-verify "* ]]; then
    RUNS=${RUNS/b-auth-verify/b-auth-verify b0-baseline-verify}
fi
# runs NAME: whether NAME is one of the runs asked for.
runs() { [[ " $RUNS " == *" $1 "* ]]; }
echo "load.sh: $ROUNDS rounds of $SLICES x wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after $WARMUP warm-up) on $(nproc) cores shared by wrk and the servers"
for round in $(seq "$ROUNDS"); do
    for slice in $(seq "$SLICES"); do
        # The same request as (b), key and all ("same load"): the baselines ignore the header.
        runs a-bare-hyper && load a-bare-hyper "$round" "$slice" bare -H "Authorization: Bearer $KEY" "$BARE/"
        runs a2-axum-empty && load a2-axum-empty "$round" "$slice" axum -H "Authorization: Bearer $KEY" "$AXUM/"
        runs b-auth-verify && load b-auth-verify "$round" "$slice" keygate -H "Authorization: Bearer $KEY" "$GATEWAY/auth/verify"
        runs b0-baseline-verify && load b0-baseline-verify "$round" "$slice" baseline -H "Authorization: Bearer $BASELINE_KEY" "$BASELINE/auth/verify"
        runs a3-bare-hyper-again && load a3-bare-hyper-again "$round" "$slice" bare_again -H "Authorization: Bearer $KEY" "$BARE_AGAIN/"
        runs b2-verify-identity && load b2-verify-identity "$round" "$slice" keygate -H "Authorization: Bearer $KEY" -H "X-Keygate-Identity: on" "$GATEWAY/auth/verify"
        runs c-upstream-direct && load c-upstream-direct "$round" "$slice" upstream -s "$ROOT/bench/chat_json.lua" "$UPSTREAM/v1/chat/completions"
        # keygate's own CPU; the upstream's share of (d) is what (c) shows.
        runs d-gateway && load d-gateway "$round" "$slice" keygate -s "$ROOT/bench/chat_json.lua" -H "Authorization: Bearer $KEY" "$GATEWAY/compatible-mode/v1/chat/completions"
    done
    echo "load.sh: round $round of $ROUNDS done"
done

median_rps() { requests_per_second "$1" "$(median_round "$1")"; }
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start: $LOAD_BEFORE, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk: $THREADS threads, $CONNECTIONS connections, $SLICES x $DURATION per round after a $WARMUP warm-up, $ROUNDS rounds; the median round of each run (latencies: the highest of its slices):"
    printf '%-20s %11s %9s %9s %9s %9s %12s   %s\n' run requests/s p50 p90 p99 max "CPU us/req" "requests/s of every round"
    for name in $RUNS; do
        round=$(median_round "$name")
        max=$(highest_latency "$name" "$round" 4 Latency)
        every=$(for r in $(seq "$ROUNDS"); do printf '%s ' "$(requests_per_second "$name" "$r")"; done)
        printf '%-20s %11s %9s %9s %9s %9s %12s   %s\n' "$name" "$(requests_per_second "$name" "$round")" \
            "$(percentile "$name" "$round" 50%)" "$(percentile "$name" "$round" 90%)" "$(percentile "$name" "$round" 99%)" "$max" \
            "$(cpu_per_request "$name" "$round")" "$every"
    done
    per_round() {
        for r in $(seq "$ROUNDS"); do
            printf '%s ' "$(ratio "$(requests_per_second "$1" "$r")" "$(requests_per_second "$2" "$r")")"
        done
    }
    if runs b-auth-verify && runs a-bare-hyper; then
        echo "b/a  (/auth/verify vs bare hyper, target >= 0.90 in every round): $(ratio "$(median_rps b-auth-verify)" "$(median_rps a-bare-hyper)") (each round: $(per_round b-auth-verify a-bare-hyper); lowest: $(per_round b-auth-verify a-bare-hyper | tr ' ' '\n' | sed '/^$/d' | sort -n | head -1))"
    fi
    if runs a3-bare-hyper-again && runs a-bare-hyper; then
        echo "a3/a (two identical bare hyper servers: the spread of the measurement itself): $(ratio "$(median_rps a3-bare-hyper-again)" "$(median_rps a-bare-hyper)") (each round: $(per_round a3-bare-hyper-again a-bare-hyper); lowest: $(per_round a3-bare-hyper-again a-bare-hyper | tr ' ' '\n' | sed '/^$/d' | sort -n | head -1))"
    fi
    if runs b0-baseline-verify; then
        echo "b0/a (the baseline's /auth/verify vs bare hyper): $(ratio "$(median_rps b0-baseline-verify)" "$(median_rps a-bare-hyper)") (each round: $(per_round b0-baseline-verify a-bare-hyper); lowest: $(per_round b0-baseline-verify a-bare-hyper | tr ' ' '\n' | sed '/^$/d' | sort -n | head -1))"
        echo "b/b0 (this build's /auth/verify vs the baseline's): $(ratio "$(median_rps b-auth-verify)" "$(median_rps b0-baseline-verify)") (each round: $(per_round b-auth-verify b0-baseline-verify))"
    fi
    if runs b2-verify-identity && runs a-bare-hyper; then
        echo "b2/a (/auth/verify with the identity headers, reference): $(ratio "$(median_rps b2-verify-identity)" "$(median_rps a-bare-hyper)") (each round: $(per_round b2-verify-identity a-bare-hyper))"
    fi
    if runs a2-axum-empty && runs a-bare-hyper; then
        echo "a2/a (empty axum router vs bare hyper, reference): $(ratio "$(median_rps a2-axum-empty)" "$(median_rps a-bare-hyper)") (each round: $(per_round a2-axum-empty a-bare-hyper))"
    fi
    if runs d-gateway && runs c-upstream-direct; then
        echo "d/c  (gateway vs the upstream called directly):    $(ratio "$(median_rps d-gateway)" "$(median_rps c-upstream-direct)") (each round: $(per_round d-gateway c-upstream-direct))"
    fi
    echo "CPU us/req: CPU time of the server under test (keygate itself for the gateway) per request, in the median round"
} | tee "$OUT/summary.txt"
