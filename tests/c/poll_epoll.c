/* Readiness: poll, ppoll, select, pselect and epoll over pipes, eventfd and timerfd;
 * blocking wakeups from another thread, timeouts, timerfd expiry, EINTR from a signal
 * handler, temporary signal masks, edge triggering after a partial read, one-shot rearm,
 * nested epoll and epoll_ctl errors. One line per part; the same output natively and in
 * Kiln. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    printf("FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A thread that writes `len` bytes of `what` to `fd` after `delay_ms`. */
struct later {
    int fd;
    int delay_ms;
    const void *what;
    size_t len;
};

static void *write_later(void *arg) {
    struct later *l = arg;
    sleep_ms(l->delay_ms);
    if (write(l->fd, l->what, l->len) != (ssize_t)l->len) die("write_later");
    return NULL;
}

static pthread_t start_writer(struct later *l) {
    pthread_t t;
    if (pthread_create(&t, NULL, write_later, l) != 0) die("pthread_create");
    return t;
}

static int timerfd_in_ms(int ms) {
    int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (tf < 0) die("timerfd_create");
    struct itimerspec its = {{0, 0}, {ms / 1000, (ms % 1000) * 1000000L}};
    if (timerfd_settime(tf, 0, &its, NULL) != 0) die("timerfd_settime");
    return tf;
}

static void part_poll(void) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) die("pipe2");
    struct pollfd fds[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {-1, POLLIN, 0}};
    int empty = poll(fds, 1, 0);
    int both = poll(fds, 3, 0); /* only the write end */
    int wr = fds[1].revents == POLLOUT;
    /* Blocking, woken by a write from another thread. */
    struct later l = {p[1], 20, "abc", 3};
    pthread_t t = start_writer(&l);
    int woke = poll(fds, 1, -1);
    pthread_join(t, NULL);
    int in = fds[0].revents == POLLIN;
    char buf[8];
    if (read(p[0], buf, sizeof buf) != 3) die("read");
    /* Timeout. */
    long long t0 = now_ms();
    int timed = poll(fds, 1, 30);
    int waited = now_ms() - t0 >= 29;
    /* Hangup and an invalid fd. */
    close(p[1]);
    int bad = dup(0);
    close(bad);
    struct pollfd h[2] = {{p[0], POLLIN, 0}, {bad, POLLIN, 0}};
    int hn = poll(h, 2, 0);
    printf("poll: empty=%d write_end=%d/%d woken=%d/%d timeout=%d waited=%d hup=%d nval=%d\n",
           empty, both, wr, woke, in, timed, waited, hn == 2 && (h[0].revents & POLLHUP),
           h[1].revents == POLLNVAL);
    close(p[0]);
}

static void part_select(void) {
    int p[2];
    if (pipe(p) != 0) die("pipe");
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timeval zero = {0, 0};
    int n0 = select(p[1] + 1, &r, &w, NULL, &zero);
    int only_w = !FD_ISSET(p[0], &r) && FD_ISSET(p[1], &w);
    /* A timerfd that expires in 20 ms, select with 1 s: returns early with time left. */
    int tf = timerfd_in_ms(20);
    FD_ZERO(&r);
    FD_SET(tf, &r);
    /* The raw syscall: musl's select passes a copy of the timeval, so only the kernel's
     * write-back is seen this way. */
    struct timeval tv = {1, 0};
    int n1 = syscall(SYS_select, tf + 1, &r, NULL, NULL, &tv);
    int left_ok = tv.tv_sec == 0 && tv.tv_usec > 0 && tv.tv_usec < 1000000 - 15000;
    /* Times out: 0, empty sets, the timeval zeroed. */
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 0;
    tv.tv_usec = 25000;
    int n2 = syscall(SYS_select, p[0] + 1, &r, NULL, NULL, &tv);
    int cleared = !FD_ISSET(p[0], &r) && tv.tv_sec == 0 && tv.tv_usec == 0;
    /* pselect with a timespec, woken by a write. */
    struct later l = {p[1], 20, "x", 1};
    pthread_t t = start_writer(&l);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct timespec ts = {5, 0};
    int n3 = pselect(p[0] + 1, &r, NULL, NULL, &ts, NULL);
    pthread_join(t, NULL);
    /* A closed fd in a set: EBADF. */
    int bad = dup(0);
    close(bad);
    FD_ZERO(&r);
    FD_SET(bad, &r);
    int e = select(bad + 1, &r, NULL, NULL, &zero) == -1 && errno == EBADF;
    printf("select: ready=%d only_write=%d timerfd=%d time_left=%d timeout=%d cleared=%d "
           "pselect=%d ebadf=%d\n",
           n0, only_w, n1, left_ok, n2, cleared, n3, e);
    close(tf);
    close(p[0]);
    close(p[1]);
}

