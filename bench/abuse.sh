#!/usr/bin/env bash
# Abuse replay (docs/PERFORMANCE.md, "Abuse replay"): replays the three high-severity
# findings of the security review against a release `keygate serve` and fails unless the
# node held. "Held" means that in every phase the resident memory stayed under idle + 100 MB,
# every legitimate request was answered within 1 s, and the upstream received no traversal.
#
#   1. traversal: a key scoped to one model sends 97 POSTs whose paths climb out of the
#      gateway's routes (encoded dots, raw ../, backslashes, NUL, double encoding, `;`,
#      query strings...) through the three protocol prefixes; a recording upstream double
#      says what reached the provider, and with which credential.
#   2. unauthenticated-bodies: requests without credentials declaring a 15 MiB body to the
#      management API (key import route and others), sent slowly and never finished.
#   3. idle-connections, slow-headers, idle-keepalive: 1,100 connections that send nothing;
#      1,000 that send a 350 KB request head slowly and never finish it; keep-alive
#      connections left idle after one good request.
# Meanwhile a probe makes a legitimate request every 200 ms on a fresh connection and keygate's
# VmRSS is read every 100 ms. The driver is bench/abuse.py (Python 3, standard library only);
# the upstream double is bench/abuse_upstream.py.
#
#   bash bench/abuse.sh                 # full: the issue's numbers, about 5 minutes of replay
#   bash bench/abuse.sh --quick         # CI smoke run: fewer connections, short holds (under a minute)
#   bash bench/abuse.sh --phases traversal,idle-connections --idle-hold-seconds 60
#   bash bench/abuse.sh --help          # every option of the driver
#
# Arguments go to bench/abuse.py. Environment:
#   KEYGATE_BIN         a keygate binary to test (default: build target/release/keygate,
#                       or $CARGO_TARGET_DIR/release/keygate)
#   SKIP_BUILD=1        use that build as it is
#   KEYGATE_OPEN_FILES  keygate's open-file soft limit (default 1024, as in the finding;
#                       keygate raises it to the hard limit at start, as it would in
#                       production)
#   KEYGATE_OPEN_FILES_HARD=1  make that the hard limit too, so keygate cannot raise it
#   KEYGATE_IDLE_TIMEOUT keygate's idle_timeout_seconds (default: keygate's own, 75 s; 5 s
#                       with --quick, whose idle-keepalive phase waits 10 s)
#   RESULTS_DIR         where summary.txt, traversal.txt, monitor.jsonl (every probe and
#                       memory sample), phases.json (the phases' time windows), upstream.jsonl
#                       and keygate.log go (default target/bench-results/abuse)
# Exit status: 0 when the node held, 1 when it did not, 2 when the replay could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
KEYGATE=${KEYGATE_BIN:-$TARGET_DIR/release/keygate}
OPEN_FILES=${KEYGATE_OPEN_FILES:-1024}
OUT=${RESULTS_DIR:-$ROOT/target/bench-results/abuse}
MODEL=abuse-model
IDLE_TIMEOUT=${KEYGATE_IDLE_TIMEOUT:-}
if [[ -z "$IDLE_TIMEOUT" && " $* " == *" --quick "* ]]; then
    IDLE_TIMEOUT=5
fi

if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
    exec python3 "$ROOT/bench/abuse.py" --help
fi
if ! command -v python3 >/dev/null; then
    echo "abuse.sh: python3 is needed" >&2
    exit 2
fi
if [[ -z "${KEYGATE_BIN:-}" && "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --bin keygate)
fi
if [[ ! -x "$KEYGATE" ]]; then
    echo "abuse.sh: no keygate binary at $KEYGATE" >&2
    exit 2
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -d "$OUT" && -f "$WORK/keygate.log" ]]; then
        cp "$WORK/keygate.log" "$OUT/keygate.log"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"
rm -f "$OUT/upstream.jsonl" "$OUT/keygate.log"

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
PROVIDER_KEY="provider-secret-$(random_hex 12)"
ROOT_PASSWORD="abuse-$(random_hex 12)"

