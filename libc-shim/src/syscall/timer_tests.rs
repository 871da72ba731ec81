//! Host tests of timers and CPU-time accounting: alarm, setitimer, POSIX timers firing at
//! their deadlines with intervals and overruns, SIGEV_THREAD_ID, CPU clocks, getrusage, times.

use alloc::vec;

use super::signal_tests::{
    AFTER_SYSCALL, Frame, Fx, MEM, SIGUSR1, STACK_TOP, bit, fxsave_image, regs_at, setup,
};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::{SignalOutcome, SyscallOutcome};

mod nr {
    pub const GETITIMER: u64 = 36;
    pub const ALARM: u64 = 37;
    pub const SETITIMER: u64 = 38;
    pub const GETRUSAGE: u64 = 98;
    pub const TIMES: u64 = 100;
    pub const TIMER_CREATE: u64 = 222;
    pub const TIMER_SETTIME: u64 = 223;
    pub const TIMER_GETTIME: u64 = 224;
    pub const TIMER_GETOVERRUN: u64 = 225;
    pub const TIMER_DELETE: u64 = 226;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const FUTEX: u64 = 202;
}

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

fn put_sigevent(t: &Fx, addr: u64, value: u64, signo: i32, notify: i32, tid: i32) {
    let mut b = vec![0u8; 64];
    b[0..8].copy_from_slice(&value.to_le_bytes());
    b[8..12].copy_from_slice(&signo.to_le_bytes());
    b[12..16].copy_from_slice(&notify.to_le_bytes());
    b[16..20].copy_from_slice(&tid.to_le_bytes());
    t.put(addr, &b);
}

fn put_itimerspec(t: &Fx, addr: u64, interval: u64, value: u64) {
    let ts = |ns: u64| [(ns / SEC).to_le_bytes(), (ns % SEC).to_le_bytes()].concat();
    t.put(addr, &[ts(interval), ts(value)].concat());
}

fn delivered(t: &mut Fx, tid: i32) -> Frame {
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    assert_eq!(
        t.deliver(tid, &mut regs, &fxsave_image(), None),
        SignalOutcome::Delivered
    );
    Frame::read(t, regs.rsp)
}

#[test]
fn alarm_sends_sigalrm_at_its_deadline() {
    let mut t = setup();
    let now = t.fake.monotonic_ns();
    assert_eq!(t.ret(1, nr::ALARM, &[2]), 0);
    assert_eq!(t.p.next_timer(), Some(now + 2 * SEC));
    t.fake.now_ns.set(now + 300 * MS);
    assert_eq!(t.ret(1, nr::ALARM, &[5]), 2, "1.7 s left rounds to 2");
    assert_eq!(t.p.next_timer(), Some(now + 300 * MS + 5 * SEC));
    t.p.run_timers(now + 5 * SEC);
    assert!(!t.p.signal_pending(1), "not due yet");
    // The only thread sleeps in pause(): the fatal SIGALRM must still wake it.
    assert!(matches!(t.sys(1, 34, &[]), SyscallOutcome::Block { .. }));
    t.p.run_timers(now + 300 * MS + 5 * SEC);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.ret(1, 34, &[]), -514);
    assert!(t.p.signal_pending(1));
    assert_eq!(t.p.next_timer(), None, "one-shot");
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    assert_eq!(
        t.deliver(1, &mut regs, &fxsave_image(), None),
        SignalOutcome::Terminate {
            status: 142,
            signal: 14
        },
        "SIGALRM's default action"
    );
    assert_eq!(t.ret(1, nr::ALARM, &[0]), 0);
}