static int ep_wait(int ep, struct epoll_event *ev, int max, int ms) {
    int n = epoll_wait(ep, ev, max, ms);
    if (n < 0) die("epoll_wait");
    return n;
}

static void part_epoll_triggers(void) {
    int p[2];
    if (pipe2(p, O_NONBLOCK) != 0) die("pipe2");
    int lt = epoll_create1(EPOLL_CLOEXEC), et = epoll_create1(0);
    if (lt < 0 || et < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1111222233334444ULL};
    if (epoll_ctl(lt, EPOLL_CTL_ADD, p[0], &ev) != 0) die("ctl lt");
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = 7;
    if (epoll_ctl(et, EPOLL_CTL_ADD, p[0], &ev) != 0) die("ctl et");
    struct epoll_event out[4];
    if (write(p[1], "0123456789", 10) != 10) die("write");
    int l1 = ep_wait(lt, out, 4, 0);
    int data_ok = l1 == 1 && out[0].data.u64 == 0x1111222233334444ULL && out[0].events == EPOLLIN;
    int e1 = ep_wait(et, out, 4, 0);
    char buf[16];
    if (read(p[0], buf, 3) != 3) die("read");
    int l2 = ep_wait(lt, out, 4, 0);
    int e2 = ep_wait(et, out, 4, 0); /* partial read: no new edge */
    if (write(p[1], "x", 1) != 1) die("write");
    int e3 = ep_wait(et, out, 4, 0); /* new data: an edge */
    int e4 = ep_wait(et, out, 4, 0);
    /* One-shot: once, then nothing until EPOLL_CTL_MOD. */
    int os = epoll_create1(0);
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = 9;
    if (epoll_ctl(os, EPOLL_CTL_ADD, p[0], &ev) != 0) die("ctl oneshot");
    int o1 = ep_wait(os, out, 4, 0);
    int o2 = ep_wait(os, out, 4, 0);
    if (epoll_ctl(os, EPOLL_CTL_MOD, p[0], &ev) != 0) die("ctl mod");
    int o3 = ep_wait(os, out, 4, 0);
    /* Hangup is reported without being asked for. */
    close(p[1]);
    while (read(p[0], buf, sizeof buf) > 0) {
    }
    ev.events = 0;
    ev.data.u64 = 5;
    if (epoll_ctl(os, EPOLL_CTL_MOD, p[0], &ev) != 0) die("ctl mod 0");
    int h = ep_wait(os, out, 4, 0) == 1 && out[0].events == EPOLLHUP;
    printf("epoll: level=%d/%d data=%d edge=%d/%d/%d/%d oneshot=%d/%d/%d hup=%d\n", l1, l2,
           data_ok, e1, e2, e3, e4, o1, o2, o3, h);
    close(lt);
    close(et);
    close(os);
    close(p[0]);
}

static void part_epoll_wakeups(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep < 0 || efd < 0) die("create");
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1}, out[4];
    if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) die("ctl efd");
    /* As Go's netpoll: sleep in epoll_pwait(-1), woken by an eventfd write. */
    uint64_t one = 1;
    struct later l = {efd, 20, &one, 8};
    pthread_t t = start_writer(&l);
    int n1 = epoll_pwait(ep, out, 4, -1, NULL);
    pthread_join(t, NULL);
    uint64_t v = 0;
    int drained = read(efd, &v, 8) == 8 && v == 1 && read(efd, &v, 8) == -1 && errno == EAGAIN;
    /* Timeout with nothing ready. */
    long long t0 = now_ms();
    int n2 = epoll_wait(ep, out, 4, 30);
    int waited = now_ms() - t0 >= 29;
    /* A timerfd: epoll_wait returns at its expiry. */
    int tf = timerfd_in_ms(25);
    ev.data.u32 = 2;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tf, &ev) != 0) die("ctl tf");
    t0 = now_ms();
    int n3 = epoll_wait(ep, out, 4, 5000);
    int tf_ok = n3 == 1 && out[0].data.u32 == 2 && now_ms() - t0 < 4000;
    uint64_t exp = 0;
    if (read(tf, &exp, 8) != 8 || exp != 1) die("read timerfd");
    /* Nested: an outer epoll watching this one wakes for a pipe write. */
    int p[2];
    if (pipe(p) != 0) die("pipe");
    ev.data.u32 = 3;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0) die("ctl pipe");
    int outer = epoll_create(1);
    ev.data.u32 = 4;
    if (epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev) != 0) die("ctl nested");
    struct later l2 = {p[1], 20, "z", 1};
    t = start_writer(&l2);
    int n4 = epoll_wait(outer, out, 4, -1);
    pthread_join(t, NULL);
    int nested_ok = n4 == 1 && out[0].data.u32 == 4;
    struct pollfd pf = {ep, POLLIN, 0};
    int pollable = poll(&pf, 1, 0) == 1 && pf.revents == POLLIN;
    printf("wakeups: eventfd=%d drained=%d timeout=%d waited=%d timerfd=%d nested=%d "
           "epoll_pollable=%d\n",
           n1, drained, n2, waited, tf_ok, nested_ok, pollable);
    close(outer);
    close(ep);
    close(efd);
    close(tf);
    close(p[0]);
    close(p[1]);
}

