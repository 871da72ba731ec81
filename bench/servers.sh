#!/usr/bin/env bash
# bench/servers.sh: redis and nginx, the static binaries `bake pkg build redis|nginx` makes from
# packages/, in Kiln and in a minimal Linux guest (bench/linux-guest.sh) on the same QEMU
# settings: TCG, -cpu max, machine $MACHINE, $MEM of memory, one vCPU, a virtio-net NIC on a
# host tap device (no QEMU user networking: its backlog of 1 stalls 50 clients connecting at
# once). Both sides get the recipe's files/ (config, page) and the same arguments.
#
#   bench/servers.sh          (root: it makes the tap device $TAPDEV and deletes it at exit)
#
# Measures, per server and side:
#   boot to ready   QEMU start (the launcher's start: `bake run IMAGE`, or linux-guest.sh run
#                   with an initramfs packed beforehand) until redis answers PING with +PONG,
#                   or nginx answers GET / with 200; the median of $RUNS boots
#   throughput      redis-benchmark -t set,get -c $CLIENTS, at -P 1 ($REDIS_N requests per
#                   test) and at -P 16 ($REDIS_N_PIPE); wrk -t2 -c$WRK_CONNS -d${WRK_SECS}s on
#                   nginx's index.html (314 bytes); errors are counted and reported
#   QEMU RSS        the QEMU process's resident memory on the host after the loads
#   memory needed   the smallest guest memory of $MEM_STEPS (MiB) at which the server boots,
#                   answers, takes a small load (redis-benchmark -n 2000 -c 10; wrk -c10 -d3s)
#                   and still answers; bisected, assuming more memory never hurts
#   image size      Kiln's image file (and gzip -9 of it) against the Linux guest's kernel
#                   (vmlinuz) plus initramfs (gzip), both as booted
# Writes section (h) of bench/REPORT.md (replacing it if present), the chart bench/servers.png
# (Kiln's advantage per figure; gnuplot, installed with apt-get if missing), and the raw
# figures, logs and tool outputs in bench/out/servers/. Not a test; CI does not run it.
#
# redis runs /etc/redis/redis.conf (packages/redis/files) with `--appendonly no`: in memory on
# both sides (the recipe's AOF would go to an in-memory /data without a volume anyway); nginx
# runs packages/nginx/files/etc/nginx/nginx.conf unchanged on both sides.
#
# Environment (defaults in brackets):
#   RUNS [5]          boots per server and side for boot to ready
#   REDIS_N [10000]   requests per redis-benchmark test at -P 1
#   REDIS_N_PIPE [100000]  requests per test at -P 16
#   CLIENTS [50]      redis-benchmark clients
#   WRK_CONNS [50]    wrk connections;  WRK_SECS [10]  seconds of wrk
#   MEM [256M]        guest memory for boot and throughput
#   MEM_STEPS ["4 6 8 10 12 16 20 24 32 40 48 64 80 96 112 128 160 192 256"]  candidates (MiB)
#                     for the memory needed
#   READY_TIMEOUT [120]  seconds a boot may take before it counts as failed
#   MEM_READY_TIMEOUT [60]  the same while looking for the memory needed
#   MACHINE [pc]      QEMU machine for both sides (pc or microvm; Linux on microvm needs
#                     LINUX_GUEST_TSC_KHZ, see bench/linux-guest.sh)
#   PARTS ["size boot throughput memory"]  which measurements to run (a run without some leaves
#                     their figures as "not measured")
#   SERVERS ["redis nginx"]
#   KEEP [0]          1: keep the figures of the previous run in bench/out/servers/raw.txt and
#                     replace only those this run measures (e.g. PARTS=memory KEEP=1 after a
#                     full run); the report then says which parts were re-run
#   TAPDEV [srvtap0], HOST_IP [192.168.79.1], GUEST_IP [192.168.79.2]  the tap network (/24)
#   BAKE [target/release/bake]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/lib.sh

