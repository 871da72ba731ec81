#!/usr/bin/env bash
# Sets up, builds bake, bakes a demo app into an image and boots it under QEMU.
# The demo app is, for now, tests/c/hello.c built as a static musl binary.
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
run target/release/bake build "$out/hello" -o "$out/hello.img"
run target/release/bake inspect "$out/hello.img"
run target/release/bake run "$out/hello.img"
