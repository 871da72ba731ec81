#!/usr/bin/env bash
# bench/linux-guest.sh: run a static Linux x86_64 binary in a minimal Linux guest under QEMU,
# the fair comparison for Kiln (same binary, same QEMU settings). Not a test; CI does not run it.
#
#   bench/linux-guest.sh build
#   bench/linux-guest.sh run [OPTIONS] BINARY [ARGS...]
#   bench/linux-guest.sh run [OPTIONS] --initrd INITRD
#   bench/linux-guest.sh pack [--files DIR] -o INITRD BINARY [ARGS...]
#
# `build` (done by `run` when missing) fills bench/out/linux-guest/ once: Debian's kernel
# package (apt-get download linux-image-<version>-amd64, the package linux-image-amd64 depends
# on; the host's own kernel is not used), busybox-static, and a base initramfs (newc cpio,
# gzip) holding busybox, the kernel modules listed below with their dependencies, and /init.
# `run` appends a second cpio archive with the binary and its arguments, boots it and prints
# the program's output as it comes (the serial console, minus \r and the kernel's power-off
# lines). /init mounts proc, sys, devtmpfs, a tmpfs at /tmp and, when a disk is attached,
# /dev/vda at /data; brings up eth0 when there is a NIC (10.0.2.15/24 via 10.0.2.2 for user
# networking, or the address --ip gives, read from the kernel command line: lg.ip=, lg.gw=);
# runs the program with /data (or /) as its working directory; then unmounts /data (writing
# it back), prints "linux-guest: status N" and powers off. The script's exit status is the program's (123 when none was reported, 124
# on timeout, 125 when QEMU failed).
#
# OPTIONS
#   --disk IMG        attach IMG as a virtio-blk disk, mounted at /data
#   --fs TYPE         its filesystem as the guest's mount(8) names it: vfat (default) or ext2
#                     (served by the ext4 driver); make it with `bench/linux-guest.sh mkfs`
#   --hostfwd H:G     user networking with a virtio-net NIC, host TCP port H to guest port G
#                     (repeatable); the guest has 10.0.2.15/24, gateway 10.0.2.2
#   --tap NAME        a virtio-net NIC on the host tap device NAME (made and addressed by the
#                     caller: ip tuntap add NAME mode tap; ip addr add 192.168.77.1/24 dev
#                     NAME; ip link set NAME up), as `bake run --net tap:NAME` attaches it
#                     (modern virtio only, no option ROM; QEMU's default MAC 52:54:00:12:34:56)
#   --ip ADDR/PREFIX  the guest's static address on the tap (required with --tap)
#   --gateway ADDR    its default route (optional)
#   --files DIR       add DIR's tree to the guest's root filesystem (config files, pages)
#   --initrd INITRD   boot an initramfs made by `pack` instead of packing BINARY now (so that
#                     timing a boot does not include packing)
#   --machine M       pc (default) or microvm. On microvm (no HPET, no PM timer) Linux cannot
#                     calibrate its TSC under TCG and stops at boot, so it is told the TSC
#                     frequency: 1 GHz under --insn (icount's virtual TSC), otherwise
#                     LINUX_GUEST_TSC_KHZ, which must then be set (QEMU TCG's TSC is the
#                     host's).
#   --mem SIZE        guest memory (default 256M)
#   --insn LOG        count guest instructions exactly: -icount shift=0,sleep=off and the TCG
#                     plugin libinsn.so (INSN_PLUGIN, default bench/out/plugins/libinsn.so,
#                     else /tmp/plugins/libinsn.so) in inline mode; the count ("insns: N") is
#                     written to LOG. The guest's clocks then run on virtual time.
#   --timeout SECS    kill QEMU after SECS (default 600); status 124
#
#   bench/linux-guest.sh mkfs IMG SIZE_MIB vfat|ext2   make an empty disk image
#
# `pack` writes the whole initramfs `run` would boot (the base archive, then one with the
# binary, its arguments, /init and --files) to INITRD; its size is the guest's payload next to
# the kernel (bench/out/linux-guest/vmlinuz).
#
# Everything runs under TCG with -cpu max: the KVM on these machines is a nested PVM that does
# not run stock Linux guests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${LINUX_GUEST_DIR:-$here/out/linux-guest}