#[test]
fn setitimer_reloads_with_its_interval_and_wakes_a_sleeper() {
    let mut t = setup();
    t.handle(14, 0, 0);
    let now = t.fake.monotonic_ns();
    // it_interval 10 ms, it_value 25 ms (timevals)
    t.put(
        MEM,
        &[0u64, 10_000, 0, 25_000].map(u64::to_le_bytes).concat(),
    );
    assert_eq!(t.ret(1, nr::SETITIMER, &[0, MEM, MEM + 0x40]), 0);
    assert_eq!(t.u64_at(MEM + 0x40 + 24), 0, "no previous timer");
    assert_eq!(t.p.next_timer(), Some(now + 25 * MS));
    t.fake.now_ns.set(now + 5 * MS);
    assert_eq!(t.ret(1, nr::GETITIMER, &[0, MEM + 0x80]), 0);
    assert_eq!(
        (t.u64_at(MEM + 0x88), t.u64_at(MEM + 0x98)),
        (10_000, 20_000),
        "interval, value left (usec)"
    );
    // The main thread sleeps in a futex wait; SIGALRM interrupts it.
    t.put(MEM + 0x100, &0u32.to_le_bytes());
    assert!(matches!(
        t.sys(1, nr::FUTEX, &[MEM + 0x100, 0, 0, 0]),
        SyscallOutcome::Block { .. }
    ));
    t.p.run_timers(now + 25 * MS);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.p.next_timer(), Some(now + 35 * MS), "reloaded");
    let f = {
        assert_eq!(t.ret(1, nr::FUTEX, &[MEM + 0x100, 0, 0, 0]), -512);
        delivered(&mut t, 1)
    };
    assert_eq!((f.si_signo(), f.si_code()), (14, 0x80), "SI_KERNEL");
    assert_eq!(
        t.ret(1, nr::SETITIMER, &[3, MEM, 0]),
        Errno::EINVAL.as_return()
    );
    t.put(MEM, &[0u64, 0, 0, 1_000_000].map(u64::to_le_bytes).concat());
    assert_eq!(
        t.ret(1, nr::SETITIMER, &[0, MEM, 0]),
        Errno::EINVAL.as_return(),
        "usec out of range"
    );
    // A null new value disarms.
    assert_eq!(t.ret(1, nr::SETITIMER, &[0, 0, 0]), 0);
    assert_eq!(t.p.next_timer(), None);
}

#[test]
fn posix_timer_intervals_overruns_and_siginfo() {
    let mut t = setup();
    t.handle(SIGUSR1, 4, 0);
    put_sigevent(&t, MEM, 0x1234, SIGUSR1 as i32, 0, 0);
    assert_eq!(t.ret(1, nr::TIMER_CREATE, &[1, MEM, MEM + 0x40]), 0);
    let id = t.u32_at(MEM + 0x40) as u64;
    assert_eq!(id, 0);
    let now = t.fake.monotonic_ns();
    put_itimerspec(&t, MEM + 0x80, MS, MS);
    assert_eq!(t.ret(1, nr::TIMER_SETTIME, &[id, 0, MEM + 0x80, 0]), 0);
    assert_eq!(t.p.next_timer(), Some(now + MS));
    t.p.run_timers(now + MS);
    assert!(t.p.signal_pending(1));
    // Expiries while the signal is still queued count as overruns (late by 1.5 periods: 2).
    t.p.run_timers(now + 3 * MS + MS / 2);
    assert_eq!(t.p.next_timer(), Some(now + 4 * MS));
    let f = delivered(&mut t, 1);
    assert_eq!((f.si_signo(), f.si_code()), (10, -2), "SI_TIMER");
    assert_eq!(
        (f.d(328), f.d(332), f.q(336)),
        (0, 2, 0x1234),
        "si_tid (timer id), si_overrun, si_value"
    );
    assert_eq!(t.ret(1, nr::TIMER_GETOVERRUN, &[id]), 2);
    t.fake.now_ns.set(now + 3 * MS);
    assert_eq!(t.ret(1, nr::TIMER_GETTIME, &[id, MEM + 0xc0]), 0);
    assert_eq!(
        (t.u64_at(MEM + 0xc8), t.u64_at(MEM + 0xd8)),
        (MS, MS),
        "interval; 1 ms left until 4 ms"
    );
    // Disarm with a zero value; old value reported.
    put_itimerspec(&t, MEM + 0x80, 0, 0);
    assert_eq!(
        t.ret(1, nr::TIMER_SETTIME, &[id, 0, MEM + 0x80, MEM + 0x100]),
        0
    );
    assert_eq!(t.u64_at(MEM + 0x108), MS);
    assert_eq!(t.p.next_timer(), None);
    assert_eq!(t.ret(1, nr::TIMER_DELETE, &[id]), 0);
    assert_eq!(t.ret(1, nr::TIMER_DELETE, &[id]), Errno::EINVAL.as_return());
    assert_eq!(
        t.ret(1, nr::TIMER_GETOVERRUN, &[id]),
        Errno::EINVAL.as_return()
    );
}

