#!/usr/bin/env bash
# bench/tcpbuf.sh: TCP throughput against the socket buffer size (issue 5, item 5: "size the
# TCP windows and buffers for throughput"). One connection moves BYTES one way at a time:
# host -> guest (the guest reads to end of stream) and guest -> host (the guest writes). The
# server is `tests/c/net_server.c stream`, musl static; the host side is bench/stream_client.c.
#
# Kiln (pc, QEMU user networking with QEMU's own port forwarding, as for Linux) runs once per
# buffer size in SIZES, the server setting SO_RCVBUF and SO_SNDBUF on its listening socket to
# half of it (Linux, and Kiln with it, doubles what the app asks for; 0: the server sets
# nothing, and Kiln sizes the buffers from the guest's memory, TcpBuffers in
# libc-shim/src/net/stack.rs); the Linux guest (bench/linux-guest.sh,
# same QEMU settings) runs with Linux's defaults (autotuned buffers), natively too, for scale.
# With TAP=1 (root) the same runs go over a tap device as well, without slirp in the path.
# Every figure is the median of REPS transfers. Writes section (i) of bench/REPORT.md. Not a
# test; CI does not run it.
#
# Environment: SIZES (default "0 32768 65536 131072 262144 524288 1048576"), BYTES (default
# 50000000), REPS (default 3), MEM (default 256M), TAP (default 0), BAKE.
set -euo pipefail
set -m # each background server in a process group of its own (stop kills the group)
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/lib.sh

SIZES=${SIZES:-0 32768 65536 131072 262144 524288 1048576}
BYTES=${BYTES:-50000000}
REPS=${REPS:-3}
MEM=${MEM:-256M}
TAP=${TAP:-0}
BAKE=${BAKE:-$root/target/release/bake}
out=$root/bench/out/tcpbuf
report=$root/bench/REPORT.md
lg=$root/bench/linux-guest.sh
mkdir -p "$out"

log() { printf '[bench/tcpbuf] %s\n' "$*" >&2; }

for t in musl-gcc gcc qemu-system-x86_64; do
    command -v $t >/dev/null || { log "$t missing: run scripts/setup.sh"; exit 1; }
done
[ -x "$BAKE" ] || cargo build --release -p bake
musl-gcc -static -O2 -Wall -o "$out/net_server" tests/c/net_server.c -lpthread
gcc -O2 -Wall -o "$out/stream_client" bench/stream_client.c

TAPDEV=kilntap1 HOST_IP=192.168.78.1 GUEST_IP=192.168.78.2
GPORT=7100

# start SIDE BUF: the stream server on SIDE (native, kiln, linux, kiln-tap, linux-tap) with
# buffer size BUF; sets $host, $port (where the host connects) and $server_pid.
start() {
    local side=$1 size=$2 buf=$(($2 / 2))
    case $side in
        native) host=127.0.0.1 port=$GPORT ;;
        *-tap) host=$GUEST_IP port=$GPORT ;;
        *) host=127.0.0.1 port=$(free_port) ;;
    esac
    case $side in
        native) "$out/net_server" stream $GPORT "$buf" ;;
        kiln) KILN_DIRECT_HOSTFWD=1 "$BAKE" run --machine pc --mem "$MEM" --timeout 900 \
            -p "$port:$GPORT" "$out/net_server" -- stream $GPORT "$buf" ;;
        linux) "$lg" run --machine pc --mem "$MEM" --timeout 900 --hostfwd "$port:$GPORT" \
            "$out/net_server" stream $GPORT "$buf" ;;
        kiln-tap) "$BAKE" run --machine pc --mem "$MEM" --timeout 900 --net tap:$TAPDEV \
            --ip $GUEST_IP/24 --gateway $HOST_IP "$out/net_server" -- stream $GPORT "$buf" ;;
        linux-tap) "$lg" run --machine pc --mem "$MEM" --timeout 900 --tap $TAPDEV \
            --ip $GUEST_IP/24 --gateway $HOST_IP "$out/net_server" stream $GPORT "$buf" ;;
    esac >"$out/$side-$size.log" 2>&1 &
    server_pid=$!
}

# A line per (side, buffer) in $results: side buf up=MB/s down=MB/s (medians; up = host ->
# guest).
results=$out/results
: >"$results"

