#!/usr/bin/env bash
# keygate's gateway against nginx in front of the same upstream (docs/CONTRACT.md#performance-targets,
# docs/PERFORMANCE.md "Forwarding against nginx"), all on 127.0.0.1, in one run:
#   nginx:   a `map` of 1,000 `Authorization: Bearer sk-...` values (the keys keygate made),
#            401 for any other, proxying /compatible-mode/v1/chat/completions to the upstream
#            double of bench/load.sh over a keepalive pool, the client's key replaced by the
#            upstream's; worker_processes as many as keygate's worker threads (one per core);
#   keygate: `keygate serve` with the same 1,000 keys and an [[upstreams]] entry for the
#            same double.
# wrk sends the same chat call (bench/chat_json.lua) with the same key to both, the two
# alternating round by round (nginx, keygate, nginx, ...) so that both see the same load on
# a shared machine. With SLICES=N each round of each server is N shorter runs of DURATION,
# alternating with the other servers' slices, and its requests/s is all its requests over
# all its time (as in bench/load.sh: both sides of a ratio share the same stretch of time,
# and each slice opens its 64 connections anew, which moves one run of nginx by 15%, as it
# falls on its workers). Reported: requests/s and p50/p90/p99 of every round, the median
# round's, the ratio keygate/nginx of every round, and each server's CPU time per request
# (nginx: its master and workers together; keygate: its one process). A round's latencies
# are percentiles of all its requests: each slice's wrk writes its whole latency histogram
# (bench/chat_json.lua) and the round's are merged. The highest of the slices' own p99s
# ("worst p99", the statistic reported before 2026-12-05) is printed beside it; it is
# decided by the one slice that met a stall of the shared machine, and moves by a third
# between identical runs.
#
# BASELINE_BIN=/path/to/an/older/keygate adds that binary as a third server, with its own
# 1,000 keys, in the same rounds, and SECOND_BASELINE_BIN one more (two steps measured
# against each other and nginx at once: a change of code and a change of build, say);
# PRELOAD=/path/to/libjemalloc.so.2 (or another allocator) adds this tree's binary once
# more with that library preloaded (LD_PRELOAD), to measure what an allocator would change
# without building one in. VARIANT_ENV="NAME=value ..." adds this tree's binary once more
# with those environment variables (TOKIO_WORKER_THREADS=1, say), to measure a setting in
# the same rounds. CONTROL=1 adds a second nginx, configured as the first, as one more
# server in the same rounds: its ratios to the first are the spread that two identical
# servers show on the machine that day.
#
# CALLGRIND=1 counts instead keygate's instructions per forwarded call (every thread, user
# space) under valgrind, for this tree's binary and, when BASELINE_BIN names another
# keygate binary, for that one too in the same run (wrk with 4 connections; no nginx).
#
# Needs wrk, curl, jq and nginx (Debian/Ubuntu: apt-get install nginx-light, as .ci/run
# does; run as the current user with a private prefix), valgrind for CALLGRIND=1. Knobs
# (environment): DURATION (10s), WARMUP (2s, once per round before a server's first slice),
# SLICES (1; a round's latencies are then read over all its slices' requests), THREADS (2), CONNECTIONS (64), ROUNDS (5),
# KEYS (1000), SKIP_BUILD=1 to reuse target/release binaries. HOLD=1 starts the servers, writes
# their URLs, keys and process ids to target/bench-results/nginx/hold.env and waits, unmeasured,
# until interrupted (Ctrl-C, or kill with TERM), for perf, strace or wrk by hand. Raw outputs and the summary
# go to target/bench-results/nginx/.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
SLICES=${SLICES:-1}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-5}
KEYS=${KEYS:-1000}
CALLGRIND=${CALLGRIND:-0}
BASELINE_BIN=${BASELINE_BIN:-}
if [[ $CALLGRIND == 1 ]]; then
    DURATION=${CALLGRIND_DURATION:-15s}
    WARMUP=1s
    CONNECTIONS=4
    ROUNDS=${CALLGRIND_ROUNDS:-1}
    command -v valgrind >/dev/null || { echo "nginx.sh: CALLGRIND=1 needs valgrind" >&2; exit 1; }
