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
# and, by name (a generated --skipfile), the untagged tests that fork: BGSAVE, BGREWRITEAOF,
# or attaching to the replication stream (SYNC, which needs a BGSAVE child). Without the skip
# the first of them ends the whole run with an exception ("ERR" from BGSAVE).
# Also skipped by name, because each ends the whole run in this set-up:
#   "CONFIG SET rollback on apply error"  it listens on a port on the host and expects redis's
#       `CONFIG SET port` to that port to fail; in the guest the port is free, so redis moves
#       to it and the next test finds no server
#   "Blocking XREAD: key type changed with SET"  a race in the test: when the slower path
#       reorders it, the test client gets a WRONGTYPE exception
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
# bake and its QEMU share the process group of this script's background job: kill them both.
trap 'pkill -P $vm 2>/dev/null; kill $vm 2>/dev/null || true' EXIT INT TERM
i=0
until "$src/src/redis-cli" -p "$port" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1))
    [ $i -lt 120 ] || { echo "redis in Kiln did not answer" >&2; cat "$out/redis-suite-vm.log" >&2; exit 1; }
    sleep 1
done

cd "$src"
skip=$out/redis-suite.skip
awk '/^[ \t]*test [{"]/ { name = $0; sub(/^[ \t]*test [{"]/, "", name); sub(/[}"] *[{].*$/, "", name); sub(/[}"] *$/, "", name) }
     /attach_to_replication_stream|r bgsave|[Bb]grewriteaof|waitForBgsave|waitForBgrewriteaof/ && name != "" { print name }' tests/unit/*.tcl tests/unit/type/*.tcl | sort -u >"$skip"
printf '%s\n' "CONFIG SET rollback on apply error" "Blocking XREAD: key type changed with SET" >>"$skip"
set +e
./runtest --host 127.0.0.1 --port "$port" --tags -needs:repl --tags -needs:save --skipfile "$skip" \
    --timeout 600 "$@" 2>&1 | tee "$out/redis-suite.log"
set -e
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$out/redis-suite.log")
count() { printf '%s\n' "$plain" | grep -c "^\[$1\]"; }
echo "passed: $(count ok)  failed: $(count err)  exceptions: $(count exception)  skipped: $(count ignore)"
[ "$(count err)" = 0 ] && [ "$(count exception)" = 0 ]