# The provider double: answers 200 to anything and records every request target it gets.
ABUSE_UPSTREAM_KEY=$PROVIDER_KEY python3 "$ROOT/bench/abuse_upstream.py" \
    --port-file "$WORK/upstream.port" --record-file "$OUT/upstream.jsonl" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    [[ -s "$WORK/upstream.port" ]] && break
    sleep 0.1
done
if [[ ! -s "$WORK/upstream.port" ]]; then
    echo "abuse.sh: the upstream double did not start:" >&2
    cat "$WORK/upstream.log" >&2
    exit 2
fi
UPSTREAM="http://127.0.0.1:$(cat "$WORK/upstream.port")"

# The provider's layout, so a traversal lands where it would on the real one.
cat >"$WORK/keygate.toml" <<EOF
[[upstreams]]
name = "abuse-provider"
dashscope_base_url = "$UPSTREAM/api/v1"
openai_base_url = "$UPSTREAM/compatible-mode/v1"
anthropic_base_url = "$UPSTREAM/apps/anthropic"
api_key_env = "ABUSE_UPSTREAM_KEY"
models = ["$MODEL"]
EOF
if [[ -n "$IDLE_TIMEOUT" ]]; then
    # A top-level key must come before the first table, so it goes first.
    { echo "idle_timeout_seconds = $IDLE_TIMEOUT"; cat "$WORK/keygate.toml"; } >"$WORK/keygate.toml.new"
    mv "$WORK/keygate.toml.new" "$WORK/keygate.toml"
fi

# keygate with the open-file limit of the finding; `exec` keeps the pid the one sampled.
(
    if [[ "${KEYGATE_OPEN_FILES_HARD:-0}" == 1 ]]; then ulimit -n "$OPEN_FILES"; else ulimit -Sn "$OPEN_FILES"; fi
    exec env KEYGATE_ROOT_PASSWORD="$ROOT_PASSWORD" ABUSE_UPSTREAM_KEY="$PROVIDER_KEY" RUST_LOG=warn \
        "$KEYGATE" serve --config "$WORK/keygate.toml" --data-dir "$WORK/data" --listen 127.0.0.1:0=ap-southeast-1
) >"$WORK/keygate.log" 2>&1 &
KEYGATE_PID=$!
PIDS+=("$KEYGATE_PID")
GATEWAY=""
for _ in $(seq 300); do
    GATEWAY=$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*' "$WORK/keygate.log" 2>/dev/null || true)
    [[ -n "$GATEWAY" ]] && break
    if ! kill -0 "$KEYGATE_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [[ -z "$GATEWAY" ]]; then
    echo "abuse.sh: keygate did not start:" >&2
    cat "$WORK/keygate.log" >&2
    exit 2
fi

# A Custom key whose model scope is only the provider's model, made with the CLI as a user
# would (its session file stays in the temporary directory).
export KEYGATE_CONFIG_DIR="$WORK/cli"
KEYGATE_PASSWORD=$ROOT_PASSWORD "$KEYGATE" login --server "$GATEWAY" --account root --json >/dev/null
"$KEYGATE" keys create --server "$GATEWAY" --custom --model "$MODEL" --description "abuse replay" --json >"$WORK/key.json" 2>/dev/null
ABUSE_API_KEY=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["apiKey"]["apiKeyValue"])' "$WORK/key.json")
export ABUSE_API_KEY

echo "abuse.sh: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "abuse.sh: commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown); keygate $KEYGATE (pid $KEYGATE_PID) at $GATEWAY; provider double at $UPSTREAM"
status=0
python3 "$ROOT/bench/abuse.py" --port "${GATEWAY##*:}" --pid "$KEYGATE_PID" --model "$MODEL" \
    --upstream-records "$OUT/upstream.jsonl" --results-dir "$OUT" "$@" || status=$?
echo "abuse.sh: keygate logged 'accepting a connection failed' (out of open files) $(grep -c 'accepting a connection failed' "$WORK/keygate.log" || true) times"
echo "abuse.sh: load average after the run $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"
if ! kill -0 "$KEYGATE_PID" 2>/dev/null; then
    echo "abuse.sh: keygate exited during the replay" >&2
    status=1
fi
exit "$status"
