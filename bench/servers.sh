# Sourced by bench/load.sh and bench/accounting.sh: the release binaries (built unless
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
    (cd "$ROOT" && cargo build --release -p keygate --bin keygate -p keygate-server --example bench_servers)
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
