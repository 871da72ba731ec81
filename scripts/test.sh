#!/usr/bin/env bash
# Runs all of Kiln's tests: host unit tests (libc-shim, bake) and the end-to-end tests in
# tests/ that bake the C programs in tests/c/ and boot them under QEMU.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh --test programs hello`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# The workspace's default members (libc-shim, bake, tests): the kernel only builds for
# x86_64-unknown-none, and bake's build script builds it and carries it inside bake.
cargo build --release
cargo test --release --no-fail-fast "$@"