RUNS=${RUNS:-5}
REDIS_N=${REDIS_N:-10000}
REDIS_N_PIPE=${REDIS_N_PIPE:-100000}
CLIENTS=${CLIENTS:-50}
WRK_CONNS=${WRK_CONNS:-50}
WRK_SECS=${WRK_SECS:-10}
MEM=${MEM:-256M}
MEM_STEPS=${MEM_STEPS:-4 6 8 10 12 16 20 24 32 40 48 64 80 96 112 128 160 192 256}
READY_TIMEOUT=${READY_TIMEOUT:-120}
MEM_READY_TIMEOUT=${MEM_READY_TIMEOUT:-60}
MACHINE=${MACHINE:-pc}
PARTS=${PARTS:-size boot throughput memory}
SERVERS=${SERVERS:-redis nginx}
KEEP=${KEEP:-0}
TAPDEV=${TAPDEV:-srvtap0}
HOST_IP=${HOST_IP:-192.168.79.1}
GUEST_IP=${GUEST_IP:-192.168.79.2}
BAKE=${BAKE:-$root/target/release/bake}
out=$root/bench/out/servers
report=$root/bench/REPORT.md
chart=$root/bench/servers.png
lg=$root/bench/linux-guest.sh
probe=$root/bench/ready_probe.py

log() { printf '[bench/servers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- checks and tools -----------------------------------------------------------------------
tap_check "$TAPDEV" || exit 1
for t in qemu-system-x86_64 python3 ip gzip; do
    command -v $t >/dev/null || die "$t missing (scripts/setup.sh installs QEMU)"
done
need_apt=()
command -v redis-benchmark >/dev/null || need_apt+=(redis-tools)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v gnuplot >/dev/null || need_apt+=(gnuplot-nox)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "apt-get install ${need_apt[*]}"
    apt-get install -y -q "${need_apt[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${need_apt[@]}" >&2; } ||
        die "cannot install ${need_apt[*]}"
fi
case $MEM in *M) ;; *) die "MEM must be in MiB, e.g. 256M (got $MEM)" ;; esac
mkdir -p "$out"
raw=$out/raw.txt
[ "$KEEP" = 1 ] || : >"$raw"
put() { echo "$*" >>"$raw"; }          # put KEY VALUE: one raw figure
get() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$raw"; }

[ -x "$BAKE" ] || cargo build --release -p bake
commit=$(git rev-parse --short HEAD)
main_commit=$(git rev-parse --short main 2>/dev/null || echo unknown)

# --- the load-average sampler and cleanup ---------------------------------------------------
loadlog=$out/loadavg.txt
[ "$KEEP" = 1 ] || : >"$loadlog"
(while sleep 5; do cut -d' ' -f1 /proc/loadavg; done >>"$loadlog") &
sampler=$!
guest_pgid=""
cleanup() {
    [ -z "$guest_pgid" ] || kill -- "-$guest_pgid" 2>/dev/null || true
    kill "$sampler" 2>/dev/null || true
    ip link del "$TAPDEV" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binaries, images, initramfs ------------------------------------------------------------
declare -A bin args files img initrd kind port
kind[redis]=redis port[redis]=6379
kind[nginx]=http port[nginx]=80
for s in $SERVERS; do
    case $s in redis | nginx) ;; *) die "unknown server $s (SERVERS: redis nginx)" ;; esac
    log "bake pkg build $s"
    # pkg build prints the program's path as its last line on stdout.
    bin[$s]=$("$BAKE" pkg build "$s" </dev/null | tail -n1)
    [ -f "${bin[$s]}" ] || die "bake pkg build $s gave no program (got '${bin[$s]}')"
    files[$s]=$root/packages/$s/files
    img[$s]=$out/$s.img
    "$BAKE" build --recipe "$s" -o "${img[$s]}" >&2
    initrd[$s]=$out/$s.initrd
done
args[redis]="/etc/redis/redis.conf --appendonly no"
args[nginx]="-c /etc/nginx/nginx.conf"
for s in $SERVERS; do
    # shellcheck disable=SC2086 # the arguments are words
    "$lg" pack --files "${files[$s]}" -o "${initrd[$s]}" "${bin[$s]}" ${args[$s]}
done

# --- the tap network ------------------------------------------------------------------------
# (tap_up's neighbour entry also keeps ARP retries from blurring boot to ready.)
tap_up "$TAPDEV" "$HOST_IP" "$GUEST_IP"