else
    command -v nginx >/dev/null || { echo "nginx.sh: nginx is needed (apt-get install nginx-light)" >&2; exit 1; }
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/target/bench-results/nginx"

BENCH_NAME=nginx.sh
# The callgrind profiles are kept with the results, for callgrind_annotate.
keep_profiles() { cp "$WORK"/callgrind-*.out "$OUT"/ 2>/dev/null || true; }
ON_CLEANUP=keep_profiles
# shellcheck source=bench/servers.sh
source "$ROOT/bench/servers.sh"
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/callgrind-*.out
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
WORKERS=$(nproc)

start upstream "$SERVERS" upstream
UPSTREAM=$(address_of upstream)
# The region's key quota raised above KEYS (50 per account by default).
cat >"$WORK/keygate.toml" <<EOF
[[regions]]
id = "ap-southeast-1"
key_limit = $((KEYS + 10))

[[upstreams]]
name = "bench-upstream"
openai_base_url = "$UPSTREAM/v1"
api_key_env = "BENCH_UPSTREAM_KEY"
models = ["bench-model"]
EOF

# start_keygate NAME BINARY [valgrind...]: a keygate serve on a fresh data directory, logging
# at warn (no line per call, as nginx writes no access log here); its URL in GATEWAY[NAME]
# and root's password in PASSWORD[NAME].
declare -A GATEWAY PASSWORD
start_keygate() {
    local name=$1 binary=$2
    shift 2
    PASSWORD[$name]="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
    start "$name" env KEYGATE_ROOT_PASSWORD="${PASSWORD[$name]}" BENCH_UPSTREAM_KEY=upstream-secret RUST_LOG=warn \
        "$@" "$binary" serve --config "$WORK/keygate.toml" --data-dir "$WORK/data-$name" --listen 127.0.0.1:0=ap-southeast-1
    GATEWAY[$name]=$(address_of "$name")
}

# make_keys NAME: KEYS keys on keygate NAME through the management API, as a user makes
# them, their plaintexts in $WORK/keys-NAME.txt.
make_keys() {
    local token
    token=$(curl -sf -X POST "${GATEWAY[$1]}/keygate/v1/sessions" -H 'content-type: application/json' \
        -d "{\"account\":\"root\",\"password\":\"${PASSWORD[$1]}\"}" | jq -r .token)
    seq "$KEYS" | xargs -P 4 -I{} curl -sf -X POST "${GATEWAY[$1]}/modelstudio/apikeys?description=nginx-bench-{}" \
        -H "x-acs-bearer-token: $token" | jq -r .apiKey.apiKeyValue >"$WORK/keys-$1.txt"
    if [[ $(grep -c '^sk-' "$WORK/keys-$1.txt") != "$KEYS" ]]; then
        echo "nginx.sh: could not create $KEYS keys on $1" >&2
        exit 1
    fi
}

# check WHAT URL KEY: one chat call must answer 200 with the double's answer.
check() {
    local status
    status=$(curl -s -o "$WORK/check.body" -w '%{http_code}' -X POST -H 'content-type: application/json' -H "Authorization: Bearer $3" \
        -d '{"model":"bench-model","messages":[{"role":"user","content":"Hello"}]}' "$2")
    if [[ $status != 200 ]] || ! grep -q 'benchmark upstream' "$WORK/check.body"; then
        echo "nginx.sh: $1 answered $status, expected 200 from the upstream double:" >&2
        cat "$WORK/check.body" >&2
        exit 1
    fi
}

# cpu_ticks_of PIDS...: user + system CPU time of processes so far, in clock ticks.
cpu_ticks_of() { for pid in "$@"; do awk '{print $14 + $15}' "/proc/$pid/stat"; done | awk '{sum += $1} END {print sum + 0}'; }

# machine_ticks: the machine's busy and idle clock ticks so far (all cores), "busy idle".
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }

