#!/usr/bin/env bash
# bench/files.sh: file-system throughput and metadata rates (issue 4, item 6): sequential
# write/fsync/read in 64 KiB blocks and small-file create/stat/unlink (bench/fileio.c, musl
# static), the same binary natively, in Kiln and in a minimal Linux guest (bench/linux-guest.sh),
# on tmpfs and on a disk, one run of each side by side, as ratios.
# With BENCH_INSN=1 also guest instruction counts under -icount shift=0 (see the section text).
# Writes section (f) of bench/REPORT.md (replacing it if present); bench/run.sh calls this.
# Not a test; CI does not run it.
#
# Environment: MIB (default 32) MiB written and read; NFILES (default 2000) small files;
# INSN_MIB (8) and INSN_NFILES (500) for the counted runs; BAKE (default target/release/bake);
# INSN_PLUGIN (default bench/out/plugins/libinsn.so, else /tmp/plugins/libinsn.so);
# MEM (default 256M) guest memory for Kiln and Linux alike.
# BEFORE=DIR: a copy of an earlier run's bench/out/files (say, from before a change to Kiln);
# its Kiln figures are shown next to this run's, with the ratio (BEFORE_LABEL names it). The
# other columns come from this run only, so every ratio to native or Linux is within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. bench/lib.sh

MIB=${MIB:-32}
NFILES=${NFILES:-2000}
INSN_MIB=${INSN_MIB:-8}
INSN_NFILES=${INSN_NFILES:-500}
MEM=${MEM:-256M}
BAKE=${BAKE:-$root/target/release/bake}
out=$root/bench/out
fo=$out/files
report=$root/bench/REPORT.md
lg=$root/bench/linux-guest.sh
mkdir -p "$fo"
BEFORE=${BEFORE:-}
BEFORE_LABEL=${BEFORE_LABEL:-an earlier run}
if [ -n "$BEFORE" ]; then
    [ -f "$BEFORE/kiln-vol.txt" ] || { printf '[bench/files] BEFORE=%s has no kiln-vol.txt\n' "$BEFORE" >&2; exit 1; }
    [ "$(cd "$BEFORE" && pwd)" != "$(cd "$fo" && pwd)" ] || { printf '[bench/files] BEFORE must be a copy, not %s\n' "$fo" >&2; exit 1; }
fi

log() { printf '[bench/files] %s\n' "$*" >&2; }