# start SIDE SERVER MEM LOG: boots SERVER on SIDE (kiln, linux) in its own process group;
# sets $guest_pgid and $t0 (the start time).
start() {
    local side=$1 s=$2 mem=$3 logf=$4
    t0=$(date +%s.%N)
    case $side in
    kiln)
        # shellcheck disable=SC2086
        setsid "$BAKE" run --machine "$MACHINE" --accel tcg --mem "$mem" --timeout 900 \
            --net "tap:$TAPDEV" --ip "$GUEST_IP/24" --gateway "$HOST_IP" \
            "${img[$s]}" -- ${args[$s]} </dev/null >"$logf" 2>&1 &
        ;;
    linux)
        setsid "$lg" run --machine "$MACHINE" --mem "$mem" --timeout 900 \
            --tap "$TAPDEV" --ip "$GUEST_IP/24" --gateway "$HOST_IP" \
            --initrd "${initrd[$s]}" </dev/null >"$logf" 2>&1 &
        ;;
    esac
    guest_pgid=$!
}

# stop: ends the guest's process group and waits until the tap is free again.
stop() {
    [ -n "$guest_pgid" ] || return 0
    kill -- "-$guest_pgid" 2>/dev/null || true
    wait "$guest_pgid" 2>/dev/null || true
    local i
    for i in $(seq 100); do
        kill -0 -- "-$guest_pgid" 2>/dev/null || break
        sleep 0.1
    done
    guest_pgid=""
}

# ready SERVER: seconds from $t0 until the server answers (empty when it did not).
ready() {
    python3 "$probe" "${kind[$1]}" "$GUEST_IP" "${port[$1]}" "$t0" "$READY_TIMEOUT" "$guest_pgid" || true
}

# qemu_rss_mib: the resident memory of the running guest's QEMU.
qemu_rss_mib() {
    local pid
    pid=$(pgrep -g "$guest_pgid" qemu-system 2>/dev/null | head -n1 || true)
    [ -n "$pid" ] || { echo n/a; return; }
    awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"
}


has_part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# --- image size -------------------------------------------------------------------------------
if has_part size; then
    vmlinuz=$root/bench/out/linux-guest/vmlinuz
    for s in $SERVERS; do
        put "$s.kiln.image_bytes" "$(stat -c %s "${img[$s]}")"
        put "$s.kiln.image_gz_bytes" "$(gzip -9c "${img[$s]}" | wc -c)"
        put "$s.linux.kernel_bytes" "$(stat -c %s "$vmlinuz")"
        put "$s.linux.initrd_bytes" "$(stat -c %s "${initrd[$s]}")"
        put "$s.linux.image_bytes" "$(($(stat -c %s "$vmlinuz") + $(stat -c %s "${initrd[$s]}")))"
        put "$s.bin_bytes" "$(stat -c %s "${bin[$s]}")"
    done
fi

# --- boot to ready ----------------------------------------------------------------------------
if has_part boot; then
    for s in $SERVERS; do
        for side in kiln linux; do : >"$out/$s.$side.boot"; done
        for i in $(seq "$RUNS"); do
            # Alternating sides spreads the machine's load changes over both.
            for side in kiln linux; do
                start "$side" "$s" "$MEM" "$out/$s.$side.boot$i.log"
                t=$(ready "$s")
                stop
                if [ -n "$t" ]; then
                    echo "$t" >>"$out/$s.$side.boot"
                    log "$s $side boot $i: ready after ${t}s"
                else
                    log "$s $side boot $i: not ready within ${READY_TIMEOUT}s (see $out/$s.$side.boot$i.log)"
                fi
            done
        done
        for side in kiln linux; do
            n=$(wc -l <"$out/$s.$side.boot")
            put "$s.$side.boot_runs" "$n"
            [ "$n" = 0 ] || put "$s.$side.boot_s" "$(median <"$out/$s.$side.boot")"
            [ "$n" = 0 ] || put "$s.$side.boot_min_s" "$(sort -g "$out/$s.$side.boot" | head -n1)"
            [ "$n" = 0 ] || put "$s.$side.boot_max_s" "$(sort -g "$out/$s.$side.boot" | tail -n1)"
        done
    done
