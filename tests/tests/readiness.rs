//! Readiness (issue 5, item 3): poll, ppoll, select, pselect and epoll over pipes, eventfd and
//! timerfd, as one C program (`tests/c/poll_epoll.c`) checked by exact stdout, natively and
//! under Kiln, built with musl and with glibc.

use kiln_tests::{Case, Expect, Flavour, RunOpts};

const POLL_EPOLL: Case = Case {
    prog: "poll_epoll",
    args: &[],
    env: &[],
    stdout: Expect::Exact(
        "poll: empty=0 write_end=1/1 woken=1/1 timeout=0 waited=1 hup=1 nval=1\n\
         select: ready=1 only_write=1 timerfd=1 time_left=1 timeout=0 cleared=1 pselect=1 \
         ebadf=1\n\
         epoll: level=1/1 data=1 edge=1/0/1/0 oneshot=1/0/1 hup=1\n\
         wakeups: eventfd=1 drained=1 timeout=0 waited=1 timerfd=1 nested=1 epoll_pollable=1\n\
         ctl: eexist=1 enoent=1 eperm=1 self=1 not_epoll=1 eloop=1 ebadf=1 exclusive=1/1 \
         maxevents=1 create0=1\n\
         signals: poll=1 epoll_wait=1 select=1 pending=1 ppoll=1 epoll_pwait=1 mask_back=1 \
         handled=5\n",
    ),
    status: 0,
};

#[test]
fn native_musl() {
    POLL_EPOLL.assert_native(Flavour::MuslStatic);
}

#[test]
fn native_glibc() {
    POLL_EPOLL.assert_native(Flavour::GlibcStatic);
}

#[test]
fn poll_epoll_musl() {
    POLL_EPOLL.assert_kiln(Flavour::MuslStatic, &RunOpts::default());
}

#[test]
fn poll_epoll_glibc() {
    POLL_EPOLL.assert_kiln(Flavour::GlibcStatic, &RunOpts::default());
}
