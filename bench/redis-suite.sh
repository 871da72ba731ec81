#!/bin/sh
# redis's own test suite (tests/ in its source tree, run by tclsh) against redis-server in Kiln,
# in its external-server mode, from the host over `bake run -p`. Long (tens of minutes under
# TCG): not part of CI.
#
#   bench/redis-suite.sh REDIS_SOURCE_DIR [EXTRA RUNTEST ARGS...]
#
# REDIS_SOURCE_DIR is a built redis 7.0 tree (e.g. `apt-get source redis` and
# `make CC=musl-gcc MALLOC=libc LDFLAGS=-static BUILD_TLS=no USE_SYSTEMD=no`, see
# tests/tests/apps.rs); its src/redis-server is what boots. Needs tclsh (apt-get install tcl).
#
# Excluded by tag, with the reason:
#   needs:repl   replication: a replica is a second redis process; Kiln runs one process per VM
#                and has no fork for the full sync
#   needs:save   BGSAVE-based persistence: fork is ENOSYS by design in Kiln
# Tests tagged external:skip are skipped by runtest itself in external mode (they start their
# own servers). Output: bench/out/redis-suite.log (and the VM's log next to it).
set -eu
src=$(cd "${1:?usage: $0 REDIS_SOURCE_DIR [RUNTEST ARGS...]}" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bake=${KILN_BAKE:-$root/target/release/bake}
out=$here/out
mkdir -p "$out"
port=${REDIS_SUITE_PORT:-21111}
command -v tclsh >/dev/null || { echo "tclsh missing: apt-get install tcl" >&2; exit 2; }
[ -x "$src/src/redis-server" ] || { echo "no $src/src/redis-server: build redis first" >&2; exit 2; }

"$bake" run -v --timeout "${REDIS_SUITE_VM_SECS:-7200}" --mem 512M -p "$port:6379" \
    "$src/src/redis-server" -- --save "" --appendonly yes --protected-mode no --enable-debug-command yes \
    >"$out/redis-suite-vm.log" 2>&1 &
vm=$!
trap 'kill $vm 2>/dev/null || true' EXIT INT TERM
i=0
until "$src/src/redis-cli" -p "$port" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1))
    [ $i -lt 120 ] || { echo "redis in Kiln did not answer" >&2; cat "$out/redis-suite-vm.log" >&2; exit 1; }
    sleep 1
done

cd "$src"
set +e
./runtest --host 127.0.0.1 --port "$port" --tags -needs:repl --tags -needs:save \
    --timeout 600 "$@" 2>&1 | tee "$out/redis-suite.log"
status=$?
set -e
echo "passed: $(grep -c '^\[ok\]' "$out/redis-suite.log")  failed: $(grep -c '^\[err\]' "$out/redis-suite.log")  exceptions: $(grep -c '^\[exception\]' "$out/redis-suite.log")"
exit $status
