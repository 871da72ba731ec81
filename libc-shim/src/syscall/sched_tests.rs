//! Host tests of the small process-model calls: CPU affinity, priorities, prctl, sysinfo.

use super::signal_tests::{MEM, setup};
use crate::errno::Errno;

const SCHED_SETAFFINITY: u64 = 203;
const SCHED_GETAFFINITY: u64 = 204;
const GETPRIORITY: u64 = 140;
const SETPRIORITY: u64 = 141;
const PRCTL: u64 = 157;
const SYSINFO: u64 = 99;

#[test]
fn affinity_is_per_thread_and_validated() {
    let mut t = setup();
    t.fake.cpus = 4;
    let c = t.spawn();
    assert_eq!(t.ret(1, SCHED_GETAFFINITY, &[0, 8, MEM]), 8);
    assert_eq!(t.get(MEM, 1), [0b1111]);
    t.put(MEM, &[0b0100, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(t.ret(1, SCHED_SETAFFINITY, &[c as u64, 8, MEM]), 0);
    assert_eq!(t.ret(1, SCHED_GETAFFINITY, &[c as u64, 8, MEM + 16]), 8);
    assert_eq!(t.get(MEM + 16, 1), [0b0100]);
    assert_eq!(t.ret(1, SCHED_GETAFFINITY, &[0, 8, MEM + 16]), 8);
    assert_eq!(
        t.get(MEM + 16, 1),
        [0b1111],
        "the other thread keeps all CPUs"
    );
    // Bits past the last CPU are dropped; a mask with no real CPU is EINVAL.
    t.put(MEM, &[0b1111_0010]);
    assert_eq!(t.ret(1, SCHED_SETAFFINITY, &[0, 1, MEM]), 0);
    assert_eq!(t.ret(1, SCHED_GETAFFINITY, &[0, 8, MEM + 16]), 8);
    assert_eq!(t.get(MEM + 16, 1), [0b0010]);
    t.put(MEM, &[0b1111_0000]);
    assert_eq!(
        t.ret(1, SCHED_SETAFFINITY, &[0, 1, MEM]),
        Errno::EINVAL.as_return()
    );
    assert_eq!(
        t.ret(1, SCHED_SETAFFINITY, &[0, 0, MEM]),
        Errno::EINVAL.as_return()
    );
    assert_eq!(
        t.ret(1, SCHED_SETAFFINITY, &[42, 8, MEM]),
        Errno::ESRCH.as_return()
    );
    // A new thread inherits its creator's mask.
    let d = t.spawn();
    assert_eq!(t.ret(d, SCHED_GETAFFINITY, &[0, 8, MEM + 16]), 8);
    assert_eq!(t.get(MEM + 16, 1), [0b0010]);
}

#[test]
fn priorities_are_recorded_and_clamped() {
    let mut t = setup();
    let c = t.spawn();
    assert_eq!(
        t.ret(1, GETPRIORITY, &[0, 0]),
        20,
        "nice 0 is 20 in the raw syscall"
    );
    assert_eq!(t.ret(1, SETPRIORITY, &[0, c as u64, 5]), 0);
    assert_eq!(t.ret(1, GETPRIORITY, &[0, c as u64]), 15);
    assert_eq!(t.ret(1, GETPRIORITY, &[0, 0]), 20, "per thread");
    assert_eq!(t.ret(1, SETPRIORITY, &[0, 0, (-100i64) as u64]), 0);
    assert_eq!(t.ret(1, GETPRIORITY, &[0, 0]), 40, "clamped to -20");
    assert_eq!(
        t.ret(1, SETPRIORITY, &[1, 0, 30]),
        0,
        "the whole process group"
    );
    assert_eq!(t.ret(1, GETPRIORITY, &[0, c as u64]), 1, "clamped to 19");
    assert_eq!(t.ret(1, GETPRIORITY, &[3, 0]), Errno::EINVAL.as_return());
    assert_eq!(t.ret(1, GETPRIORITY, &[0, 99]), Errno::ESRCH.as_return());
    assert_eq!(t.ret(1, GETPRIORITY, &[2, 1000]), Errno::ESRCH.as_return());
}

#[test]
fn prctl_names_flags_and_unknown_options() {
    let mut t = setup();
    assert_eq!(t.ret(1, PRCTL, &[16, MEM]), 0);
    assert_eq!(
        &t.get(MEM, 16)[..8],
        b"signals\0",
        "comm starts as the executable's name"
    );
    t.put(MEM, b"a-very-long-thread-name\0");
    assert_eq!(t.ret(1, PRCTL, &[15, MEM]), 0);
    let c = t.spawn();
    assert_eq!(t.ret(1, PRCTL, &[16, MEM + 0x40]), 0);
    assert_eq!(
        t.get(MEM + 0x40, 16),
        b"a-very-long-thr\0",
        "cut to 15 bytes"
    );
    t.put(MEM, b"worker\0");
    assert_eq!(t.ret(c, PRCTL, &[15, MEM]), 0);
    assert_eq!(t.ret(1, PRCTL, &[16, MEM + 0x40]), 0);
    assert_eq!(&t.get(MEM + 0x40, 4), b"a-ve", "names are per thread");
    assert_eq!(t.ret(1, PRCTL, &[1, 9]), 0, "PR_SET_PDEATHSIG");
    assert_eq!(t.ret(1, PRCTL, &[2, MEM]), 0);
    assert_eq!(t.u32_at(MEM), 9);
    assert_eq!(t.ret(1, PRCTL, &[1, 65]), Errno::EINVAL.as_return());
    assert_eq!(t.ret(1, PRCTL, &[3]), 1, "dumpable");
    assert_eq!(t.ret(1, PRCTL, &[4, 0]), 0);
    assert_eq!(t.ret(1, PRCTL, &[3]), 0);
    assert_eq!(t.ret(1, PRCTL, &[4, 2]), Errno::EINVAL.as_return());
    assert_eq!(t.ret(1, PRCTL, &[39, 0, 0, 0, 0]), 0);
    assert_eq!(t.ret(1, PRCTL, &[38, 1, 0, 0, 0]), 0);
    assert_eq!(t.ret(1, PRCTL, &[39, 0, 0, 0, 0]), 1);
    assert_eq!(
        t.ret(1, PRCTL, &[38, 2, 0, 0, 0]),
        Errno::EINVAL.as_return()
    );
    assert_eq!(
        t.ret(1, PRCTL, &[0x5356_4d41, 0, 0, 0, 0]),
        Errno::EINVAL.as_return(),
        "PR_SET_VMA"
    );
    assert_eq!(t.ret(1, PRCTL, &[12345]), Errno::EINVAL.as_return());
}

#[test]
fn sysinfo_counts_threads_and_memory() {
    let mut t = setup();
    t.spawn();
    t.spawn();
    t.fake.now_ns.set(7_500_000_000);
    assert_eq!(t.ret(1, SYSINFO, &[MEM]), 0);
    assert_eq!(t.u64_at(MEM), 7, "uptime");
    assert_eq!(t.u64_at(MEM + 32), 256 << 20, "totalram");
    assert_eq!(
        t.u64_at(MEM + 40),
        t.fake.frames_left.get() * 4096,
        "freeram"
    );
    assert_eq!(t.get(MEM + 80, 2), [3, 0], "procs: threads");
    assert_eq!(t.u32_at(MEM + 104), 1, "mem_unit");
}
