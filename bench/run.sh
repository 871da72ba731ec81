#!/usr/bin/env bash
# bench/run.sh: Kiln's numbers side by side, written to bench/REPORT.md (not a test; CI does
# not run it).
#
#   (a) boot time, QEMU start to exit, of a musl hello on -M microvm under TCG (and -M pc),
#       with hyperfine if installed (apt-get install -y hyperfine), else a timed loop;
#   (b) image size, kernel vs app, from `bake inspect`;
#   (c) null-syscall cost: tests/c/getpid_loop.c natively vs in Kiln, ns per call as the
#       program measures it with clock_gettime, and the ratio;
#   (d) with BENCH_INSN=1: exact guest instruction counts (QEMU TCG plugin, -icount shift=0)
#       for the whole hello run and per getpid syscall. Needs the plugin built by
#       ../shared/tools/build-insn-plugin.sh (done here into bench/out/plugins when missing),
#       or INSN_PLUGIN=/path/to/libinsn.so.
#   (e) the process model: thread create+join, futex round trip, signal delivery, natively and
#       in Kiln, by bench/process.sh (skipped with BENCH_PROCESS=0).
#   (f) files: sequential write/read and small-file create/stat/unlink on tmpfs and on a disk,
#       natively, in Kiln and in a Linux guest, by bench/files.sh (skipped with BENCH_FILES=0).
#
# Environment: RUNS (default 20) boot-time runs; N (default 100000) getpid calls;
# BAKE (default target/release/bake, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

RUNS=${RUNS:-20}
N=${N:-100000}
BAKE=${BAKE:-$root/target/release/bake}
out=$root/bench/out
report=$root/bench/REPORT.md
mkdir -p "$out"

log() { printf '[bench] %s\n' "$*" >&2; }