#[test]
fn absolute_realtime_timers_and_delete_drops_the_pending_signal() {
    let mut t = setup();
    t.sigprocmask(1, 0, bit(SIGUSR1));
    put_sigevent(&t, MEM, 7, SIGUSR1 as i32, 0, 0);
    assert_eq!(t.ret(1, nr::TIMER_CREATE, &[0, MEM, MEM + 0x40]), 0);
    let id = t.u32_at(MEM + 0x40) as u64;
    let now = t.fake.monotonic_ns();
    put_itimerspec(&t, MEM + 0x80, 0, t.fake.realtime_ns() + 3 * SEC);
    assert_eq!(t.ret(1, nr::TIMER_SETTIME, &[id, 1, MEM + 0x80, 0]), 0);
    assert_eq!(
        t.p.next_timer(),
        Some(now + 3 * SEC),
        "TIMER_ABSTIME on CLOCK_REALTIME"
    );
    t.p.run_timers(now + 3 * SEC);
    assert_eq!(t.ret(1, nr::TIMER_DELETE, &[id]), 0);
    assert_eq!(t.ret(1, 127, &[MEM + 0x100, 8]), 0);
    assert_eq!(
        t.u64_at(MEM + 0x100),
        0,
        "the deleted timer's signal is gone"
    );
    // An absolute time in the past fires at once.
    assert_eq!(t.ret(1, nr::TIMER_CREATE, &[1, MEM, MEM + 0x40]), 0);
    let id = t.u32_at(MEM + 0x40) as u64;
    put_itimerspec(&t, MEM + 0x80, 0, 1);
    assert_eq!(t.ret(1, nr::TIMER_SETTIME, &[id, 1, MEM + 0x80, 0]), 0);
    assert_eq!(t.ret(1, 127, &[MEM + 0x100, 8]), 0);
    assert_eq!(t.u64_at(MEM + 0x100), bit(SIGUSR1));
    put_itimerspec(&t, MEM + 0x80, 0, 2 * SEC);
    assert_eq!(
        t.ret(1, nr::TIMER_SETTIME, &[id, 2, MEM + 0x80, 0]),
        Errno::EINVAL.as_return(),
        "unknown flag"
    );
    assert_eq!(
        t.ret(1, nr::TIMER_SETTIME, &[99, 0, MEM + 0x80, 0]),
        Errno::EINVAL.as_return(),
        "no such timer"
    );
}

#[test]
fn sigev_thread_id_targets_that_thread() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let c = t.spawn();
    put_sigevent(&t, MEM, 0, SIGUSR1 as i32, 4, c);
    assert_eq!(t.ret(1, nr::TIMER_CREATE, &[1, MEM, MEM + 0x40]), 0);
    let id = t.u32_at(MEM + 0x40) as u64;
    t.put(MEM + 0x100, &0u32.to_le_bytes());
    assert!(matches!(
        t.sys(c, nr::FUTEX, &[MEM + 0x100, 0, 0, 0]),
        SyscallOutcome::Block { .. }
    ));
    let now = t.fake.monotonic_ns();
    put_itimerspec(&t, MEM + 0x80, 0, 5 * MS);
    assert_eq!(t.ret(1, nr::TIMER_SETTIME, &[id, 0, MEM + 0x80, 0]), 0);
    t.p.run_timers(now + 5 * MS);
    assert_eq!(t.p.take_woken(), vec![c]);
    assert!(!t.p.signal_pending(1), "not the main thread");
    assert!(t.p.signal_pending(c));
    // Bad sigevents.
    put_sigevent(&t, MEM, 0, SIGUSR1 as i32, 4, 99);
    assert_eq!(
        t.ret(1, nr::TIMER_CREATE, &[1, MEM, MEM + 0x40]),
        Errno::EINVAL.as_return(),
        "no such thread"
    );
    put_sigevent(&t, MEM, 0, 0, 0, 0);
    assert_eq!(
        t.ret(1, nr::TIMER_CREATE, &[1, MEM, MEM + 0x40]),
        Errno::EINVAL.as_return(),
        "signal 0"
    );
    put_sigevent(&t, MEM, 0, 10, 9, 0);
    assert_eq!(
        t.ret(1, nr::TIMER_CREATE, &[1, MEM, MEM + 0x40]),
        Errno::EINVAL.as_return(),
        "unknown notify"
    );
    assert_eq!(
        t.ret(1, nr::TIMER_CREATE, &[4, 0, MEM + 0x40]),
        Errno::EOPNOTSUPP.as_return(),
        "MONOTONIC_RAW"
    );
    // SIGEV_NONE never signals; a null sigevent means SIGALRM with the id as value.
    put_sigevent(&t, MEM, 0, 0, 1, 0);
    assert_eq!(t.ret(1, nr::TIMER_CREATE, &[1, MEM, MEM + 0x40]), 0);
    let quiet = t.u32_at(MEM + 0x40) as u64;
    put_itimerspec(&t, MEM + 0x80, 0, MS);
    t.ret(1, nr::TIMER_SETTIME, &[quiet, 0, MEM + 0x80, 0]);
    t.p.run_timers(now + 10 * MS);
    assert!(!t.p.signal_pending(1));
    t.handle(14, 4, 0);
    assert_eq!(t.ret(1, nr::TIMER_CREATE, &[1, 0, MEM + 0x40]), 0);
    let dflt = t.u32_at(MEM + 0x40) as u64;
    t.ret(1, nr::TIMER_SETTIME, &[dflt, 0, MEM + 0x80, 0]);
    t.p.run_timers(now + 20 * MS);
    let f = delivered(&mut t, 1);
    assert_eq!((f.si_signo(), f.q(336)), (14, dflt));
}

