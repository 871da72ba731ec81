#!/usr/bin/env bash
# Installs what building and testing Kiln needs, only where it is missing:
#   qemu-system-x86_64 (runs the images), musl-gcc and gcc with glibc's static libraries
#   (build the test programs), go (golang-go: the Go test programs), and the Rust toolchain
#   pinned in rust-toolchain.toml.
# Debian/Ubuntu (apt). Uses sudo only when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v go >/dev/null 2>&1 || need+=(golang-go)
# gcc -static needs glibc's libc.a.
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
# The sqlite3 volume test builds sqlite's amalgamation from Debian's source package.
command -v tclsh >/dev/null 2>&1 || need+=(tcl)
command -v make >/dev/null 2>&1 || need+=(make)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
# The package recipes (packages/, bake pkg) unpack Debian's .orig tarballs: zlib's is .bz2.
command -v bzip2 >/dev/null 2>&1 || need+=(bzip2)
# The openssl recipe's Configure is Perl and needs modules perl-base lacks (IPC::Cmd).
perl -MIPC::Cmd -e 1 >/dev/null 2>&1 || need+=(perl)
# The network tests load servers with wrk and curl.
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
# tests/tests/apps.rs makes a throwaway certificate for nginx's TLS test with openssl req.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# tests/tests/apps.rs drives redis from the host with redis-cli and redis-benchmark.
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
# ... and memcached with memcslap.
command -v memcslap >/dev/null 2>&1 || need+=(libmemcached-tools)
sources=/etc/apt/sources.list.d/debian.sources
if [ -f "$sources" ] && grep -q '^Types: deb$' "$sources"; then
    echo "setup: enabling deb-src in $sources (apt-get source sqlite3)" >&2
    $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
    $SUDO apt-get update -qq
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v rustup >/dev/null 2>&1 || {
    echo "setup: rustup is not installed; install it, then run this again" >&2
    exit 1
}
# No argument: installs the toolchain named in rust-toolchain.toml (and its targets).
rustup toolchain install >/dev/null