log() { printf '[linux-guest] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 125; }

# Modules /init loads, in this order (each preceded by its dependencies): virtio over PCI and
# MMIO, the block and net drivers, and the filesystems a disk may carry.
MODULES="virtio_pci virtio_mmio virtio_blk virtio_net vfat nls_cp437 nls_ascii ext4 crc32c_generic"

# write_init FILE: the guest's /init. Every archive `run` and `pack` make carries it (it
# replaces the base archive's), so a change here needs no rebuild.
write_init() {
    cat >"$1" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
while read -r m; do insmod "/lib/modules/$m.ko" 2>/dev/null; done </lib/modules/order
cd /
# Settings from the kernel command line: the disk's filesystem; a static address (and its
# gateway, if any) instead of QEMU user networking's.
fs=vfat addr=10.0.2.15/24 gw=10.0.2.2 sip= sgw=
for a in $(cat /proc/cmdline); do
    case $a in
    lg.fs=*) fs=${a#lg.fs=} ;;
    lg.ip=*) sip=${a#lg.ip=} ;;
    lg.gw=*) sgw=${a#lg.gw=} ;;
    esac
done
if [ -n "$sip" ]; then addr=$sip gw=$sgw; fi
if [ -b /dev/vda ]; then
    if mount -t "$fs" /dev/vda /data; then cd /data; else echo "linux-guest: cannot mount /dev/vda ($fs)"; fi
fi
if [ -e /sys/class/net/eth0 ]; then
    ip link set lo up
    ip link set eth0 up
    ip addr add "$addr" dev eth0
    if [ -n "$gw" ]; then ip route add default via "$gw"; fi
fi
sh /app/run
st=$?
cd /
sync
if grep -q ' /data ' /proc/mounts; then umount /data || echo "linux-guest: umount /data failed"; fi
echo "linux-guest: status $st"
poweroff -f
EOF
    chmod 755 "$1"
}

build() {
    command -v apt-get >/dev/null || die "needs apt-get (Debian/Ubuntu)"
    command -v dpkg-deb >/dev/null || die "needs dpkg-deb"
    local dl=$out/dl root=$out/root
    rm -rf "$dl" "$root" "$out/vmlinuz" "$out/base.cpio.gz" "$out/KERNEL"
    mkdir -p "$dl" "$root"
    local kpkg
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    if [ -z "$kpkg" ]; then
        log "apt-get update (no linux-image-amd64 in the package lists)"
        apt-get update -qq >&2
        kpkg=$(apt-cache depends linux-image-amd64 |
            sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
    fi
    [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 to a kernel package"
    log "downloading $kpkg, busybox-static, cpio, dosfstools"
    # apt's _apt user must be able to write into the download directory.
    (cd "$dl" && chmod 777 . && apt-get download -q "$kpkg" busybox-static cpio dosfstools >&2)
    local x=$dl/x
    mkdir -p "$x"
    for d in "$dl"/*.deb; do dpkg-deb -x "$d" "$x"; done
    local vmlinuz
    vmlinuz=$(ls "$x"/boot/vmlinuz-* | head -n1)
    cp "$vmlinuz" "$out/vmlinuz"
    local kver=${vmlinuz##*/vmlinuz-}
    local moddir=$x/lib/modules/$kver

    # Busybox and /init.
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,data,app,lib/modules}
    cp "$x/bin/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    # Modules in load order: dependencies first (read from each module's depends= field).
    local order=() seen=" "
    add_module() {
        local m=$1 f deps d
        case "$seen" in *" $m "*) return ;; esac
        seen="$seen$m "
        f=$(find "$moddir/kernel" -name "$m.ko" -o -name "${m//_/-}.ko" | head -n1)
        [ -n "$f" ] || die "module $m not in $kpkg"
        deps=$(strings "$f" | sed -n 's/^depends=//p' | head -n1)
        for d in ${deps//,/ }; do add_module "$d"; done
        order+=("$m")
        cp "$f" "$root/lib/modules/$m.ko"
    }
    command -v strings >/dev/null || die "needs strings (binutils)"
    for m in $MODULES; do add_module "$m"; done
    printf '%s\n' "${order[@]}" >"$root/lib/modules/order"

    write_init "$root/init"
    (cd "$root" && find . | LC_ALL=C sort | "$x/bin/cpio" -o -H newc --quiet -R 0:0 | gzip -9 >"$out/base.cpio.gz")
    cp "$x/bin/cpio" "$out/cpio"
    cp "$x/sbin/mkfs.fat" "$out/mkfs.fat"
    printf 'package %s\nkernel %s\nmodules %s\n' "$kpkg" "$kver" "${order[*]}" >"$out/KERNEL"
    rm -rf "$dl"
    log "built $out: $(tr '\n' ' ' <"$out/KERNEL")"
}

mkfs_img() {  # IMG SIZE_MIB TYPE
    [ $# = 3 ] || die "usage: linux-guest.sh mkfs IMG SIZE_MIB vfat|ext2"
    rm -f "$1"
    truncate -s "$2M" "$1"
    case $3 in
    vfat) "$out/mkfs.fat" -F 32 -n DATA "$1" >/dev/null ;;
    ext2) mke2fs -q -F -t ext2 "$1" ;;
    *) die "unknown filesystem $3" ;;
    esac
}

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }  # single-quote for sh