command -v musl-gcc >/dev/null || { log "musl-gcc missing: run scripts/setup.sh"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { log "QEMU missing: run scripts/setup.sh"; exit 1; }
if [ ! -x "$BAKE" ]; then
    log "building bake"
    cargo build --release -p bake
fi

log "building the bench programs"
for p in hello getpid_loop; do
    musl-gcc -static -O2 -o "$out/$p" "tests/c/$p.c"
done
"$BAKE" build "$out/hello" -o "$out/hello.img"
"$BAKE" build "$out/getpid_loop" -o "$out/getpid_loop.img" -- "$N"

# ---- (a) boot time --------------------------------------------------------------------------
# Mean and min in ms of RUNS runs of a command; stdout discarded.
time_loop() {
    local i t0 t1 times=()
    for ((i = 0; i < 3; i++)); do "$@" >/dev/null 2>&1 || true; done
    for ((i = 0; i < RUNS; i++)); do
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1 || true
        t1=$(date +%s%N)
        times+=($(((t1 - t0) / 1000)))
    done
    printf '%s\n' "${times[@]}" |
        awk '{s+=$1; if(min==""||$1<min)min=$1; if($1>max)max=$1}
             END{printf "%.1f ms mean, %.1f ms min, %.1f ms max (%d runs, date loop)", s/NR/1000, min/1000, max/1000, NR}'
}
boot_time() {  # label, command...
    local label=$1
    shift
    if command -v hyperfine >/dev/null; then
        local csv=$out/hyperfine-$label.csv
        hyperfine -N --warmup 3 --runs "$RUNS" --export-csv "$csv" -- "$*" >/dev/null 2>&1 ||
            hyperfine --warmup 3 --runs "$RUNS" --export-csv "$csv" -- "$*" >/dev/null
        # command,mean,stddev,median,user,system,min,max (seconds)
        awk -F, -v runs="$RUNS" 'NR==2{printf "%.1f ms ± %.1f mean, %.1f ms min, %.1f ms max (%d runs, hyperfine)", $2*1000, $3*1000, $7*1000, $8*1000, runs}' "$csv"
    else
        time_loop "$@"
    fi
}

log "(a) boot time"
boot_microvm=$(boot_time microvm "$BAKE" run --accel tcg --machine microvm "$out/hello.img")
boot_pc=$(boot_time pc "$BAKE" run --accel tcg --machine pc "$out/hello.img")
boot_native=$(boot_time native "$out/hello")

# ---- (b) image size -------------------------------------------------------------------------
log "(b) image size"
inspect=$("$BAKE" inspect "$out/hello.img" 2>&1 || true)
img_size=$(stat -c %s "$out/hello.img")
app_size=$(stat -c %s "$out/hello")

# ---- (c) null syscall -----------------------------------------------------------------------
log "(c) getpid x $N, native and in Kiln"
field() { sed -n "s/^$1=//p" | head -n1; }
native_out=$("$out/getpid_loop" "$N")
kiln_out=$("$BAKE" run --accel tcg "$out/getpid_loop.img" 2>"$out/getpid_kiln.stderr") || true
n_getpid=$(field getpid_ns <<<"$native_out")
n_clock=$(field clock_gettime_ns <<<"$native_out")
k_getpid=$(field getpid_ns <<<"$kiln_out")
k_clock=$(field clock_gettime_ns <<<"$kiln_out")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2fx", a/b }'; }

# ---- (d) instruction counts -----------------------------------------------------------------
insn_section="Not measured (run with BENCH_INSN=1)."
if [ "${BENCH_INSN:-0}" = 1 ]; then
    log "(d) instruction counts"
    plugin=${INSN_PLUGIN:-$out/plugins/libinsn.so}
    if [ ! -f "$plugin" ]; then
        tools=$root/../shared/tools
        [ -x "$tools/build-insn-plugin.sh" ] || { log "no $tools/build-insn-plugin.sh"; exit 1; }
        "$tools/build-insn-plugin.sh" "$out/plugins" >&2
    fi
    # QEMU run directly on the image (a PVH ELF with the app inside), with icount so the
    # count is exact and does not depend on host speed.
    count() {  # image -> "insns: N"
        local lf=$out/count.log
        rm -f "$lf"
        qemu-system-x86_64 -M microvm,rtc=on -kernel "$1" -append kiln.log=warn -display none -serial stdio \
            -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -m 128M \
            -accel tcg -icount shift=0,sleep=off -plugin "$plugin,inline=on" \
            -d plugin -D "$lf" >/dev/null 2>&1 </dev/null || true
        sed -n 's/^insns: //p' "$lf"
    }
    # Per syscall: the difference between 1000 and 11000 iterations of one loop, over 10000.
    per_call() {  # getpid|clock
        local a b
        "$BAKE" build "$out/getpid_loop" -o "$out/$1-1k.img" -- 1000 "$1" >&2
        "$BAKE" build "$out/getpid_loop" -o "$out/$1-11k.img" -- 11000 "$1" >&2
        a=$(count "$out/$1-1k.img")
        b=$(count "$out/$1-11k.img")
        awk -v a="$a" -v b="$b" 'BEGIN{ if (a==""||b=="") print "n/a"; else printf "%.0f", (b-a)/10000 }'
    }
    i_hello=$(count "$out/hello.img")
    i_getpid=$(per_call getpid)
    i_clock=$(per_call clock)
    insn_section="| run | guest instructions |
|---|---|
| hello, whole run (firmware + kernel + app) | ${i_hello:-n/a} |
| one \`syscall(SYS_getpid)\` iteration | $i_getpid |
| one \`clock_gettime(CLOCK_MONOTONIC)\` iteration | $i_clock |

Per-iteration figures: (count for 11000 iterations - count for 1000) / 10000, loop overhead
included. Under \`-icount shift=0\` every guest nanosecond of busy waiting (e.g. the kernel's
TSC calibration against the PIT) is one instruction, so the whole-run figure includes such waits.

Plugin: \`$plugin\`, inline mode, \`-icount shift=0,sleep=off\`, QEMU run directly on the image."
fi

# ---- report ---------------------------------------------------------------------------------
log "writing $report"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
cat >"$report" <<EOF
# Kiln benchmark report

Produced by \`bench/run.sh\` (RUNS=$RUNS N=$N${BENCH_INSN:+ BENCH_INSN=$BENCH_INSN}) on $(date -u +%Y-%m-%d),
commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown).
Host: $(nproc) CPUs, ${cpu:-unknown CPU}; $(qemu-system-x86_64 --version | head -n1); TCG.
Load average when the report was written: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the
machine inflates the wall-clock figures; (d) is immune to it).
bake: \`$BAKE\`. All guests: tests/c programs built with \`musl-gcc -static -O2\`, default
\`--mem\` (128M).

## (a) Boot time, QEMU start to exit: hello

| what | time |
|---|---|
| \`bake run --accel tcg --machine microvm hello.img\` | $boot_microvm |
| \`bake run --accel tcg --machine pc hello.img\` | $boot_pc |
| hello natively on the host, for scale | $boot_native |

## (b) Image size

hello: app ELF $app_size bytes, image $img_size bytes. \`bake inspect\`:

\`\`\`
$inspect
\`\`\`

## (c) Null syscall: getpid via syscall(2), $N calls

| | native (host Linux) | Kiln (TCG) | Kiln / native |
|---|---|---|---|
| getpid, ns per call | ${n_getpid:-n/a} | ${k_getpid:-n/a} | $(ratio "$k_getpid" "$n_getpid") |
| clock_gettime(MONOTONIC), ns per call | ${n_clock:-n/a} | ${k_clock:-n/a} | $(ratio "$k_clock" "$n_clock") |

Each figure is the program's own clock_gettime measurement over the loop. Native Linux serves
clock_gettime from the vDSO (no syscall). Kiln runs under TCG here, so it pays for emulation
as well as for the kernel's own path; (d) is the host-independent measure.

## (d) Guest instruction counts

$insn_section
EOF
if [ "${BENCH_PROCESS:-1}" = 1 ]; then
    BAKE=$BAKE INSN_PLUGIN=${INSN_PLUGIN:-$out/plugins/libinsn.so} bench/process.sh >/dev/null
fi
if [ "${BENCH_FILES:-1}" = 1 ]; then
    BAKE=$BAKE INSN_PLUGIN=${INSN_PLUGIN:-$out/plugins/libinsn.so} bench/files.sh >/dev/null
fi
cat "$report"