fi

# --- throughput -------------------------------------------------------------------------------
# redis_bench SIDE P N: one redis-benchmark run (SET then GET); puts rps and errors.
redis_bench() {
    local side=$1 p=$2 n=$3 f=$out/redis.$side.P$2.csv rc=0
    log "redis $side: redis-benchmark -t set,get -c $CLIENTS -n $n -P $p"
    timeout 600 redis-benchmark -h "$GUEST_IP" -p 6379 -c "$CLIENTS" -n "$n" -P "$p" -t set,get --csv \
        >"$f" 2>"$f.err" || rc=$?
    local set get
    set=$(awk -F'","' '$1 == "\"SET" { print $2 }' "$f")
    get=$(awk -F'","' '$1 == "\"GET" { print $2 }' "$f")
    put "redis.$side.set_P$p" "${set:-n/a}"
    put "redis.$side.get_P$p" "${get:-n/a}"
    # redis-benchmark reports failed connections and server errors on stderr.
    local errs
    errs=$(grep -ci error "$f.err" || true)
    [ "$rc" = 0 ] || errs="exit $rc, $errs"
    put "redis.$side.errors_P$p" "${errs// /_}"
}

if has_part throughput; then
    for s in $SERVERS; do
        for side in kiln linux; do
            start "$side" "$s" "$MEM" "$out/$s.$side.load.log"
            t=$(ready "$s")
            if [ -z "$t" ]; then
                log "$s $side: not ready for the load (see $out/$s.$side.load.log)"
                stop
                continue
            fi
            case $s in
            redis)
                redis_bench "$side" 1 "$REDIS_N"
                redis_bench "$side" 16 "$REDIS_N_PIPE"
                ;;
            nginx)
                log "nginx $side: wrk -t2 -c$WRK_CONNS -d${WRK_SECS}s"
                w=$out/nginx.$side.wrk
                wrk -t2 -c"$WRK_CONNS" -d"${WRK_SECS}s" --timeout 10s "http://$GUEST_IP/" >"$w" 2>&1 || true
                put "nginx.$side.rps" "$(awk '/^Requests\/sec/ { print $2 }' "$w")"
                # wrk prints these lines only when there were such errors.
                non2xx=$(awk '/Non-2xx or 3xx responses/ { print $NF }' "$w")
                sockerr=$(sed -n 's/^ *Socket errors: //p' "$w" | tr -d ' ')
                put "nginx.$side.non2xx" "${non2xx:-0}"
                put "nginx.$side.socket_errors" "${sockerr:-none}"
                ;;
            esac
            put "$s.$side.qemu_rss_mib" "$(qemu_rss_mib)"
            stop
        done
    done
fi

# --- memory needed ----------------------------------------------------------------------------
# fits SIDE SERVER MIB: boots with MIB of memory, checks it answers, takes a small load and
# still answers.
fits() {
    local side=$1 s=$2 m=$3 logf=$out/$2.$1.mem$3.log ok=1
    start "$side" "$s" "${m}M" "$logf"
    local t
    t=$(READY_TIMEOUT=$MEM_READY_TIMEOUT ready "$s")
    if [ -z "$t" ]; then
        ok=0
    else
        case $s in
        redis)
            timeout 120 redis-benchmark -h "$GUEST_IP" -p 6379 -c 10 -n 2000 -t set,get -q >"$logf.load" 2>&1 || ok=0
            # Refused writes (OOM) and lost connections show as errors.
            ! grep -qi error "$logf.load" || ok=0
            ;;
        nginx)
            timeout 120 wrk -t1 -c10 -d3s --timeout 10s "http://$GUEST_IP/" >"$logf.load" 2>&1 || ok=0
            ! grep -q -e "Socket errors" -e "Non-2xx" "$logf.load" || ok=0
            ;;
        esac
        if [ $ok = 1 ]; then
            t0=$(date +%s.%N)
            [ -n "$(READY_TIMEOUT=20 ready "$s")" ] || ok=0
        fi
    fi
    stop
    log "$s $side with ${m} MiB: $([ $ok = 1 ] && echo serves || echo fails)"
    [ $ok = 1 ]
}