# load NAME ROUND SLICE URL KEY PIDS...: a warm-up before a round's first slice, then the
# measured run into $OUT/wrk-NAME-ROUND-SLICE.txt (its latency histogram into
# $OUT/latency-NAME-ROUND-SLICE.txt), the CPU clock ticks of PIDS into
# $OUT/ticks-NAME-ROUND-SLICE.txt, and, into $OUT/machine-NAME-ROUND-SLICE.txt, where the
# whole machine's time went (ticks): the upstream double's CPU, the machine's busy and idle
# time. Per request, "else" is the busy time of everything but the server and the upstream
# (wrk, the kernel's softirqs, other work on the machine). A server that is cheap per call
# yet slower can only be leaving the cores idle or making the others work harder; this
# tells which.
load() {
    local name=$1 round=$2 slice=$3 url=$4 key=$5 before upstream_before machine_before machine_after
    shift 5
    if [[ $slice == 1 ]]; then
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$ROOT/bench/chat_json.lua" -H "Authorization: Bearer $key" "$url" >/dev/null
    fi
    before=$(cpu_ticks_of "$@")
    upstream_before=$(cpu_ticks_of "${PID_OF[upstream]}")
    machine_before=$(machine_ticks)
    WRK_LATENCY_HISTOGRAM="$OUT/latency-$name-$round-$slice.txt" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 30s --latency -s "$ROOT/bench/chat_json.lua" \
        -H "Authorization: Bearer $key" "$url" >"$OUT/wrk-$name-$round-$slice.txt"
    machine_after=$(machine_ticks)
    echo $(($(cpu_ticks_of "$@") - before)) >"$OUT/ticks-$name-$round-$slice.txt"
    echo "$(($(cpu_ticks_of "${PID_OF[upstream]}") - upstream_before)) $machine_before $machine_after" \
        | awk '{print $1, $4 - $2, $5 - $3}' >"$OUT/machine-$name-$round-$slice.txt"
    if grep -q 'Non-2xx\|Socket errors' "$OUT/wrk-$name-$round-$slice.txt"; then
        echo "nginx.sh: $name had errors:" >&2
        cat "$OUT/wrk-$name-$round-$slice.txt" >&2
        exit 1
    fi
}

# where NAME ROUND: per request, the upstream double's CPU, everything else's busy time and
# the idle time, in microseconds.
where() {
    local server
    # shellcheck disable=SC2046
    server=$(awk '{ticks += $1} END {print ticks + 0}' $(slices ticks "$1" "$2"))
    # shellcheck disable=SC2046
    awk -v server="$server" -v tick="$TICK_MICROSECONDS" -v n="$(requests "$1" "$2")" \
        '{upstream += $1; busy += $2; idle += $3}
        END {printf "%.1f %.1f %.1f\n", upstream * tick / n, (busy - server - upstream) * tick / n, idle * tick / n}' \
        $(slices machine "$1" "$2")
}
# milliseconds LATENCY: wrk's "812.00us", "5.20ms" or "1.01s" in milliseconds.
milliseconds() {
    awk -v value="$1" 'BEGIN {
        if (value ~ /us$/) { sub(/us$/, "", value); printf "%.3f", value / 1000 }
        else if (value ~ /ms$/) { sub(/ms$/, "", value); printf "%.3f", value }
        else { sub(/s$/, "", value); printf "%.3f", value * 1000 } }'
}
median() { sort -n | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'; }
header() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start: $LOAD_BEFORE"
}