command -v musl-gcc >/dev/null || { log "musl-gcc missing: run scripts/setup.sh"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { log "QEMU missing: run scripts/setup.sh"; exit 1; }
if [ ! -x "$BAKE" ]; then
    log "building bake"
    cargo build --release -p bake
fi
musl-gcc -static -O2 -Wall -o "$out/fileio" bench/fileio.c
"$lg" mkfs "$fo/probe.img" 1 ext2 >/dev/null 2>&1 || true  # builds the Linux guest once
rm -f "$fo/probe.img"

# Kiln volumes: `bake volume create` and `bake run --volume IMAGE:/data` (FAT32), when this bake has them.
kiln_vol=0
"$BAKE" volume create --help >/dev/null 2>&1 && kiln_vol=1
disk_mib=$((MIB * 2 + 64))

field() { sed -n "s/^$2=//p" "$1" | head -n1; }
# Rate ratio a/b (e.g. Kiln MB/s over native MB/s: above 1 means Kiln is faster).
ms() { awk -v a="$1" 'BEGIN{ if (a !~ /^[0-9]+$/) print "n/a"; else printf "%.3f", a/1e6 }'; }
# A run's figures, or why it has none: each run's output is kept in $fo/LABEL.txt.
ok() { grep -q '^done=1' "$fo/$1.txt" 2>/dev/null; }
why() {
    local e
    e=$(grep -m1 '^error=' "$fo/$1.txt" 2>/dev/null || true)
    [ -n "$e" ] || e=$(grep -m1 -iE 'error|panic|timed out|status' "$fo/$1.stderr" 2>/dev/null || true)
    echo "${e:-no output}" | cut -c1-120 | sed 's/|/\\|/g'
}

# ---- wall-clock runs ------------------------------------------------------------------------
args=(-m "$MIB" -n "$NFILES")
native_tmp=/dev/shm
[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] || native_tmp=/tmp
native_disk=$fo/native-disk
rm -rf "$native_disk"
mkdir -p "$native_disk"
native_disk_fs=$(findmnt -n -o FSTYPE -T "$native_disk" 2>/dev/null || stat -f -c %T "$native_disk")

run_to() {  # label command...
    local label=$1 st=0
    shift
    log "$label"
    "$@" >"$fo/$label.txt" 2>"$fo/$label.stderr" || st=$?
    ok "$label" || log "$label failed (status $st): $(why "$label")"
}

run_to native-tmpfs "$out/fileio" "${args[@]}" "$native_tmp"
run_to native-disk "$out/fileio" "${args[@]}" "$native_disk"
run_to kiln-tmpfs "$BAKE" run --accel tcg --machine pc --mem "$MEM" --timeout 900 "$out/fileio" -- "${args[@]}" /tmp
if [ "$kiln_vol" = 1 ]; then
    rm -f "$fo/kiln-vol.img"
    "$BAKE" volume create "$fo/kiln-vol.img" --size "${disk_mib}M" >&2
    run_to kiln-vol "$BAKE" run --accel tcg --machine pc --mem "$MEM" --timeout 900 \
        --volume "$fo/kiln-vol.img:/data" "$out/fileio" -- "${args[@]}" /data
fi
run_to linux-tmpfs "$lg" run --machine pc --mem "$MEM" --timeout 900 "$out/fileio" "${args[@]}" /tmp
for fs in vfat ext2; do
    "$lg" mkfs "$fo/linux-$fs.img" "$disk_mib" "$fs"
    run_to "linux-$fs" "$lg" run --machine pc --mem "$MEM" --timeout 900 \
        --disk "$fo/linux-$fs.img" --fs "$fs" "$out/fileio" "${args[@]}" /data
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
# The earlier run's Kiln figures, under labels of their own.
before_tmpfs=() before_vol=()
if [ -n "$BEFORE" ]; then
    for l in kiln-tmpfs kiln-vol; do
        cp "$BEFORE/$l.txt" "$fo/before-$l.txt" 2>/dev/null || true
        cp "$BEFORE/$l.stderr" "$fo/before-$l.stderr" 2>/dev/null || true
    done
    before_tmpfs=(before-kiln-tmpfs)
    before_vol=(before-kiln-vol)
fi

# One row of a wall-clock table: measure key unit, then the runs (Kiln first, as the ratios
# compare it with each of the others).
row() {  # title key kind(rate|time) kiln other...
    local title=$1 key=$2 kind=$3 kiln=$4
    shift 4
    local vals=() l v
    for l in "$kiln" "$@"; do
        if ok "$l"; then
            v=$(field "$fo/$l.txt" "$key")
            [ "$kind" = time ] && v=$(ms "$v")
        else
            v="failed"
        fi
        vals+=("$v")
    done
    local line="| $title |"
    for v in "${vals[@]}"; do line+=" $v |"; done
    local i
    for ((i = 1; i < ${#vals[@]}; i++)); do
        if [ "$kind" = time ]; then line+=" $(ratio "${vals[i]}" "${vals[0]}") |"; else line+=" $(ratio "${vals[0]}" "${vals[i]}") |"; fi
    done
    echo "$line"
}
table() {  # kiln-label other-label... (headers given by the caller)
    row "sequential write, MB/s" write_MBps rate "$@"
    row "fsync after the write, ms" fsync_ns time "$@"
    row "sequential read, MB/s" read_MBps rate "$@"
    row "create (open O_CREAT\\|O_EXCL + close), ops/s" create_ops rate "$@"
    row "stat, ops/s" stat_ops rate "$@"
    row "unlink, ops/s" unlink_ops rate "$@"
}
failures() {  # labels...
    local l
    for l in "$@"; do ok "$l" || echo "- $l failed: $(why "$l")"; done
}

# Header cells for the earlier run's column and its ratio, when there is one.
bh=() br=()
[ -n "$BEFORE" ] && bh=("Kiln, $BEFORE_LABEL") && br=("Kiln / $BEFORE_LABEL")
hdr() {  # cells... -> a table header row and its separator
    local line="|" sep="|" c
    for c in "$@"; do line+=" $c |"; sep+="---|"; done
    printf '%s\n%s' "$line" "$sep"
}

tmpfs_table="$(hdr measure "Kiln, tmpfs /tmp" "${bh[@]}" "native, $native_tmp (tmpfs)" "Linux guest, tmpfs /tmp" "${br[@]}" "Kiln / native" "Kiln / Linux guest")
$(table kiln-tmpfs "${before_tmpfs[@]}" native-tmpfs linux-tmpfs)
$(failures kiln-tmpfs native-tmpfs linux-tmpfs)"

if [ "$kiln_vol" = 1 ]; then
    disk_table="$(hdr measure "Kiln, FAT32 volume" "${bh[@]}" "native, host directory ($native_disk_fs)" "Linux guest, vfat (FAT32) disk" "Linux guest, ext2 disk" "${br[@]}" "Kiln / native" "Kiln / Linux vfat" "Kiln / Linux ext2")
$(table kiln-vol "${before_vol[@]}" native-disk linux-vfat linux-ext2)
$(failures kiln-vol native-disk linux-vfat linux-ext2)"
else
    disk_table="Kiln: not measured: this bake has no volumes (\`bake volume create\`, \`bake run --volume IMAGE:/data\`)
yet. The other runs, for when it has:

| measure | native, host directory ($native_disk_fs) | Linux guest, vfat (FAT32) disk | Linux guest, ext2 disk |
|---|---|---|---|
$(for k in "sequential write, MB/s:write_MBps:rate" "fsync after the write, ms:fsync_ns:time" "sequential read, MB/s:read_MBps:rate" "create, ops/s:create_ops:rate" "stat, ops/s:stat_ops:rate" "unlink, ops/s:unlink_ops:rate"; do
        IFS=: read -r t key kind <<<"$k"
        line="| $t |"
        for l in native-disk linux-vfat linux-ext2; do
            if ok "$l"; then v=$(field "$fo/$l.txt" "$key"); [ "$kind" = time ] && v=$(ms "$v"); else v=failed; fi
            line+=" $v |"
        done
        echo "$line"
    done)
$(failures native-disk linux-vfat linux-ext2)"
fi

# ---- instruction counts ---------------------------------------------------------------------
insn_section="Not measured (run with BENCH_INSN=1)."
if [ "${BENCH_INSN:-0}" = 1 ]; then
    plugin=${INSN_PLUGIN:-}
    [ -n "$plugin" ] || for p in "$out/plugins/libinsn.so" /tmp/plugins/libinsn.so; do
        [ -f "$p" ] && { plugin=$p; break; }
    done
    if [ ! -f "$plugin" ]; then
        tools=$root/../shared/tools
        [ -x "$tools/build-insn-plugin.sh" ] || { log "no $tools/build-insn-plugin.sh"; exit 1; }
        "$tools/build-insn-plugin.sh" "$out/plugins" >&2
        plugin=$out/plugins/libinsn.so
    fi
    # bake starts QEMU through KILN_QEMU: this wrapper adds icount and the plugin.
    wrapper=$fo/qemu-insn
    cat >"$wrapper" <<EOF
#!/bin/sh
exec qemu-system-x86_64 "\$@" -icount shift=0,sleep=off -plugin "$plugin,inline=on" -d plugin -D "\$INSN_LOG"
EOF
    chmod +x "$wrapper"
    iargs=(-m "$INSN_MIB" -n "$INSN_NFILES")
    rm -f "$fo"/i-*
    INSN_LOG=$fo/i-kiln-tmpfs.log KILN_QEMU=$wrapper run_to i-kiln-tmpfs \
        "$BAKE" run --accel tcg --mem "$MEM" --timeout 1800 "$out/fileio" -- "${iargs[@]}" /tmp
    INSN_PLUGIN=$plugin run_to i-linux-tmpfs "$lg" run --machine microvm --mem "$MEM" \
        --insn "$fo/i-linux-tmpfs.log" --timeout 1800 "$out/fileio" "${iargs[@]}" /tmp

    # Disks: the guest waits for the device there, and its virtual clock then jumps from timer
    # deadline to timer deadline, so phase times are not instruction counts. Instead: the
    # plugin's whole-run totals of two runs that differ only in size, per unit of difference.
    # seq: -p seq -m 2 and -m (2 + INSN_MIB); files: -p files -n 100 and -n (100 + INSN_NFILES).
    disk_pair() {  # kiln|linux -> "per_mib per_file" (n/a when a run failed)
        local who=$1 ph a b lab res=()
        for ph in seq files; do
            local counts=()
            for size in small big; do
                lab=i-$who-vol-$ph-$size
                if [ "$ph" = seq ]; then
                    a=(-p seq -m $([ $size = small ] && echo 2 || echo $((2 + INSN_MIB))))
                else
                    a=(-p files -n $([ $size = small ] && echo 100 || echo $((100 + INSN_NFILES))))
                fi
                rm -f "$fo/$lab.img" "$fo/$lab.log"
                if [ "$who" = kiln ]; then
                    "$BAKE" volume create "$fo/$lab.img" --size "${disk_mib}M" >&2
                    INSN_LOG=$fo/$lab.log KILN_QEMU=$wrapper run_to "$lab" \
                        "$BAKE" run --accel tcg --mem "$MEM" --timeout 1800 \
                        --volume "$fo/$lab.img:/data" "$out/fileio" -- "${a[@]}" /data
                else
                    "$lg" mkfs "$fo/$lab.img" "$disk_mib" vfat
                    INSN_PLUGIN=$plugin run_to "$lab" "$lg" run --machine microvm --mem "$MEM" \
                        --insn "$fo/$lab.log" --timeout 1800 --disk "$fo/$lab.img" --fs vfat \
                        "$out/fileio" "${a[@]}" /data
                fi
                if ok "$lab"; then counts+=("$(total "$lab")"); else counts+=(""); fi
                rm -f "$fo/$lab.img"
            done
            res+=("$(awk -v a="${counts[0]}" -v b="${counts[1]}" \
                -v d="$([ $ph = seq ] && echo "$INSN_MIB" || echo "$INSN_NFILES")" \
                'BEGIN{ if (a == "" || b == "") print "n/a"; else printf "%.0f", (b - a) / d }')")
        done
        echo "${res[@]}"
    }
    total() { sed -n 's/^insns: //p' "$fo/$1.log" 2>/dev/null | head -n1; }
    read -r l_mib l_file <<<"$(disk_pair linux)"
    k_mib="not measured" k_file="not measured"
    [ "$kiln_vol" = 1 ] && read -r k_mib k_file <<<"$(disk_pair kiln)"

    # Per unit from a run's phase times: virtual ns = guest instructions (see below).
    per() {  # label key divisor
        ok "$1" || { echo "failed"; return; }
        awk -v a="$(field "$fo/$1.txt" "$2")" -v d="$3" 'BEGIN{ printf "%.0f", a/d }'
    }
    irow() {  # title key divisor kiln linux
        local k l
        k=$(per "$4" "$2" "$3")
        l=$(per "$5" "$2" "$3")
        echo "| $1 | $k | $l | $(ratio "$k" "$l") |"
    }
    itable() {  # kiln linux
        irow "write, per MiB" write_ns "$INSN_MIB" "$@"
        irow "fsync after the write (whole call)" fsync_ns 1 "$@"
        irow "read, per MiB" read_ns "$INSN_MIB" "$@"
        irow "create, per file" create_ns "$INSN_NFILES" "$@"
        irow "stat, per file" stat_ns "$INSN_NFILES" "$@"
        irow "unlink, per file" unlink_ns "$INSN_NFILES" "$@"
        echo "| whole run incl. boot and power-off (plugin total) | $(total "$1") | $(total "$2") | $(ratio "$(total "$1")" "$(total "$2")") |"
    }
    vol_itable="| per unit, write + fsync + read or create + stat + unlink | Kiln, FAT32 volume | Linux guest, vfat disk | Kiln / Linux |
|---|---|---|---|
| one MiB written, fsynced and read back | $k_mib | $l_mib | $(ratio "$k_mib" "$l_mib") |
| one file created, stat'ed and unlinked | $k_file | $l_file | $(ratio "$k_file" "$l_file") |"
    if [ -n "$BEFORE" ] && [ "$kiln_vol" = 1 ]; then
        # The earlier run's pairs, from its logs (same sizes assumed: INSN_MIB, INSN_NFILES).
        before_pair() {  # -> "per_mib per_file"
            local ph res=() a b
            for ph in seq files; do
                a=$(sed -n 's/^insns: //p' "$BEFORE/i-kiln-vol-$ph-small.log" 2>/dev/null | head -n1)
                b=$(sed -n 's/^insns: //p' "$BEFORE/i-kiln-vol-$ph-big.log" 2>/dev/null | head -n1)
                grep -q '^done=1' "$BEFORE/i-kiln-vol-$ph-small.txt" 2>/dev/null || a=""
                grep -q '^done=1' "$BEFORE/i-kiln-vol-$ph-big.txt" 2>/dev/null || b=""
                res+=("$(awk -v a="$a" -v b="$b" \
                    -v d="$([ $ph = seq ] && echo "$INSN_MIB" || echo "$INSN_NFILES")" \
                    'BEGIN{ if (a == "" || b == "") print "n/a"; else printf "%.0f", (b - a) / d }')")
            done
            echo "${res[@]}"
        }
        read -r b_mib b_file <<<"$(before_pair)"
        vol_itable="| per unit, write + fsync + read or create + stat + unlink | Kiln, FAT32 volume | Kiln, $BEFORE_LABEL | Linux guest, vfat disk | Kiln / Linux | Kiln, $BEFORE_LABEL / Linux | Kiln / Kiln, $BEFORE_LABEL |
|---|---|---|---|---|---|---|
| one MiB written, fsynced and read back | $k_mib | $b_mib | $l_mib | $(ratio "$k_mib" "$l_mib") | $(ratio "$b_mib" "$l_mib") | $(ratio "$k_mib" "$b_mib") |
| one file created, stat'ed and unlinked | $k_file | $b_file | $l_file | $(ratio "$k_file" "$l_file") | $(ratio "$b_file" "$l_file") | $(ratio "$k_file" "$b_file") |"
    fi
    [ "$kiln_vol" = 1 ] || vol_itable="Kiln: not measured (this bake has no volumes).

$vol_itable"
    insn_section="Guest instructions (lower is better; the ratio is Kiln's count over Linux's), from one run of
each with \`-m $INSN_MIB -n $INSN_NFILES\` under \`-icount shift=0,sleep=off\` on \`-M microvm\` with the TCG
plugin (\`$plugin\`, inline). Under \`shift=0\` a guest's clocks are virtual, 1 ns per
instruction executed, so the phase times fileio reports with clock_gettime are the
instructions the whole VM (app, kernel, interrupts) executed in that phase, with two caveats:
time halted also advances the clock (none in these tmpfs runs: nothing waits); and each
iteration of a \`rep movs/stos\` counts as one instruction, so a kernel that copies
with \`rep movsb\` (Linux on \`-cpu max\`, which has ERMS/FSRM) is charged per byte.
The plugin's whole-run total is given for scale (it is mostly boot: Linux's includes its
time-based waits, paid in instructions under icount). Kiln: \`KILN_QEMU\` set to a wrapper
adding the icount and plugin options to bake's own QEMU command line; Linux:
\`bench/linux-guest.sh run --machine microvm --insn\` (there told its TSC runs at 1 GHz).

| measure | Kiln, tmpfs | Linux guest, tmpfs | Kiln / Linux |
|---|---|---|---|
$(itable i-kiln-tmpfs i-linux-tmpfs)
$(failures i-kiln-tmpfs i-linux-tmpfs)

On a disk the guest waits for the device, and with \`sleep=off\` its virtual clock then jumps
from timer deadline to timer deadline while the host does the I/O, so phase times there are
not instruction counts. The disk figures are instead differences of the plugin's whole-run
totals between two runs that differ only in size, per unit: \`fileio -p seq -m 2\` and
\`-m $((2 + INSN_MIB))\` (write, fsync and read together), \`fileio -p files -n 100\` and
\`-n $((100 + INSN_NFILES))\` (create, stat and unlink together), each on a new disk. Instructions
run while the guest waits (its idle loop, timer interrupts) count too.

$vol_itable
$(failures $(cd "$fo" && ls i-*-vol-*.txt 2>/dev/null | sed 's/\.txt$//'))"
fi

kernel_pkg=$(sed -n 's/^package //p' "$out/linux-guest/KERNEL" 2>/dev/null || echo unknown)
before_note=""
if [ -n "$BEFORE" ]; then
    when=$(sed -n 's/^`.*bench\/files.sh` on \(.*\)$/\1/p' "$BEFORE/section.md" 2>/dev/null | head -n1)
    [ -n "$when" ] || when="date unknown"
    bload=$(sed -n 's/^Load average when measured: \([0-9. ]*\) .*/\1/p' "$BEFORE/section.md" 2>/dev/null | head -n1)
    before_note="
- Kiln, $BEFORE_LABEL: Kiln's figures from an earlier run of this script (\`BEFORE=DIR\`,
  ${when%.}, load average ${bload:-unknown}); the native and Linux columns are this
  run's. Its ratio column is this run's Kiln over that one (above 1: faster now)."
fi
section=$(cat <<EOF
## (f) Files: sequential I/O and small-file metadata, on tmpfs and on a disk

\`BENCH_INSN=${BENCH_INSN:-0} MIB=$MIB NFILES=$NFILES bench/files.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown).
Load average when measured: $load (2 shared CPUs: every wall-clock figure, native ones
included, moves with it; one run of each, side by side).

bench/fileio.c, \`musl-gcc -static -O2\`, the same binary everywhere: \`fileio -m $MIB -n $NFILES DIR\`
writes $MIB MiB to DIR/fileio.dat in 64 KiB write(2)s, fsync(2)s it (timed on its own), reads it
back in 64 KiB read(2)s through a new descriptor (no cache dropping: on Linux the page cache
serves it), then creates $NFILES empty files in a new directory (open O_CREAT|O_EXCL, close),
stats each and unlinks each. Rates from clock_gettime(CLOCK_MONOTONIC) around each phase;
MB/s is 10^6 bytes/s.

- Kiln: \`bake run --accel tcg --machine pc --mem $MEM fileio -- ... /tmp\`$([ "$kiln_vol" = 1 ] && echo ", and with \`--volume vol.img:/data\` on a FAT32 volume from \`bake volume create --size ${disk_mib}M\`").
- Linux guest: \`bench/linux-guest.sh run --machine pc --mem $MEM [--disk IMG --fs vfat|ext2] fileio ... DIR\`:
  Debian's $kernel_pkg, busybox initramfs, tmpfs at /tmp, virtio-blk disk
  (${disk_mib} MiB image, \`mkfs.fat -F 32\` or \`mke2fs -t ext2\`, raw, QEMU's default cache=writeback)
  mounted at /data; TCG, \`-cpu max\`, \`-M pc\` (on microvm Linux cannot calibrate its TSC
  under TCG without icount). Kiln runs on \`-M pc\` too, so both disks are virtio-blk-pci.
- Native: $native_tmp for tmpfs; a directory on the host's $native_disk_fs file system for the disk
  (no loop mount: a shared machine).
- Ratios: for rates Kiln's over the other's (above 1: Kiln is faster); for the fsync time the
  other's over Kiln's (also above 1: Kiln is faster).$before_note

### tmpfs

$tmpfs_table

### disk

$disk_table

### Guest instruction counts

$insn_section
EOF
)

printf '%s\n' "$section" >"$fo/section.md"  # for a later run's BEFORE=
log "writing section (f) of $report"
printf '%s\n' "$section" >"$out/section.md"
write_section "$report" f "$out/section.md"
printf '%s\n' "$section"