# stop: waits up to 30 s for the server (and its VM) to end after "quit", then kills its whole
# process group (linux-guest.sh's QEMU with it), so that the next run finds the port and tap
# free.
stop() {
    for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -- -"$server_pid" 2>/dev/null || kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

measure() {
    local side=$1 buf=$2 ready=0
    start "$side" "$buf"
    # A 1-byte transfer proves the server listens (QEMU accepts on the host port before it).
    for _ in $(seq 900); do
        if "$out/stream_client" "$host" "$port" send 1 >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ $ready = 0 ]; then
        log "$side: the server did not come up (see $out/$side-$buf.log)"
        stop
        return
    fi
    local up=() down=() r
    for _ in $(seq "$REPS"); do
        r=$("$out/stream_client" "$host" "$port" send "$BYTES" || true)
        up+=("$(echo "$r" | sed -n 's/^MBps=\([0-9.]*\).*/\1/p')")
        r=$("$out/stream_client" "$host" "$port" recv "$BYTES" || true)
        down+=("$(echo "$r" | sed -n 's/^MBps=\([0-9.]*\).*/\1/p')")
    done
    "$out/stream_client" "$host" "$port" quit >/dev/null 2>&1 || true
    stop
    local bufs
    bufs=$(sed -n 's/.*(SO_RCVBUF \([0-9]*\), SO_SNDBUF \([0-9]*\)).*/\1\/\2/p' "$out/$side-$buf.log" | head -1)
    echo "$side $buf up=$(printf '%s\n' "${up[@]}" | grep . | median) down=$(printf '%s\n' "${down[@]}" | grep . | median) reported=${bufs:-?}" | tee -a "$results" >&2
}

nets="user"
if [ "$TAP" = 1 ]; then
    tap_check $TAPDEV || exit 1
    trap 'ip link del $TAPDEV 2>/dev/null || true' EXIT
    tap_up $TAPDEV $HOST_IP $GUEST_IP
    nets="user tap"
fi
"$lg" build >/dev/null 2>&1 || [ -e bench/out/linux-guest/vmlinuz ] || log "the Linux guest could not be built"

measure native 0
for net in $nets; do
    sfx=""
    [ "$net" = tap ] && sfx=-tap
    measure "linux$sfx" 0
    for buf in $SIZES; do measure "kiln$sfx" "$buf"; done
done

val() { awk -v s="$1" -v b="$2" -v k="$3" '$1 == s && $2 == b { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$results"; }
kib() { if [ "$1" = 0 ]; then echo "default"; else echo "$(($1 / 1024)) KiB"; fi; }

section=$out/section.md
{
    echo "## (i) TCP buffer sizes and bulk throughput (bench/tcpbuf.sh)"
    echo
    echo "$(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg), TCG, $MEM guests, pc machine."
    echo "One connection, $BYTES bytes one way per transfer, median of $REPS; MB/s (10^6 bytes)."
    echo "\"up\" is host -> guest (the guest receives), \"down\" guest -> host (the guest sends)."
    echo "Kiln's server sets SO_RCVBUF and SO_SNDBUF on its listening socket to half the size in the"
    echo "table (the kernel doubles it, as Linux does; \"default\": it sets nothing, and Kiln gives"
    echo "$(val kiln 0 reported | cut -d/ -f1) bytes at $MEM); the Linux guest keeps Linux's autotuned defaults. Natively (host loopback):"
    echo "up $(val native 0 up), down $(val native 0 down)."
    for net in $nets; do
        sfx=""
        [ "$net" = tap ] && sfx=-tap
        echo
        echo "### On $([ "$net" = tap ] && echo "a tap device" || echo "QEMU user networking")"
        echo
        echo "| buffer (each direction) | Kiln up | Kiln down | Kiln / Linux up | Kiln / Linux down |"
        echo "|---|---|---|---|---|"
        lu=$(val "linux$sfx" 0 up) ld=$(val "linux$sfx" 0 down)
        for buf in $SIZES; do
            u=$(val "kiln$sfx" "$buf" up) d=$(val "kiln$sfx" "$buf" down)
            echo "| $(kib "$buf") | ${u:-n/a} | ${d:-n/a} | $(ratio "$u" "$lu") | $(ratio "$d" "$ld") |"
        done
        echo "| Linux guest (default) | ${lu:-n/a} | ${ld:-n/a} | | |"
    done
} >"$section"
cat "$section"
write_section "$report" i "$section"
log "section (i) written to $report; raw figures $results"
