# Sourced by the bench scripts (load.sh, nginx.sh, accounting.sh, limits.sh): the release binaries (built unless
# SKIP_BUILD=1) and the tools the scripts need, servers started in the background, in a
# work directory removed on exit, and what the scripts read of them. The caller sets ROOT
# and BENCH_NAME (its name in messages) and may set ON_CLEANUP (a function run before the
# work directory is removed).

# Cargo's target directory: CARGO_TARGET_DIR when set, as cargo itself reads it.
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KEYGATE="$TARGET_DIR/release/keygate"
SERVERS="$TARGET_DIR/release/examples/bench_servers"

for tool in wrk curl jq; do
    if ! command -v "$tool" >/dev/null; then
        echo "$BENCH_NAME: '$tool' is needed (Debian/Ubuntu: apt-get install $tool)" >&2
        exit 1
    fi
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build --release -p keygate --bin keygate --example bench_servers)
fi

WORK=$(mktemp -d)
PIDS=()
declare -A PID_OF
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n "${ON_CLEANUP:-}" ]]; then "$ON_CLEANUP"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs a server in the background, output in $WORK/NAME.log.
start() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    PID_OF[$name]=$!
}

# cpu_ticks NAME: user + system CPU time of a server so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/${PID_OF[$1]}/stat"; }
TICK_MICROSECONDS=$((1000000 / $(getconf CLK_TCK)))

# address_of NAME: waits (up to a minute: a server under valgrind starts slowly) for the
# server's "listening on http://ADDR" line, prints the URL.
address_of() {
    local url
    for _ in $(seq 600); do
        url=$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*' "$WORK/$1.log" || true)
        if [[ -n "$url" ]]; then
            echo "$url"
            return
        fi
        sleep 0.1
    done
    echo "$BENCH_NAME: $1 did not start:" >&2
    cat "$WORK/$1.log" >&2
    exit 1
}

# Rounds of slices (bench/load.sh and bench/nginx.sh, which set OUT and SLICES and write a
# run NAME's round ROUND, slice SLICE as $OUT/wrk-NAME-ROUND-SLICE.txt, and the server's
# CPU clock ticks during it as $OUT/ticks-NAME-ROUND-SLICE.txt).
# slices KIND NAME ROUND: the files of a round's slices (KIND wrk, ticks, ...).
slices() { for slice in $(seq "$SLICES"); do echo "$OUT/$1-$2-$3-$slice.txt"; done; }
# requests_per_second NAME ROUND: all the round's requests over all its measured time.
requests_per_second() {
    # shellcheck disable=SC2046
    awk '/requests in/ {requests += $1; t = $4; sub(/,$/, "", t); seconds += (t ~ /m$/) ? t * 60 : t + 0}
        END {printf "%.2f\n", requests / seconds}' $(slices wrk "$1" "$2")
}
requests() {
    # shellcheck disable=SC2046
    awk '/requests in/ {n += $1} END {print n}' $(slices wrk "$1" "$2")
}
# highest_latency NAME ROUND FIELD MATCH: the highest of the round's slices' latencies in
# the lines where field 1 is MATCH (wrk's units: us, ms, s, m).
highest_latency() {
    # shellcheck disable=SC2046
    awk -v field="$3" -v match_="$4" '
        function micros(v) { return v ~ /us$/ ? v + 0 : v ~ /ms$/ ? v * 1000 : v ~ /m$/ ? v * 60000000 : v * 1000000 }
        $1 == match_ && micros($field) >= highest {highest = micros($field); shown = $field}
        END {print shown}' $(slices wrk "$1" "$2")
}
# percentile NAME ROUND 99%: with SLICES > 1, the highest of the round's slices.
percentile() { highest_latency "$1" "$2" 2 "$3"; }
# round_percentile NAME ROUND 99: the percentile over all the round's requests, from the
# latency histograms its slices wrote (bench/chat_json.lua, WRK_LATENCY_HISTOGRAM, as
# $OUT/latency-NAME-ROUND-SLICE.txt) merged, in wrk's units ("2.43ms"), ranked as wrk
# ranks its own (the smallest latency with at least round(p% of the requests + 0.5) of them
# at or below it: a single slice's merged figure is the one wrk printed for it).
round_percentile() {
    # shellcheck disable=SC2046
    awk '{count[$1] += $2; total += $2} END {for (value in count) print value, count[value], total}' $(slices latency "$1" "$2") \
        | sort -n | awk -v p="$3" '
            NR == 1 {rank = int(p / 100 * $3 + 1)}
            {seen += $2} seen >= rank && !done {done = 1; printf "%.2fms\n", $1 / 1000}'
}
# cpu_per_request NAME ROUND: the server's CPU microseconds per request over the round.
cpu_per_request() {
    # shellcheck disable=SC2046
    awk -v tick="$TICK_MICROSECONDS" -v n="$(requests "$1" "$2")" '{ticks += $1} END {printf "%.1f\n", ticks * tick / n}' \
        $(slices ticks "$1" "$2")
}
# median_round NAME: the round whose requests/s is the median.
median_round() {
    local round
    for round in $(seq "$ROUNDS"); do
        echo "$(requests_per_second "$1" "$round") $round"
    done | sort -n | awk -v middle=$(((ROUNDS + 1) / 2)) 'NR == middle {print $2}'
}