if [[ $CALLGRIND == 1 ]]; then
    BINARIES=("current:$KEYGATE")
    [[ -n $BASELINE_BIN ]] && BINARIES+=("baseline:$BASELINE_BIN")
    header | tee "$OUT/summary.txt"
    for entry in "${BINARIES[@]}"; do
        name=${entry%%:*}
        start_keygate "$name" "${entry#*:}" valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind-$name.out" --instr-atstart=no
        make_keys "$name"
        check "keygate ($name)" "${GATEWAY[$name]}/compatible-mode/v1/chat/completions" "$(head -1 "$WORK/keys-$name.txt")"
    done
    for round in $(seq "$ROUNDS"); do
        for entry in "${BINARIES[@]}"; do
            name=${entry%%:*}
            key=$(sed -n "$((KEYS / 2))p" "$WORK/keys-$name.txt")
            url="${GATEWAY[$name]}/compatible-mode/v1/chat/completions"
            wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" -s "$ROOT/bench/chat_json.lua" -H "Authorization: Bearer $key" "$url" >/dev/null
            callgrind_control -i on "${PID_OF[$name]}" >/dev/null
            callgrind_control -z "${PID_OF[$name]}" >/dev/null
            wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --timeout 30s -s "$ROOT/bench/chat_json.lua" -H "Authorization: Bearer $key" "$url" >"$OUT/wrk-$name-$round.txt"
            requests=$(awk '/requests in/ {print $1}' "$OUT/wrk-$name-$round.txt")
            total=$(callgrind_control -e Ir "${PID_OF[$name]}" 2>/dev/null | awk '$1 == "Th" {gsub(",", "", $3); sum += $3} END {print sum + 0}')
            callgrind_control -i off "${PID_OF[$name]}" >/dev/null 2>&1
            awk -v total="$total" -v n="$requests" 'BEGIN {printf "%.0f\n", total / n}' >"$OUT/instructions-$name-$round.txt"
        done
    done
    {
        echo "keygate's instructions per forwarded chat call (callgrind, every thread, user space), wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS round(s):"
        for entry in "${BINARIES[@]}"; do
            name=${entry%%:*}
            echo "$name (${entry#*:}): median $(for r in $(seq "$ROUNDS"); do cat "$OUT/instructions-$name-$r.txt"; done | median) (each round: $(for r in $(seq "$ROUNDS"); do printf '%s ' "$(cat "$OUT/instructions-$name-$r.txt")"; done))"
        done
    } | tee -a "$OUT/summary.txt"
    exit 0
fi

# The keygates of this run: this tree's, and the optional baselines and preloaded ones.
KEYGATES=(keygate)
start_keygate keygate "$KEYGATE"
make_keys keygate
if [[ -n $BASELINE_BIN ]]; then
    KEYGATES+=(baseline)
    start_keygate baseline "$BASELINE_BIN"
    make_keys baseline
fi
if [[ -n ${SECOND_BASELINE_BIN:-} ]]; then
    KEYGATES+=(baseline2)
    start_keygate baseline2 "$SECOND_BASELINE_BIN"
    make_keys baseline2
fi
if [[ -n ${PRELOAD:-} ]]; then
    KEYGATES+=(preload)
    start_keygate preload "$KEYGATE" env LD_PRELOAD="$PRELOAD"
    make_keys preload
fi
if [[ -n ${VARIANT_ENV:-} ]]; then
    KEYGATES+=(variant)
    # shellcheck disable=SC2086
    start_keygate variant "$KEYGATE" env $VARIANT_ENV
    make_keys variant
fi
KEY=$(sed -n "$((KEYS / 2))p" "$WORK/keys-keygate.txt")