# make_initrd OUT GZIP_LEVEL FILES_DIR BINARY [ARGS...]: the base archive followed by one with
# /init, FILES_DIR's tree (if not empty), the binary and /app/run.
make_initrd() {
    local dest=$1 level=$2 files=$3 bin=$4
    shift 4
    [ -f "$bin" ] || die "no such file: $bin"
    [ -z "$files" ] || [ -d "$files" ] || die "no such directory: $files"
    [ -f "$out/base.cpio.gz" ] || build
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp/root/app"
    [ -z "$files" ] || cp -a "$files/." "$tmp/root/"
    write_init "$tmp/root/init"
    # Under its own name: argv[0] matters to some programs (busybox, for one).
    local name
    name=$(basename "$bin")
    case $name in run | fs) name=$name.bin ;; esac
    cp "$bin" "$tmp/root/app/$name"
    chmod 755 "$tmp/root/app/$name"
    {
        printf 'exec %s' "$(q "/app/$name")"
        for a in "$@"; do printf ' %s' "$(q "$a")"; done
        printf '\n'
    } >"$tmp/root/app/run"
    (cd "$tmp/root" && find . -mindepth 1 | LC_ALL=C sort | "$out/cpio" -o -H newc --quiet -R 0:0 | gzip "-$level" >"$tmp/app.cpio.gz")
    cat "$out/base.cpio.gz" "$tmp/app.cpio.gz" >"$dest"
    rm -rf "$tmp"
}

pack() {
    local files="" dest=""
    while [ $# -gt 0 ]; do
        case $1 in
        --files) files=$2; shift 2 ;;
        -o) dest=$2; shift 2 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
        esac
    done
    [ -n "$dest" ] && [ $# -ge 1 ] || die "usage: linux-guest.sh pack [--files DIR] -o INITRD BINARY [ARGS...]"
    make_initrd "$dest" 9 "$files" "$@"
}