static void part_ctl_errors(void) {
    int ep = epoll_create1(0), ep2 = epoll_create1(0);
    int p[2];
    if (pipe(p) != 0) die("pipe");
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    int eexist = epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) == -1 && errno == EEXIST;
    int enoent = epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev) == -1 && errno == ENOENT;
    int null = open("/dev/null", O_RDONLY);
    int eperm = epoll_ctl(ep, EPOLL_CTL_ADD, null, &ev) == -1 && errno == EPERM;
    int self = epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev) == -1 && errno == EINVAL;
    int notep = epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev) == -1 && errno == EINVAL;
    epoll_ctl(ep2, EPOLL_CTL_ADD, ep, &ev);
    int eloop = epoll_ctl(ep, EPOLL_CTL_ADD, ep2, &ev) == -1 && errno == ELOOP;
    int ebadf = epoll_ctl(ep, EPOLL_CTL_DEL, 999, &ev) == -1 && errno == EBADF;
    ev.events = EPOLLOUT | EPOLLEXCLUSIVE;
    int excl = epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev) == 0;
    int excl_mod = epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev) == -1 && errno == EINVAL;
    int badmax = epoll_wait(ep, &ev, 0, 0) == -1 && errno == EINVAL;
    /* Raw: musl's epoll_create does not pass size to the kernel. */
    int badcreate = syscall(SYS_epoll_create, 0) == -1 && errno == EINVAL;
    printf("ctl: eexist=%d enoent=%d eperm=%d self=%d not_epoll=%d eloop=%d ebadf=%d "
           "exclusive=%d/%d maxevents=%d create0=%d\n",
           eexist, enoent, eperm, self, notep, eloop, ebadf, excl, excl_mod, badmax, badcreate);
    close(null);
    close(ep);
    close(ep2);
    close(p[0]);
    close(p[1]);
}

static volatile sig_atomic_t handled;

static void on_signal(int sig) {
    (void)sig;
    handled++;
}

static void arm_alarm_ms(int ms) {
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) die("setitimer");
}

static void part_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: these calls never restart after a handler */
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int p[2];
    if (pipe(p) != 0) die("pipe");
    struct pollfd pf = {p[0], POLLIN, 0};
    arm_alarm_ms(20);
    int poll_eintr = poll(&pf, 1, -1) == -1 && errno == EINTR;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    arm_alarm_ms(20);
    int epoll_eintr = epoll_wait(ep, &out, 1, 5000) == -1 && errno == EINTR;
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    arm_alarm_ms(20);
    int select_eintr = select(p[0] + 1, &r, NULL, NULL, NULL) == -1 && errno == EINTR;
    /* ppoll / epoll_pwait: SIGUSR1 blocked and pending; the temporary empty mask lets it
     * in (EINTR after the handler), and the old mask is back afterwards. */
    sigset_t block, empty, now;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &block, NULL);
    int before = handled;
    raise(SIGUSR1);
    int still_pending = handled == before;
    struct timespec ts = {5, 0};
    int ppoll_eintr = ppoll(&pf, 1, &ts, &empty) == -1 && errno == EINTR;
    sigprocmask(SIG_BLOCK, NULL, &now);
    int mask_back = sigismember(&now, SIGUSR1);
    raise(SIGUSR1);
    int pwait_eintr = epoll_pwait(ep, &out, 1, 5000, &empty) == -1 && errno == EINTR;
    sigprocmask(SIG_BLOCK, NULL, &now);
    mask_back = mask_back && sigismember(&now, SIGUSR1);
    printf("signals: poll=%d epoll_wait=%d select=%d pending=%d ppoll=%d epoll_pwait=%d "
           "mask_back=%d handled=%d\n",
           poll_eintr, epoll_eintr, select_eintr, still_pending, ppoll_eintr, pwait_eintr,
           mask_back, (int)handled);
    close(ep);
    close(p[0]);
    close(p[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    part_poll();
    part_select();
    part_epoll_triggers();
    part_epoll_wakeups();
    part_ctl_errors();
    part_signals();
    return 0;
}
