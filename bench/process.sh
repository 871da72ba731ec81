#!/usr/bin/env bash
# bench/process.sh: the process model's costs (issue 3), natively and in Kiln, as ratios:
#   thread create+join, futex wake round trip between two threads, signal delivery+return
#   (raise of a handled SIGUSR1), all from bench/proc_bench.c built with musl-gcc -static.
# With BENCH_INSN=1 also exact guest instruction counts per operation (QEMU TCG plugin,
# -icount shift=0): (count at N2 operations - count at N1) / (N2 - N1).
# Writes section (e) of bench/REPORT.md (replacing it if present); bench/run.sh calls this.
# Not a test; CI does not run it.
#
# Environment: N_CREATE (default 2000), N_FUTEX (20000), N_SIGNAL (20000) operations;
# BAKE (default target/release/bake); INSN_PLUGIN as in run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/lib.sh

N_CREATE=${N_CREATE:-2000}
N_FUTEX=${N_FUTEX:-20000}
N_SIGNAL=${N_SIGNAL:-20000}
BAKE=${BAKE:-$root/target/release/bake}
out=$root/bench/out
report=$root/bench/REPORT.md
mkdir -p "$out"

log() { printf '[bench/process] %s\n' "$*" >&2; }

command -v musl-gcc >/dev/null || { log "musl-gcc missing: run scripts/setup.sh"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { log "QEMU missing: run scripts/setup.sh"; exit 1; }
if [ ! -x "$BAKE" ]; then
    log "building bake"
    cargo build --release -p bake
fi
musl-gcc -static -O2 -Wall -o "$out/proc_bench" bench/proc_bench.c

field() { sed -n "s/^$1=//p" | head -n1; }

# One Kiln run; prints the ns figure, or "failed (status S: first stderr line)".
kiln_ns() {  # mode n
    local o st=0
    o=$("$BAKE" run --accel tcg --timeout 300 "$out/proc_bench" -- "$1" "$2" 2>"$out/proc-$1.stderr") || st=$?
    local v
    v=$(field "$1_ns" <<<"$o")
    if [ "$st" = 0 ] && [ -n "$v" ]; then
        echo "$v"
    else
        local why
        why=$(grep -v '^ ' "$out/proc-$1.stderr" | grep -m1 -iE 'error|warn|terminated|timed out' || true)
        [ -n "$why" ] || why=$(head -n1 <<<"$o")
        echo "failed (status $st: ${why//|/\\|})"
    fi
}

declare -A native kiln n_of
n_of[create]=$N_CREATE
n_of[futex]=$N_FUTEX
n_of[signal]=$N_SIGNAL
for mode in create futex signal; do
    n=${n_of[$mode]}
    log "$mode x $n natively (best of 3)"
    best=""
    for _ in 1 2 3; do
        v=$("$out/proc_bench" "$mode" "$n" | field "${mode}_ns")
        best=$(awk -v a="$best" -v b="$v" 'BEGIN{ if (a == "" || b < a) print b; else print a }')
    done
    native[$mode]=$best
    log "$mode x $n in Kiln"
    kiln[$mode]=$(kiln_ns "$mode" "$n")
done

insn_rows="Not measured (run with BENCH_INSN=1)."
if [ "${BENCH_INSN:-0}" = 1 ]; then
    plugin=${INSN_PLUGIN:-$out/plugins/libinsn.so}
    if [ ! -f "$plugin" ]; then
        tools=$root/../shared/tools
        [ -x "$tools/build-insn-plugin.sh" ] || { log "no $tools/build-insn-plugin.sh"; exit 1; }
        "$tools/build-insn-plugin.sh" "$out/plugins" >&2
    fi
    count() {  # image -> instruction count, empty if the run failed
        local lf=$out/proc-count.log
        rm -f "$lf"
        timeout 600 qemu-system-x86_64 -M microvm,rtc=on -kernel "$1" -append kiln.log=warn \
            -display none -serial stdio -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
            -m 128M -accel tcg -icount shift=0,sleep=off -plugin "$plugin,inline=on" \
            -d plugin -D "$lf" >"$out/proc-count.stdout" 2>&1 </dev/null || true
        # Only a run that completed counts: the program prints ops= at the end.
        grep -q '^ops=' "$out/proc-count.stdout" && sed -n 's/^insns: //p' "$lf"
    }
    per_op() {  # mode n1 n2
        local a b
        "$BAKE" build "$out/proc_bench" -o "$out/proc-$1-a.img" -- "$1" "$2" >&2
        "$BAKE" build "$out/proc_bench" -o "$out/proc-$1-b.img" -- "$1" "$3" >&2
        a=$(count "$out/proc-$1-a.img" || true)
        b=$(count "$out/proc-$1-b.img" || true)
        awk -v a="$a" -v b="$b" -v d="$(($3 - $2))" \
            'BEGIN{ if (a==""||b=="") print "n/a (the guest run failed)"; else printf "%.0f", (b-a)/d }'
    }
    log "instruction counts"
    i_create=$(per_op create 100 1100)
    i_futex=$(per_op futex 1000 11000)
    i_signal=$(per_op signal 1000 11000)
    insn_rows="| operation | guest instructions per operation |
|---|---|
| thread create + join | $i_create |
| futex wake round trip | $i_futex |
| signal delivery + return | $i_signal |

(count at N2 operations - count at N1) / (N2 - N1): create 100 and 1100, futex and signal
1000 and 11000; whole-VM counts (app, kernel, idle loop), \`-icount shift=0,sleep=off\`, so a
guest that halts waiting for a timer is charged for the virtual time it waits."
fi

section=$(cat <<EOF
## (e) Process model: threads, futex, signals

\`bench/process.sh\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown);
bench/proc_bench.c built with \`musl-gcc -static -O2\`; Kiln under TCG, default \`--mem\`.
Native: best of 3 runs on the host; Kiln: one \`bake run --accel tcg\`. ns per operation as
the program measures it with clock_gettime(CLOCK_MONOTONIC). Load average when measured:
$(cut -d' ' -f1-3 /proc/loadavg) (the host is shared: wall-clock figures, native ones included,
move with it; the instruction counts below do not).

| operation | N | native ns | Kiln ns | Kiln / native |
|---|---|---|---|---|
| thread create + join | $N_CREATE | ${native[create]} | ${kiln[create]} | $(ratio "${kiln[create]}" "${native[create]}") |
| futex wake round trip (2 threads) | $N_FUTEX | ${native[futex]} | ${kiln[futex]} | $(ratio "${kiln[futex]}" "${native[futex]}") |
| signal delivery + return (raise) | $N_SIGNAL | ${native[signal]} | ${kiln[signal]} | $(ratio "${kiln[signal]}" "${native[signal]}") |

Natively the two futex threads run on two host CPUs; Kiln's guest has one vCPU, so each hand-over
there is a context switch.

$insn_rows
EOF
)

log "writing section (e) of $report"
printf '%s\n' "$section" >"$out/section.md"
write_section "$report" e "$out/section.md"
printf '%s\n' "$section"
