#!/usr/bin/env bash
# bench/net.sh: network throughput and latency (issue 5, item 5). The same static servers
# (tests/c/net_server.c, musl static: an epoll HTTP server and a TCP echo server with a thread
# per connection) natively, in Kiln (microvm and pc) and in a minimal Linux guest
# (bench/linux-guest.sh, pc), all loaded from the host through QEMU user networking's port
# forwarding (natively: directly): wrk for HTTP (requests/s, mean and 99th-percentile latency),
# bench/echo_client.c for echo (round trips/s and latency with small messages, MB/s with large
# ones). With TAP=1 (root; creates the tap device kilntap0, host 192.168.77.1/24, and deletes
# it at exit) Kiln (microvm and pc) and the Linux guest (pc) also run on that tap device, the
# guest at 192.168.77.2 (static), without QEMU user networking's slirp in the path; the section
# then has a subsection with the tap figures and the Kiln pc / Linux ratios on both networks.
# Writes section (g) of bench/REPORT.md (replacing it if present). Not a test; CI does not run it.
#
# Kiln's user-networking runs set KILN_DIRECT_HOSTFWD=1: QEMU forwards the port itself, as for
# the Linux guest (bake's own port relay, its default, would add a host hop to Kiln's side only).
#
# Environment: SECS (default 10) seconds per load run; CONNS (default 32) wrk connections;
# BAKE (default target/release/bake); MEM (default 256M) guest memory for Kiln and Linux alike.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/lib.sh

SECS=${SECS:-10}
CONNS=${CONNS:-32}
MEM=${MEM:-256M}
TAP=${TAP:-0}
BAKE=${BAKE:-$root/target/release/bake}
out=$root/bench/out/net
report=$root/bench/REPORT.md
lg=$root/bench/linux-guest.sh
mkdir -p "$out"

log() { printf '[bench/net] %s\n' "$*" >&2; }

for t in musl-gcc gcc qemu-system-x86_64 wrk curl; do
    command -v $t >/dev/null || { log "$t missing: run scripts/setup.sh"; exit 1; }
done
[ -x "$BAKE" ] || cargo build --release -p bake
musl-gcc -static -O2 -Wall -o "$out/net_server" tests/c/net_server.c -lpthread
gcc -O2 -Wall -o "$out/echo_client" bench/echo_client.c -lpthread


# start_server SIDE PORT ARGS...: runs net_server ARGS in the background on SIDE
# (native, kiln, kiln-pc, linux); the server's host port is PORT, its guest port the
# ARGS' own. Sets $server_pid.
start_server() {
    local side=$1 port=$2 gport=$4
    shift 2
    # QEMU forwards host port PORT to the guest port the server listens on.
    case $side in
        native) "$out/net_server" "$@" >"$out/$side.log" 2>&1 & ;;
        kiln) KILN_DIRECT_HOSTFWD=1 "$BAKE" run --mem "$MEM" --timeout 600 -p "$port:$gport" "$out/net_server" -- "$@" >"$out/$side.log" 2>&1 & ;;
        kiln-pc) KILN_DIRECT_HOSTFWD=1 "$BAKE" run --machine pc --mem "$MEM" --timeout 600 -p "$port:$gport" "$out/net_server" -- "$@" >"$out/$side.log" 2>&1 & ;;
        kiln-tap) "$BAKE" run --mem "$MEM" --timeout 600 --net tap:$TAPDEV --ip $GUEST_IP/24 --gateway $HOST_IP "$out/net_server" -- "$@" >"$out/$side.log" 2>&1 & ;;
        kiln-pc-tap) "$BAKE" run --machine pc --mem "$MEM" --timeout 600 --net tap:$TAPDEV --ip $GUEST_IP/24 --gateway $HOST_IP "$out/net_server" -- "$@" >"$out/$side.log" 2>&1 & ;;
        linux-tap) "$lg" run --machine pc --mem "$MEM" --timeout 600 --tap $TAPDEV --ip $GUEST_IP/24 --gateway $HOST_IP "$out/net_server" "$@" >"$out/$side.log" 2>&1 & ;;
        linux) "$lg" run --machine pc --mem "$MEM" --timeout 600 --hostfwd "$port:$gport" "$out/net_server" "$@" >"$out/$side.log" 2>&1 & ;;
    esac
    server_pid=$!
}