if has_part memory; then
    read -r -a steps <<<"$MEM_STEPS"
    for s in $SERVERS; do
        for side in kiln linux; do
            # Invariant: steps[hi] fits (checked), steps[lo] does not (or lo = -1).
            lo=-1 hi=$((${#steps[@]} - 1))
            if ! fits "$side" "$s" "${steps[$hi]}"; then
                put "$s.$side.min_mem_mib" "over_${steps[$hi]}"
                continue
            fi
            while [ $((hi - lo)) -gt 1 ]; do
                mid=$(((lo + hi) / 2))
                if fits "$side" "$s" "${steps[$mid]}"; then hi=$mid; else lo=$mid; fi
            done
            put "$s.$side.min_mem_mib" "${steps[$hi]}"
            if [ $lo -ge 0 ]; then
                put "$s.$side.fails_at_mib" "${steps[$lo]}"
                # Why: the guest's last words about it (a panic, an OOM kill), if any.
                f=$out/$s.$side.mem${steps[$lo]}.log
                why=$(grep -m1 -i -E 'panic|out of memory|oom|too little memory' "$f" || grep -m1 -i error "$f" || true)
                why=$(echo "$why" | sed 's/^\[ *[0-9.]*\] //' | cut -c1-120)
                echo "${why:-no answer within ${MEM_READY_TIMEOUT}s, no panic or OOM in the guest output}" >"$out/$s.$side.mem_fail_reason"
            else
                rm -f "$out/$s.$side.mem_fail_reason"
                put "$s.$side.fails_at_mib" "none"
            fi
        done
    done
fi

kill "$sampler" 2>/dev/null || true
load_now=$(cut -d' ' -f1-3 /proc/loadavg)
load_stats=$(sort -g "$loadlog" | awk '{ v[NR] = $1; s += $1 } END { if (NR) printf "min %.2f, mean %.2f, max %.2f", v[1], s / NR, v[NR]; else print "not sampled" }')
cat "$raw" >&2

# --- report -----------------------------------------------------------------------------------
# ratio A B: A/B, or n/a when either is not a number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
# adv A B HIGHER_BETTER: Kiln's advantage (above 1: Kiln better).
adv() { if [ "$3" = 1 ]; then ratio "$1" "$2"; else ratio "$2" "$1"; fi; }
or_na() { if [ -n "$1" ]; then echo "$1"; else echo "not measured"; fi; }
kib() { awk -v b="$1" 'BEGIN { if (b ~ /^[0-9]+$/) printf "%.0f KiB", b / 1024; else print "not measured" }'; }

chartdata=$out/chart.dat
: >"$chartdata"
rows=""
# row LABEL KEY_KIND KEY_LINUX HIGHER_BETTER [FORMAT]: a table row; the chart gets it too.
row() {
    local label=$1 k=$2 l=$3 hb=$4 fmt=${5:-}
    local kv lv r a
    kv=$(get "$k") lv=$(get "$l")
    r=$(ratio "$kv" "$lv")
    a=$(adv "$kv" "$lv" "$hb")
    local better="lower is better"
    [ "$hb" = 1 ] && better="higher is better"
    local kc lc
    if [ "$fmt" = kib ]; then kc=$(kib "$kv") lc=$(kib "$lv"); else kc=$(or_na "$kv") lc=$(or_na "$lv"); fi
    rows+="| $label | $kc | $lc | $r ($better) |"$'\n'
    [ "$a" = n/a ] || printf '"%s" %s\n' "$label" "$a" >>"$chartdata"
}

for s in $SERVERS; do
    row "$s: boot to ready (s, median of $RUNS)" $s.kiln.boot_s $s.linux.boot_s 0
    if [ "$s" = redis ]; then
        for p in 1 16; do
            for t in SET GET; do
                key=$(echo $t | tr A-Z a-z)_P$p
                row "redis: $t req/s, -c $CLIENTS -P $p" redis.kiln.$key redis.linux.$key 1
            done
        done
    else
        row "nginx: req/s, wrk -c$WRK_CONNS ${WRK_SECS}s" nginx.kiln.rps nginx.linux.rps 1
    fi
    row "$s: memory needed (MiB)" $s.kiln.min_mem_mib $s.linux.min_mem_mib 0
    row "$s: QEMU RSS after the load (MiB)" $s.kiln.qemu_rss_mib $s.linux.qemu_rss_mib 0
    row "$s: image as booted (Linux: vmlinuz + initramfs)" $s.kiln.image_bytes $s.linux.image_bytes 0 kib
    row "$s: image compressed (Kiln: gzip -9)" $s.kiln.image_gz_bytes $s.linux.image_bytes 0 kib
done

# The chart: Kiln's advantage per figure on a log scale (1 = even).
if [ -s "$chartdata" ]; then
    n=$(wc -l <"$chartdata")
    read -r xmin xmax < <(awk '{ if (NR == 1 || $NF < lo) lo = $NF; if (NR == 1 || $NF > hi) hi = $NF }
        END { if (lo > 0.5) lo = 0.5; if (hi < 2) hi = 2; print lo / 1.5, hi * 1.5 }' "$chartdata")
    gnuplot <<EOF
set terminal pngcairo size 1100,$((240 + 34 * n)) font "sans,10"
set output "$chart"
set title "Kiln vs the Linux guest, same QEMU (TCG, $MACHINE, tap): how many times better Kiln is\n(rates: Kiln / Linux; times, memory, sizes: Linux / Kiln; above 1: Kiln better)"
set style fill solid 0.8
set logscale x 2
set xrange [$xmin:$xmax]
set yrange [$n - 0.3:-0.7]
set ytics nomirror
set grid xtics
set xlabel "Kiln's advantage (log scale; 1 = even)"
unset key
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb "black"
plot "$chartdata" using (\$2 >= 1 ? \$2 : NaN):(\$0):(1):(\$2):(\$0 - 0.35):(\$0 + 0.35) with boxxyerror lc rgb "#2e7d32", \
     "$chartdata" using (\$2 < 1 ? \$2 : NaN):(\$0):(\$2):(1):(\$0 - 0.35):(\$0 + 0.35) with boxxyerror lc rgb "#c62828", \
     "$chartdata" using (\$2):(\$0):(sprintf(" %.2f", \$2)):ytic(1) with labels left
EOF
fi

errors_line() {
    local e=""
    for s in $SERVERS; do
        for side in kiln linux; do
            if [ "$s" = redis ]; then
                e+="redis $side: errors at -P 1: $(or_na "$(get redis.$side.errors_P1)"), at -P 16: $(or_na "$(get redis.$side.errors_P16)"); "
            else
                e+="nginx $side: non-2xx $(or_na "$(get nginx.$side.non2xx)"), socket errors $(or_na "$(get nginx.$side.socket_errors)"); "
            fi
        done
    done
    echo "${e%; }"
}

version() { sed -n 's/^version = "\(.*\)"$/\1/p' "packages/$1/recipe.toml"; }

section=$(mktemp)
{
    echo "## (h) Servers: redis and nginx, Kiln vs Linux guest (bench/servers.sh)"
    echo
    [ "$KEEP" = 1 ] && echo "This run measured only: $PARTS (for $SERVERS); the other figures are the previous run's."
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit (main at $main_commit). Load average (1 min) sampled"
    echo "every 5 s during the run$([ "$KEEP" = 1 ] && echo "s kept"): $load_stats; at its end $load_now (2 shared cores)."
    echo "QEMU TCG, -cpu max, machine $MACHINE, one vCPU, $MEM, virtio-net on the host tap device"
    echo "$TAPDEV (guest $GUEST_IP, static address) for both sides. The same static binaries"
    echo "(\`bake pkg build redis|nginx\`: redis $(version redis), nginx $(version nginx), musl, static)"
    echo "and the same files (packages/*/files) on both sides; redis with"
    echo "\`/etc/redis/redis.conf --appendonly no\` (in memory), nginx with the recipe's nginx.conf"
    echo "unchanged (daemon off, master_process off) on both. Linux: Debian's"
    echo "$(sed -n 's/^package //p' bench/out/linux-guest/KERNEL) with a busybox initramfs (bench/linux-guest.sh)."
    echo
    echo "| figure | Kiln | Linux guest | Kiln / Linux |"
    echo "|---|---|---|---|"
    printf '%s' "$rows"
    echo
    echo "![Kiln's advantage per figure](servers.png)"
    echo
    echo "- Boot to ready: from starting the launcher (\`bake run IMAGE\`; \`linux-guest.sh run"
    echo "  --initrd\` with the initramfs packed beforehand) until PING gets +PONG or GET / gets 200"
    echo "  through the tap, probed every 50 ms; both on SeaBIOS (machine $MACHINE), the Linux kernel"
    echo "  and its initramfs loaded by QEMU's -kernel/-initrd as Kiln's image is. Spread (min-max, s): redis Kiln"
    echo "  $(or_na "$(get redis.kiln.boot_min_s)")-$(or_na "$(get redis.kiln.boot_max_s)"), Linux $(or_na "$(get redis.linux.boot_min_s)")-$(or_na "$(get redis.linux.boot_max_s)");"
    echo "  nginx Kiln $(or_na "$(get nginx.kiln.boot_min_s)")-$(or_na "$(get nginx.kiln.boot_max_s)"), Linux $(or_na "$(get nginx.linux.boot_min_s)")-$(or_na "$(get nginx.linux.boot_max_s)")."
    echo "- Throughput: redis-benchmark $(redis-benchmark --version | awk '{print $2}') with -t set,get -c $CLIENTS, $REDIS_N"
    echo "  requests per test at -P 1 and $REDIS_N_PIPE at -P 16; wrk -t2 -c$WRK_CONNS -d${WRK_SECS}s on index.html"
    echo "  (314 bytes, access log on, gzip on: the recipe's config). Errors: $(errors_line)."
    echo "  Under TCG on a loaded machine these rates move by tens of percent from one run to the"
    echo "  next (see the load average above); compare within a run."
    echo "- Memory needed: the smallest of $MEM_STEPS MiB at which the server boots, answers,"
    echo "  takes redis-benchmark -n 2000 -c 10 (or wrk -c10 -d3s) and answers again; bisected."
    echo "  The step below, which failed: redis Kiln $(or_na "$(get redis.kiln.fails_at_mib)"), Linux $(or_na "$(get redis.linux.fails_at_mib)");"
    echo "  nginx Kiln $(or_na "$(get nginx.kiln.fails_at_mib)"), Linux $(or_na "$(get nginx.linux.fails_at_mib)") MiB (none: the smallest step served). Logs of"
    echo "  the boots: bench/out/servers/*.mem*.log. When Kiln's figure is 16 MiB it is bake's floor"
    echo "  (bake run refuses less), not what the server needs. The Linux guest's root is its"
    echo "  initramfs: the kernel keeps the compressed archive and unpacks it into RAM, so the"
    echo "  binary is in memory twice before it runs (a disk root would need less). What the guest"
    echo "  (or bake) said at the failed step:"
    for s in $SERVERS; do
        for side in kiln linux; do
            [ ! -f "$out/$s.$side.mem_fail_reason" ] || echo "  $s $side: \`$(cat "$out/$s.$side.mem_fail_reason")\`."
        done
    done
    echo "- Image: Kiln's image file from \`bake build --recipe\` (what \`bake run\` boots) against"
    echo "  the Linux guest's vmlinuz ($(kib "$(get redis.linux.kernel_bytes)")) plus its initramfs"
    echo "  (gzip; redis $(kib "$(get redis.linux.initrd_bytes)"), nginx $(kib "$(get nginx.linux.initrd_bytes)"),"
    echo "  of which $(kib "$(stat -c %s bench/out/linux-guest/base.cpio.gz)") is busybox, /init and the virtio and filesystem"
    echo "  modules). The static binaries: redis $(kib "$(get redis.bin_bytes)"), nginx $(kib "$(get nginx.bin_bytes)")."
    echo "- The chart shows every ratio as Kiln's advantage: Kiln / Linux for rates, Linux / Kiln"
    echo "  for times, memory and sizes, so a bar right of 1 means Kiln is better. Raw figures,"
    echo "  logs and tool outputs: bench/out/servers/ (raw.txt)."
} >"$section"
cat "$section"
write_section "$report" h "$section"
rm -f "$section"
log "section (h) written to $report; chart $chart; raw figures $raw"