#[test]
fn cpu_time_clocks_rusage_times_and_cpu_timers() {
    let mut t = setup();
    let c = t.spawn();
    // Before the kernel accounts anything, CPU clocks read the uptime.
    let up = t.fake.monotonic_ns();
    assert_eq!(t.ret(1, nr::CLOCK_GETTIME, &[2, MEM]), 0);
    assert_eq!(t.u64_at(MEM) * SEC + t.u64_at(MEM + 8), up);
    t.handle(27, 0, 0);
    // ITIMER_PROF after 6 ms of CPU time.
    t.put(
        MEM + 0x100,
        &[0u64, 0, 0, 6_000].map(u64::to_le_bytes).concat(),
    );
    t.p.account(1, 0);
    assert_eq!(t.ret(1, nr::SETITIMER, &[2, MEM + 0x100, 0]), 0);
    // A CPU-time POSIX timer on thread c: 3 ms.
    put_sigevent(&t, MEM + 0x200, 0, SIGUSR1 as i32, 4, c);
    t.handle(SIGUSR1, 0, 0);
    assert_eq!(
        t.ret(c, nr::TIMER_CREATE, &[3, MEM + 0x200, MEM + 0x240]),
        0
    );
    let id = t.u32_at(MEM + 0x240) as u64;
    put_itimerspec(&t, MEM + 0x280, 0, 3 * MS);
    assert_eq!(t.ret(c, nr::TIMER_SETTIME, &[id, 0, MEM + 0x280, 0]), 0);
    assert_eq!(t.p.next_timer(), None, "CPU timers are not wall deadlines");

    t.p.account(1, 5 * MS);
    assert!(!t.p.signal_pending(1));
    t.p.account(c, 2 * MS);
    assert!(
        t.p.signal_pending(1),
        "ITIMER_PROF: 7 ms of process CPU time"
    );
    t.p.account(c, MS);
    assert!(t.p.signal_pending(c), "thread c's 3 ms");

    assert_eq!(t.ret(1, nr::CLOCK_GETTIME, &[2, MEM]), 0);
    assert_eq!(
        (t.u64_at(MEM), t.u64_at(MEM + 8)),
        (0, 8 * MS),
        "CLOCK_PROCESS_CPUTIME_ID"
    );
    assert_eq!(t.ret(c, nr::CLOCK_GETTIME, &[3, MEM]), 0);
    assert_eq!(t.u64_at(MEM + 8), 3 * MS, "CLOCK_THREAD_CPUTIME_ID");
    assert_eq!(t.ret(1, nr::GETRUSAGE, &[0, MEM]), 0);
    assert_eq!(
        (t.u64_at(MEM), t.u64_at(MEM + 8)),
        (0, 8_000),
        "ru_utime of the process (usec)"
    );
    assert_eq!(t.ret(1, nr::GETRUSAGE, &[1, MEM]), 0);
    assert_eq!(t.u64_at(MEM + 8), 5_000, "RUSAGE_THREAD");
    t.p.account(1, 2 * SEC);
    t.fake.now_ns.set(30 * SEC);
    assert_eq!(
        t.ret(1, nr::TIMES, &[MEM]),
        3000,
        "elapsed ticks since boot"
    );
    assert_eq!(
        t.u64_at(MEM),
        200,
        "tms_utime: 2.008 s of CPU in 100 Hz ticks"
    );
}