# host_of SIDE: the address the host reaches the server at.
host_of() { case $1 in *-tap) echo "$GUEST_IP" ;; *) echo 127.0.0.1 ;; esac; }

wait_http() {
    local url=$1
    for _ in $(seq 600); do
        curl -s -m 2 "$url" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# A line of results per (side, load) in $out/results: side load key=value...
results=$out/results
: >"$results"

# ports SIDE GUEST_PORT: sets $port (where the host connects), $gport (where the server
# listens) and $host for a server on SIDE.
ports() {
    port=$(free_port)
    gport=$2
    [ "$1" = native ] && gport=$port
    host=$(host_of "$1")
    case $1 in *-tap) port=$2 ;; esac
    return 0
}

bench_http() {
    local side=$1 port gport host
    ports "$side" 8080
    start_server "$side" "$port" http "$gport"
    if ! wait_http "http://$host:$port/"; then
        log "$side: the HTTP server did not come up (see $out/$side.log)"
        kill "$server_pid" 2>/dev/null || true
        return
    fi
    log "$side: wrk -t2 -c$CONNS -d${SECS}s"
    local w
    w=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency "http://$host:$port/")
    echo "$w" >"$out/$side.wrk"
    local rps avg p99 errs
    rps=$(echo "$w" | awk '/^Requests\/sec/ {print $2}')
    avg=$(echo "$w" | awk '$1 == "Latency" {print $2; exit}')
    p99=$(echo "$w" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$w" | grep -c -e "Socket errors" -e "Non-2xx" || true)
    echo "$side http rps=$rps avg=$avg p99=$p99 errors=$errs" >>"$results"
    curl -s -m 5 "http://$host:$port/exit" >/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

bench_echo() {
    local side=$1 port gport host
    ports "$side" 7000
    # A probe (a round trip proves the guest listens: QEMU accepts on the host port before
    # it does), 1 connection of small messages, 8 of them, 1 of 256 KiB messages: 11.
    start_server "$side" "$port" echo "$gport" 11
    local ready=0
    for _ in $(seq 600); do
        if "$out/echo_client" "$host" "$port" 1 0.2 1 >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ $ready = 0 ]; then
        log "$side: the echo server did not come up (see $out/$side.log)"
        kill "$server_pid" 2>/dev/null || true
        return
    fi
    log "$side: echo"
    local one eight big
    one=$("$out/echo_client" "$host" "$port" 1 "$SECS" 64 || true)
    eight=$("$out/echo_client" "$host" "$port" 8 "$SECS" 64 || true)
    big=$("$out/echo_client" "$host" "$port" 1 "$SECS" 262144 || true)
    get() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
    echo "$side echo1 tps=$(get "$one" trips_per_s) mean_us=$(get "$one" mean_us) p99_us=$(get "$one" p99_us) failed=$(get "$one" failed)" >>"$results"
    echo "$side echo8 tps=$(get "$eight" trips_per_s) mean_us=$(get "$eight" mean_us) p99_us=$(get "$eight" p99_us) failed=$(get "$eight" failed)" >>"$results"
    echo "$side bulk MBps=$(get "$big" MBps) failed=$(get "$big" failed)" >>"$results"
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

TAPDEV=kilntap0 HOST_IP=192.168.77.1 GUEST_IP=192.168.77.2
sides="native kiln kiln-pc linux"
if [ "$TAP" = 1 ]; then
    tap_check $TAPDEV || exit 1
    trap 'ip link del $TAPDEV 2>/dev/null || true' EXIT
    tap_up $TAPDEV $HOST_IP $GUEST_IP
    sides="$sides kiln-tap kiln-pc-tap linux-tap"
fi
"$lg" build >/dev/null 2>&1 || [ -e bench/out/linux-guest/vmlinuz ] || log "the Linux guest could not be built"
for side in $sides; do
    bench_http "$side"
    bench_echo "$side"
done
cat "$results" >&2

val() { awk -v s="$1" -v l="$2" -v k="$3" '$1 == s && $2 == l { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$results"; }
# Latencies from wrk come with units (us, ms, s): in microseconds.
us() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1e6 } else print "n/a" }'; }

