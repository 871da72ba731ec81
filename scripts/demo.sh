#!/usr/bin/env bash
# Sets up, builds bake, bakes a demo app into an image and boots it under QEMU, then builds
# packaged apps from their recipes (packages/lua, packages/redis: Debian's sources, static
# with musl) and boots them, checking what they do.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release -p bake

out=target/demo
mkdir -p "$out"
musl-gcc -static -O2 -o "$out/hello" tests/c/hello.c

run() {
    echo "+ $*" >&2
    "$@"
}
bake=target/release/bake
run $bake build "$out/hello" -o "$out/hello.img"
run $bake inspect "$out/hello.img"
run $bake run "$out/hello.img"

# A packaged app: built once (about half a minute), then cached.
run $bake pkg list
run $bake pkg build lua
run $bake pkg run lua
echo "+ $bake pkg run lua -- -e 'print(6 * 7)'" >&2
answer=$($bake pkg run lua -- -e 'print(6 * 7)' 2>/dev/null)
if [ "$answer" != 42 ]; then
    echo "demo: lua under Kiln printed '$answer', expected 42" >&2
    exit 1
fi
echo "$answer"
run $bake pkg test lua

# A server: redis, built once (a couple of minutes), booted with its port forwarded to the
# host; its smoke test talks to it from the host (PING, SET, GET) and stops it.
run $bake pkg build redis
run $bake pkg test redis