# start_nginx NAME: nginx with its own prefix, configuration and temporary directories
# ($WORK/NAME), in the foreground (its master process is the one `start` records), its URL
# in NGINX_URL[NAME].
declare -A NGINX_URL
start_nginx() {
    local name=$1 port
    mkdir -p "$WORK/$name/logs" "$WORK/$name/temp"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    {
        cat <<EOF
worker_processes $WORKERS;
daemon off;
pid $WORK/$name/nginx.pid;
error_log $WORK/$name/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/$name/temp/body;
    proxy_temp_path $WORK/$name/temp/proxy;
    fastcgi_temp_path $WORK/$name/temp/fastcgi;
    uwsgi_temp_path $WORK/$name/temp/uwsgi;
    scgi_temp_path $WORK/$name/temp/scgi;
    map_hash_bucket_size 128;
    map_hash_max_size 4096;
    map \$http_authorization \$key_ok {
        default 0;
EOF
        sed 's/.*/        "Bearer &" 1;/' "$WORK/keys-keygate.txt"
        cat <<EOF
    }
    upstream bench_upstream {
        server ${UPSTREAM#http://};
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location = /compatible-mode/v1/chat/completions {
            if (\$key_ok = 0) { return 401; }
            proxy_pass http://bench_upstream/v1/chat/completions;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer upstream-secret";
        }
    }
}
EOF
    } >"$WORK/$name/nginx.conf"
    start "$name" nginx -p "$WORK/$name" -c "$WORK/$name/nginx.conf" -e "$WORK/$name/logs/error.log"
    NGINX_URL[$name]="http://127.0.0.1:$port"
    for _ in $(seq 100); do
        curl -s -o /dev/null "${NGINX_URL[$name]}/" && break
        sleep 0.1
    done
}
start_nginx nginx
NGINX=${NGINX_URL[nginx]}
# CONTROL=1: a second nginx, the same configuration, in the same rounds: the spread of two
# identical servers' ratio is the benchmark's own noise, beside which keygate's is read.
NGINXES=(nginx)
if [[ ${CONTROL:-0} == 1 ]]; then
    start_nginx nginx2
    NGINXES+=(nginx2)
fi
# nginx_pids [NAME]: an nginx's master and workers (NAME nginx by default).
nginx_pids() { echo "${PID_OF[${1:-nginx}]}" $(pgrep -P "${PID_OF[${1:-nginx}]}"); }

for name in "${NGINXES[@]}"; do
    check "$name" "${NGINX_URL[$name]}/compatible-mode/v1/chat/completions" "$KEY"
done
for name in "${KEYGATES[@]}"; do
    check "$name" "${GATEWAY[$name]}/compatible-mode/v1/chat/completions" "$(sed -n "$((KEYS / 2))p" "$WORK/keys-$name.txt")"
done
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer sk-not-a-key' "$NGINX/compatible-mode/v1/chat/completions")
[[ $status == 401 ]] || { echo "nginx.sh: nginx answered $status to an unknown key, expected 401" >&2; exit 1; }

if [[ ${HOLD:-0} == 1 ]]; then
    # The servers held for probing by hand (perf, strace, wrk): their URLs, keys and
    # process ids in $OUT/hold.env, until interrupted.
    {
        echo "NGINX_URL=$NGINX/compatible-mode/v1/chat/completions"
        echo "NGINX_PIDS='$(nginx_pids)'"
        echo "KEY=$KEY"
        for name in "${KEYGATES[@]}"; do
            echo "${name^^}_URL=${GATEWAY[$name]}/compatible-mode/v1/chat/completions"
            echo "${name^^}_KEY=$(sed -n "$((KEYS / 2))p" "$WORK/keys-$name.txt")"
            echo "${name^^}_PID=${PID_OF[$name]}"
        done
        echo "UPSTREAM_PID=${PID_OF[upstream]}"
    } >"$OUT/hold.env"
    echo "nginx.sh: HOLD=1: servers held, their addresses in $OUT/hold.env; Ctrl-C (or TERM) stops them"
    # `wait` on a background sleep (stopped with the servers), so that a signal is handled
    # at once.
    while true; do
        sleep 3600 &
        PIDS+=($!)
        wait $!
    done
fi