row() { # row LABEL LOAD KEY [us]
    local label=$1 load=$2 key=$3 conv=${4:-}
    local cells=() v
    for side in native kiln kiln-pc linux; do
        v=$(val "$side" "$load" "$key")
        [ -n "$conv" ] && v=$(us "$v")
        cells+=("${v:-n/a}")
    done
    echo "| $label | ${cells[0]} | ${cells[1]} | ${cells[2]} | ${cells[3]} | $(ratio "${cells[2]}" "${cells[3]}") | $(ratio "${cells[1]}" "${cells[0]}") |"
}

taprow() { # taprow LABEL LOAD KEY [us]: the tap sides and both Kiln pc / Linux ratios
    local label=$1 load=$2 key=$3 conv=${4:-}
    local cells=() v side
    for side in kiln-tap kiln-pc-tap linux-tap kiln-pc linux; do
        v=$(val "$side" "$load" "$key")
        [ -n "$conv" ] && v=$(us "$v")
        cells+=("${v:-n/a}")
    done
    echo "| $label | ${cells[0]} | ${cells[1]} | ${cells[2]} | $(ratio "${cells[1]}" "${cells[2]}") | $(ratio "${cells[3]}" "${cells[4]}") |"
}

section=$(mktemp)
{
    echo "## (g) Network: HTTP and TCP echo from the host (bench/net.sh)"
    echo
    echo "$(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg), ${SECS} s per run, TCG, $MEM guests,"
    echo "QEMU user networking (slirp) with a forwarded port for Kiln and Linux; natively the"
    echo "host's loopback. Servers: \`tests/c/net_server.c\` (musl static, the same file everywhere)."
    echo
    echo "| figure | native | Kiln microvm | Kiln pc | Linux guest pc | Kiln pc / Linux | Kiln / native |"
    echo "|---|---|---|---|---|---|---|"
    row "HTTP requests/s (wrk -c$CONNS)" http rps
    row "HTTP mean latency (us)" http avg us
    row "HTTP p99 latency (us)" http p99 us
    row "echo round trips/s, 1 conn, 64 B" echo1 tps
    row "echo mean latency (us), 1 conn" echo1 mean_us
    row "echo round trips/s, 8 conns, 64 B" echo8 tps
    row "echo p99 latency (us), 8 conns" echo8 p99_us
    row "echo MB/s, 1 conn, 256 KiB messages" bulk MBps
    echo
    echo "Ratios of rates: above 1 means Kiln is faster; of latencies: below 1 means Kiln is"
    echo "faster. Every side runs the same binary under the same QEMU (TCG, one vCPU) where it"
    echo "is a guest; the native column is the host's own loopback, no VM, for scale. wrk's and"
    echo "the echo client's own errors are checked: a run with errors shows them in"
    echo "bench/out/net/results."
    if [ "$TAP" = 1 ]; then
        echo
        echo "### (g.1) On a tap device (TAP=1): Kiln and Linux without slirp"
        echo
        echo "Same run ($(date -u +%Y-%m-%d), load average at its end $(cut -d' ' -f1-3 /proc/loadavg)). The guests"
        echo "on the host tap device $TAPDEV ($HOST_IP/24, guest $GUEST_IP static, virtio-net-pci"
        echo "modern for pc, virtio-mmio for microvm); the user-networking columns repeat the table"
        echo "above for the ratio."
        echo
        echo "| figure | Kiln microvm tap | Kiln pc tap | Linux pc tap | Kiln pc / Linux, tap | Kiln pc / Linux, user net |"
        echo "|---|---|---|---|---|---|"
        taprow "HTTP requests/s (wrk -c$CONNS)" http rps
        taprow "HTTP mean latency (us)" http avg us
        taprow "HTTP p99 latency (us)" http p99 us
        taprow "echo round trips/s, 1 conn, 64 B" echo1 tps
        taprow "echo mean latency (us), 1 conn" echo1 mean_us
        taprow "echo round trips/s, 8 conns, 64 B" echo8 tps
        taprow "echo p99 latency (us), 8 conns" echo8 p99_us
        taprow "echo MB/s, 1 conn, 256 KiB messages" bulk MBps
        echo
        echo "Same directions as above (rates: above 1 means Kiln is faster; latencies: below 1)."
    fi
} >"$section"
cat "$section"
write_section "$report" g "$section"
rm -f "$section"
log "section (g) written to $report"
