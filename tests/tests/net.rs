//! Networking inside one guest (issue 5): `tests/c/net_loopback.c` over 127.0.0.1 and ::1,
//! one sub-test per boot: TCP echo with threads (every byte checked), 200 connections at
//! once, UDP round trips, connection refused (blocking and non-blocking), AF_UNIX, and an
//! edge-triggered epoll echo server with 20 client threads.
//!
//! Every case runs natively first (`native_*`): a case failing there is a broken test
//! program. Test names: `<sub-test>_<flavour>`.

use kiln_tests::{Case, Expect, Flavour, RunOpts};

const fn case(args: &'static [&'static str], stdout: &'static str) -> Case {
    Case { prog: "net_loopback", args, env: &[], stdout: Expect::Exact(stdout), status: 0 }
}

const TCP4: Case = case(&["tcp4"], "tcp4: connections=8 bytes=524288 ok\n");
const TCP6: Case = case(&["tcp6"], "tcp6: connections=8 bytes=524288 ok\n");
const MANY: Case = case(&["many"], "many: connections=200 ok\n");
const UDP: Case = case(&["udp"], "udp: roundtrips=100 ok\n");
const REFUSED: Case = case(&["refused"], "refused: blocking=ECONNREFUSED nonblocking=EINPROGRESS so_error=ECONNREFUSED\n");
const UNIX: Case = case(&["unix"], "unix: ok\n");
const EPOLL: Case = case(&["epoll"], "epoll: connections=20 accepted=20 ok\n");
const TIMEO: Case = case(&["timeo"], "timeo: ok\n");

#[test]
fn native_cases() {
    for c in [TCP4, TCP6, MANY, UDP, REFUSED, UNIX, EPOLL, TIMEO] {
        c.assert_native(Flavour::MuslStatic);
    }
}

fn kiln(c: Case, flavour: Flavour) {
    c.assert_kiln(flavour, &RunOpts::default());
}

#[test]
fn tcp4_musl() {
    kiln(TCP4, Flavour::MuslStatic);
}

#[test]
fn tcp4_glibc() {
    kiln(TCP4, Flavour::GlibcStatic);
}

#[test]
fn tcp6_musl() {
    kiln(TCP6, Flavour::MuslStatic);
}

#[test]
fn many_musl() {
    kiln(MANY, Flavour::MuslStatic);
}

#[test]
fn udp_musl() {
    kiln(UDP, Flavour::MuslStatic);
}

#[test]
fn refused_musl() {
    kiln(REFUSED, Flavour::MuslStatic);
}

#[test]
fn unix_musl() {
    kiln(UNIX, Flavour::MuslStatic);
}

#[test]
fn epoll_musl() {
    kiln(EPOLL, Flavour::MuslStatic);
}

#[test]
fn epoll_glibc() {
    kiln(EPOLL, Flavour::GlibcStatic);
}

#[test]
fn timeo_musl() {
    kiln(TIMEO, Flavour::MuslStatic);
}

#[test]
fn timeo_glibc() {
    kiln(TIMEO, Flavour::GlibcStatic);
}

/// getaddrinfo through the libc's own DNS resolver: `tests/c/dns_resolve.c` serves DNS on
/// 127.0.0.1:53 from a thread, points /etc/resolv.conf at it and resolves a name (musl's and
/// glibc's resolvers over UDP), plus localhost from /etc/hosts and a name that does not
/// exist. Not run natively: it binds port 53 and rewrites /etc/resolv.conf.
const DNS: Case = Case {
    prog: "dns_resolve",
    args: &["local"],
    env: &[],
    stdout: Expect::Exact("localhost -> 127.0.0.1\nwww.kiln.test -> 10.1.2.3\nmissing.example -> EAI_NONAME\n"),
    status: 0,
};

#[test]
fn dns_getaddrinfo_musl() {
    kiln(DNS, Flavour::MuslStatic);
}

#[test]
fn dns_getaddrinfo_glibc() {
    kiln(DNS, Flavour::GlibcStatic);
}