header | tee "$OUT/summary.txt"
echo "nginx.sh: $ROUNDS rounds of $SLICES x wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after $WARMUP warm-up); nginx $WORKERS workers; ${KEYGATES[*]}: $WORKERS worker threads each"
SERVERS_RUN=("${NGINXES[@]}" "${KEYGATES[@]}")
for round in $(seq "$ROUNDS"); do
    # Each round starts with the next server in turn, so that none always follows another.
    count=${#SERVERS_RUN[@]}
    for slice in $(seq "$SLICES"); do
        for i in $(seq 0 $((count - 1))); do
            name=${SERVERS_RUN[$(((round - 1 + i) % count))]}
            if [[ $name == nginx* ]]; then
                # shellcheck disable=SC2046
                load "$name" "$round" "$slice" "${NGINX_URL[$name]}/compatible-mode/v1/chat/completions" "$KEY" $(nginx_pids "$name")
            else
                load "$name" "$round" "$slice" "${GATEWAY[$name]}/compatible-mode/v1/chat/completions" \
                    "$(sed -n "$((KEYS / 2))p" "$WORK/keys-$name.txt")" "${PID_OF[$name]}"
            fi
        done
    done
    echo "nginx.sh: round $round of $ROUNDS done"
done

{
    echo "wrk: $THREADS threads, $CONNECTIONS connections, $SLICES x $DURATION per round after a $WARMUP warm-up, $ROUNDS rounds alternating; nginx $WORKERS workers with a map of $KEYS keys, keygate $WORKERS worker threads with $KEYS keys"
    echo "(latencies: p50, p90 and p99 over all of a round's requests, its slices' histograms merged; 'worst p99' the highest of its slices' own p99s."
    echo " Per request, in microseconds of one core: CPU the server used; the upstream double's CPU; everything else's busy time; the cores' idle time)"
    printf '%-8s %5s %11s %9s %9s %9s %10s %12s %9s %9s %9s\n' server round requests/s p50 p90 p99 "worst p99" "CPU us/req" upstream else idle
    for round in $(seq "$ROUNDS"); do
        for name in "${SERVERS_RUN[@]}"; do
            # shellcheck disable=SC2046
            printf '%-8s %5s %11s %9s %9s %9s %10s %12s %9s %9s %9s\n' "$name" "$round" "$(requests_per_second "$name" "$round")" \
                "$(round_percentile "$name" "$round" 50)" "$(round_percentile "$name" "$round" 90)" "$(round_percentile "$name" "$round" 99)" \
                "$(percentile "$name" "$round" 99%)" "$(cpu_per_request "$name" "$round")" $(where "$name" "$round")
        done
    done
    for name in "${SERVERS_RUN[@]}"; do
        round=$(median_round "$name")
        echo "$name median round: $(requests_per_second "$name" "$round") requests/s, p99 $(round_percentile "$name" "$round" 99), CPU $(for r in $(seq "$ROUNDS"); do cpu_per_request "$name" "$r"; done | median) us/request (median)"
    done
    # ratio_per_round NAME READ: server NAME's figure (a keygate's, or the control nginx2's)
    # over nginx's, each round, READ a function of NAME ROUND that prints a latency in wrk's units.
    ratio_per_round() {
        local r
        for r in $(seq "$ROUNDS"); do
            awk -v k="$(milliseconds "$("$2" "$1" "$r")")" -v n="$(milliseconds "$("$2" nginx "$r")")" 'BEGIN {printf "%.2f\n", k / n}'
        done
    }
    round_p99() { round_percentile "$1" "$2" 99; }
    worst_slice_p99() { percentile "$1" "$2" 99%; }
    for name in "${SERVERS_RUN[@]:1}"; do
        throughput=$(for r in $(seq "$ROUNDS"); do awk -v k="$(requests_per_second "$name" "$r")" -v n="$(requests_per_second nginx "$r")" 'BEGIN {printf "%.2f\n", k / n}'; done)
        p99=$(ratio_per_round "$name" round_p99)
        worst=$(ratio_per_round "$name" worst_slice_p99)
        if [[ $name == nginx2 ]]; then
            throughput_target="the control: two identical servers"
            p99_target=$throughput_target
        else
            throughput_target="target >= 1.0"
            p99_target="target <= 1.2"
        fi
        echo "$name/nginx requests/s: median $(median <<<"$throughput") (each round: $(tr '\n' ' ' <<<"$throughput")); $throughput_target"
        echo "$name/nginx p99:        median $(median <<<"$p99") (each round: $(tr '\n' ' ' <<<"$p99")); $p99_target"
        echo "$name/nginx worst p99:  median $(median <<<"$worst") (each round: $(tr '\n' ' ' <<<"$worst")); the highest slice's p99 of each round, as reported before 2026-12-05"
    done
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$OUT/summary.txt"