run() {
    local disk="" fs=vfat machine=pc mem=256M insn="" timeout=600 fwd=() tap="" ip="" gw=""
    local files="" initrd=""
    while [ $# -gt 0 ]; do
        case $1 in
        --disk) disk=$2; shift 2 ;;
        --fs) fs=$2; shift 2 ;;
        --hostfwd) fwd+=("$2"); shift 2 ;;
        --tap) tap=$2; shift 2 ;;
        --ip) ip=$2; shift 2 ;;
        --gateway) gw=$2; shift 2 ;;
        --files) files=$2; shift 2 ;;
        --initrd) initrd=$2; shift 2 ;;
        --machine) machine=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --insn) insn=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
        esac
    done
    if [ -n "$tap" ]; then
        [ ${#fwd[@]} = 0 ] || die "--tap and --hostfwd are exclusive (one NIC)"
        [ -e "/sys/class/net/$tap" ] || die "no tap device $tap (ip tuntap add $tap mode tap)"
        [[ $ip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "--tap needs --ip ADDR/PREFIX (got '$ip')"
        [ -z "$gw" ] || [[ $gw =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad --gateway $gw"
    else
        [ -z "$ip$gw" ] || die "--ip and --gateway go with --tap"
    fi
    [ -f "$out/base.cpio.gz" ] || build

    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    # Killed (a caller ending its process group): no temporary files left behind either.
    trap 'rm -rf "$work"; exit 143' TERM
    if [ -n "$initrd" ]; then
        [ $# = 0 ] || die "--initrd takes no BINARY (pack put it in the initramfs)"
        [ -z "$files" ] || die "--files goes to pack when --initrd is used"
        [ -f "$initrd" ] || die "no such file: $initrd"
    else
        [ $# -ge 1 ] || die "usage: linux-guest.sh run [OPTIONS] BINARY [ARGS...]"
        make_initrd "$work/initrd" 1 "$files" "$@"
        initrd=$work/initrd
    fi

    local margs=() blk net append="console=ttyS0 quiet loglevel=3 panic=-1 reboot=t lg.fs=$fs"
    case $machine in
    microvm)
        # ACPI on (QEMU's default) so that Linux finds the virtio-mmio devices and can power
        # off; modern virtio-mmio as Kiln uses it.
        margs=(-M microvm,rtc=on -global virtio-mmio.force-legacy=false)
        blk=virtio-blk-device net=virtio-net-device
        local khz=${LINUX_GUEST_TSC_KHZ:-}
        [ -n "$insn" ] && khz=1000000
        [ -n "$khz" ] || die "microvm needs --insn or LINUX_GUEST_TSC_KHZ (see --machine)"
        append+=" tsc_early_khz=$khz" ;;
    pc) margs=(-M pc); blk=virtio-blk-pci net=virtio-net-pci ;;
    *) die "unknown machine $machine" ;;
    esac
    if [ -n "$disk" ]; then
        margs+=(-drive "file=${disk//,/,,},if=none,id=d0,format=raw" -device "$blk,drive=d0")
    fi
    if [ ${#fwd[@]} -gt 0 ]; then
        local spec="user,id=n0" f
        for f in "${fwd[@]}"; do spec+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f##*:}"; done
        margs+=(-netdev "$spec" -device "$net,netdev=n0")
    fi
    if [ -n "$tap" ]; then
        # The device as bake attaches it for Kiln (bake/src/qemu.rs): modern virtio, no ROM.
        local dev=$net
        [ "$net" = virtio-net-pci ] && dev+=",disable-legacy=on,romfile="
        margs+=(-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "$dev,netdev=n0")
        append+=" lg.ip=$ip"
        [ -z "$gw" ] || append+=" lg.gw=$gw"
    fi
    if [ -n "$insn" ]; then
        local plugin=${INSN_PLUGIN:-}
        [ -n "$plugin" ] || for p in "$here/out/plugins/libinsn.so" /tmp/plugins/libinsn.so; do
            [ -f "$p" ] && { plugin=$p; break; }
        done
        [ -f "$plugin" ] || die "no libinsn.so: build it with ../shared/tools/build-insn-plugin.sh"
        rm -f "$insn"
        margs+=(-icount shift=0,sleep=off -plugin "$plugin,inline=on" -d plugin -D "$insn")
    fi

    # The console streams through (for servers whose readiness a caller watches), minus \r and
    # the status line. timeout --foreground keeps QEMU in the caller's process group, so that
    # ending the group (as bench/servers.sh does) ends QEMU too.
    local st=0
    set +e
    timeout --foreground "$timeout" qemu-system-x86_64 "${margs[@]}" -cpu max -accel tcg -m "$mem" \
        -kernel "$out/vmlinuz" -initrd "$initrd" \
        -append "$append" \
        -display none -nodefaults -serial stdio -no-reboot </dev/null 2>"$work/qemu.err" |
        sed -u 's/\r$//' | tee "$work/serial" |
        grep --line-buffered -Ev '^linux-guest: status |^\[ *[0-9.]+\] (reboot: Power down|ACPI: PM: Preparing to enter system sleep state S5)$'
    st=${PIPESTATUS[0]}
    set -e
    if [ "$st" = 124 ]; then log "timed out after ${timeout}s"; return 124; fi
    if [ "$st" != 0 ]; then log "QEMU failed (status $st): $(head -c 500 "$work/qemu.err")"; return 125; fi
    local ps
    ps=$(sed -n 's/^linux-guest: status //p' "$work/serial" | tail -n1)
    [ -n "$ps" ] || { log "the guest ended without reporting a status"; return 123; }
    return "$ps"
}

case ${1:-} in
build) build ;;
mkfs) shift; [ -f "$out/mkfs.fat" ] || build; mkfs_img "$@" ;;
run) shift; run "$@" ;;
pack) shift; pack "$@" ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
