/*
 * Signals and timers as real programs use them. `signals_posix NAME` runs one sub-test and
 * prints its lines; without an argument every sub-test that returns runs in order (not
 * `abort`, `sigterm`). Every line is exact (no timings, no addresses) so the integration tests
 * compare stdout byte for byte. A failed check prints "FAIL <test>:<line>: <what>", exits 1.
 *
 * Sub-tests: handler siginfo flags altstack mask sigsuspend sigsuspend_thread thread_kill
 *            segv fpe alarm itimer timer timer_thread_id eintr_sleep eintr_read
 *            restart_futex sigtimedwait | abort sigterm (these end the process)
 */
#define _GNU_SOURCE
#include <errno.h>
/* musl-gcc has no kernel headers: the futex ABI numbers. */
#define FUTEX_WAIT_PRIVATE (0 | 128)
#define FUTEX_WAKE_PRIVATE (1 | 128)
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL %s:%d: ", __func__, __LINE__);                                      \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
            fflush(stdout);                                                                  \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static const char *code_name(int code)
{
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TIMER: return "SI_TIMER";
    case SI_TKILL: return "SI_TKILL";
    case SI_KERNEL: return "SI_KERNEL";
    default: return "other";
    }
}

static void install(int sig, void (*h)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction(%d): %s", sig, strerror(errno));
}

static void install_info(int sig, void (*h)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = flags | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction(%d): %s", sig, strerror(errno));
}

static void block(int sig, int how)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    CHECK(pthread_sigmask(how, &s, NULL) == 0, "sigmask");
}

static int is_blocked(int sig)
{
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig);
}

static volatile sig_atomic_t hits;
static volatile pid_t hit_tid;
static void count_handler(int sig)
{
    (void)sig;
    hits++;
    hit_tid = gettid_();
}

/* ---- handler: raise, kill, pthread_kill -------------------------------------------------- */
static void t_handler(void)
{
    install(SIGUSR1, count_handler, 0);
    hits = 0;
    CHECK(raise(SIGUSR1) == 0, "raise");
    int after_raise = hits;
    CHECK(kill(getpid(), SIGUSR1) == 0, "kill: %s", strerror(errno));
    int after_kill = hits;
    CHECK(pthread_kill(pthread_self(), SIGUSR1) == 0, "pthread_kill");
    int after_pthread_kill = hits;
    /* SIG_IGN: nothing runs, nothing stays pending. */
    install(SIGUSR1, SIG_IGN, 0);
    raise(SIGUSR1);
    sigset_t p;
    sigpending(&p);
    CHECK(!sigismember(&p, SIGUSR1), "ignored signal left pending");
    printf("handler: raise=%d kill=%d pthread_kill=%d ignored=%d\n", after_raise, after_kill,
           after_pthread_kill, hits);
}

/* ---- siginfo: si_signo, si_code, si_pid, si_value ---------------------------------------- */
static volatile int info_signo, info_code, info_pid, info_value;
static void info_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    info_signo = si->si_signo;
    info_code = si->si_code;
    info_pid = si->si_pid;
    info_value = si->si_value.sival_int;
}

static void t_siginfo(void)
{
    install_info(SIGUSR1, info_handler, 0);
    install_info(SIGUSR2, info_handler, 0);
    install_info(SIGRTMIN + 2, info_handler, 0);
    raise(SIGUSR1);
    printf("siginfo: raise signo=%d code=%s pid_is_self=%d\n", info_signo, code_name(info_code),
           info_pid == getpid());
    kill(getpid(), SIGUSR1);
    printf("siginfo: kill signo=%d code=%s pid_is_self=%d\n", info_signo, code_name(info_code),
           info_pid == getpid());
    union sigval v = {.sival_int = 42};
    CHECK(sigqueue(getpid(), SIGUSR2, v) == 0, "sigqueue: %s", strerror(errno));
    printf("siginfo: sigqueue signo=%d code=%s value=%d\n", info_signo, code_name(info_code),
           info_value);
    v.sival_int = 4242;
    CHECK(sigqueue(getpid(), SIGRTMIN + 2, v) == 0, "sigqueue rt: %s", strerror(errno));
    printf("siginfo: sigqueue rt=SIGRTMIN+%d code=%s value=%d\n", info_signo - SIGRTMIN,
           code_name(info_code), info_value);
}

/* ---- flags: handler mask, SA_NODEFER, SA_RESETHAND, sa_mask ------------------------------ */
static volatile int mask_self, mask_other, nodefer_self, resethand_runs;
static void mask_handler(int sig)
{
    mask_self = is_blocked(sig);
    mask_other = is_blocked(SIGUSR2);
}
static void nodefer_handler(int sig) { nodefer_self = is_blocked(sig); }
static void resethand_handler(int sig)
{
    (void)sig;
    resethand_runs++;
}

static void t_flags(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mask_handler;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
    raise(SIGUSR1);
    int restored = !is_blocked(SIGUSR1) && !is_blocked(SIGUSR2);
    printf("flags: in_handler self_blocked=%d sa_mask_blocked=%d restored=%d\n", mask_self,
           mask_other, restored);
    install(SIGUSR1, nodefer_handler, SA_NODEFER);
    nodefer_self = -1;
    raise(SIGUSR1);
    printf("flags: SA_NODEFER self_blocked=%d\n", nodefer_self);
    install(SIGUSR2, resethand_handler, SA_RESETHAND);
    raise(SIGUSR2);
    struct sigaction now;
    sigaction(SIGUSR2, NULL, &now);
    printf("flags: SA_RESETHAND runs=%d now_default=%d\n", resethand_runs,
           now.sa_handler == SIG_DFL);
}

/* ---- altstack: SA_ONSTACK handlers run on the alternate stack ---------------------------- */
#define ALT_SIZE (64 * 1024)
static char *alt_base;
static volatile int alt_on, alt_flag_onstack;
static void alt_handler(int sig)
{
    (void)sig;
    char local;
    stack_t cur;
    alt_on = (uintptr_t)&local >= (uintptr_t)alt_base &&
             (uintptr_t)&local < (uintptr_t)alt_base + ALT_SIZE;
    sigaltstack(NULL, &cur);
    alt_flag_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
}

static void t_altstack(void)
{
    alt_base = malloc(ALT_SIZE);
    stack_t ss = {.ss_sp = alt_base, .ss_size = ALT_SIZE, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack: %s", strerror(errno));
    stack_t back;
    CHECK(sigaltstack(NULL, &back) == 0 && back.ss_sp == alt_base && back.ss_size == ALT_SIZE,
          "sigaltstack readback");
    install(SIGUSR1, alt_handler, SA_ONSTACK);
    raise(SIGUSR1);
    printf("altstack: SA_ONSTACK on_alt=%d ss_onstack=%d\n", alt_on, alt_flag_onstack);
    install(SIGUSR1, alt_handler, 0);
    raise(SIGUSR1);
    printf("altstack: without SA_ONSTACK on_alt=%d ss_onstack=%d\n", alt_on, alt_flag_onstack);
    stack_t off = {.ss_flags = SS_DISABLE};
    CHECK(sigaltstack(&off, NULL) == 0, "SS_DISABLE");
}

/* ---- mask: blocked stays pending, delivered on unblock; standard coalesce, RT queue ------- */
static volatile int rt_hits;
static void rt_handler(int sig)
{
    (void)sig;
    rt_hits++;
}

static void t_mask(void)
{
    install(SIGUSR1, count_handler, 0);
    install(SIGRTMIN + 1, rt_handler, 0);
    hits = 0;
    block(SIGUSR1, SIG_BLOCK);
    block(SIGRTMIN + 1, SIG_BLOCK);
    raise(SIGUSR1);
    raise(SIGUSR1);
    raise(SIGRTMIN + 1);
    raise(SIGRTMIN + 1);
    sigset_t p;
    CHECK(sigpending(&p) == 0, "sigpending: %s", strerror(errno));
    int pend = sigismember(&p, SIGUSR1) && sigismember(&p, SIGRTMIN + 1);
    int before = hits + rt_hits;
    block(SIGUSR1, SIG_UNBLOCK);
    int after = hits;
    block(SIGRTMIN + 1, SIG_UNBLOCK);
    sigpending(&p);
    int pend_after = sigismember(&p, SIGUSR1) || sigismember(&p, SIGRTMIN + 1);
    printf("mask: pending=%d before_unblock=%d after_unblock=%d std_coalesced=%d rt_queued=%d "
           "pending_after=%d\n",
           pend, before, after, hits, rt_hits, pend_after);
}

/* ---- sigsuspend: with a pending signal, and woken by another thread ----------------------- */
static void t_sigsuspend(void)
{
    install(SIGUSR1, count_handler, 0);
    hits = 0;
    block(SIGUSR1, SIG_BLOCK);
    raise(SIGUSR1);
    sigset_t none;
    sigemptyset(&none);
    int rc = sigsuspend(&none);
    int e = errno;
    printf("sigsuspend: ret=%d errno=%s handled=%d still_blocked=%d\n", rc,
           e == EINTR ? "EINTR" : strerror(e), hits, is_blocked(SIGUSR1));
    block(SIGUSR1, SIG_UNBLOCK);
}

static pthread_t main_thread;
static void *kill_main_later(void *arg)
{
    sleep_ms((intptr_t)arg);
    pthread_kill(main_thread, SIGUSR1);
    return NULL;
}

static void t_sigsuspend_thread(void)
{
    install(SIGUSR1, count_handler, 0);
    hits = 0;
    block(SIGUSR1, SIG_BLOCK);
    main_thread = pthread_self();
    pthread_t th;
    CHECK(pthread_create(&th, NULL, kill_main_later, (void *)(intptr_t)50) == 0, "create");
    sigset_t none;
    sigemptyset(&none);
    int rc = sigsuspend(&none);
    int e = errno;
    pthread_join(th, NULL);
    printf("sigsuspend_thread: ret=%d errno=%s handled=%d in_main=%d\n", rc,
           e == EINTR ? "EINTR" : strerror(e), hits, hit_tid == getpid());
    block(SIGUSR1, SIG_UNBLOCK);
}

/* ---- thread_kill: thread-directed and process-directed signals, per-thread masks --------- */
static volatile int tk_ready, tk_stop;
static volatile pid_t tk_tid;
static void *tk_worker(void *arg)
{
    (void)arg;
    tk_tid = gettid_();
    tk_ready = 1;
    while (!tk_stop)
        sleep_ms(5);
    return NULL;
}

static void t_thread_kill(void)
{
    install(SIGUSR1, count_handler, 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, tk_worker, NULL) == 0, "create");
    while (!tk_ready)
        sleep_ms(1);
    hits = 0;
    pthread_kill(th, SIGUSR1);
    while (hits < 1)
        sleep_ms(1);
    int in_target = hit_tid == tk_tid;
    /* Process-directed, main blocks it: only the worker can take it. */
    block(SIGUSR1, SIG_BLOCK);
    kill(getpid(), SIGUSR1);
    while (hits < 2)
        sleep_ms(1);
    int in_unblocked = hit_tid == tk_tid;
    block(SIGUSR1, SIG_UNBLOCK);
    tk_stop = 1;
    pthread_join(th, NULL);
    printf("thread_kill: pthread_kill_in_target=%d kill_in_unblocked_thread=%d hits=%d\n",
           in_target, in_unblocked, hits);
}

/* ---- segv: handler recovers with siglongjmp, si_addr and si_code ------------------------- */
static sigjmp_buf jb;
static volatile uintptr_t fault_addr;
static volatile int fault_code, fault_signo;
static void fault_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    fault_signo = sig;
    fault_addr = (uintptr_t)si->si_addr;
    fault_code = si->si_code;
    siglongjmp(jb, 1);
}

static void t_segv(void)
{
    install_info(SIGSEGV, fault_handler, 0);
    int recovered = 0;
    if (sigsetjmp(jb, 1) == 0) {
        volatile int *volatile low = (volatile int *)0x10;
        *low = 1;
        CHECK(0, "write to 0x10 did not fault");
    } else {
        recovered++;
        printf("segv: unmapped addr=%#lx code=%s\n", (unsigned long)fault_addr,
               fault_code == SEGV_MAPERR ? "SEGV_MAPERR" : "other");
    }
    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED, "mmap");
    if (sigsetjmp(jb, 1) == 0) {
        page[8] = 1;
        CHECK(0, "write to a read-only page did not fault");
    } else {
        recovered++;
        printf("segv: read-only addr=page+%ld code=%s\n", (long)(fault_addr - (uintptr_t)page),
               fault_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other");
    }
    printf("segv: recovered=%d segv_unblocked=%d\n", recovered, !is_blocked(SIGSEGV));
}

/* ---- fpe: integer divide by zero caught --------------------------------------------------- */
static void t_fpe(void)
{
    install_info(SIGFPE, fault_handler, 0);
    volatile int zero = 0, x = 7;
    if (sigsetjmp(jb, 1) == 0) {
        x = x / zero;
        CHECK(0, "division by zero did not trap");
    }
    printf("fpe: signo=%d code=%s recovered=1\n", fault_signo,
           fault_code == FPE_INTDIV ? "FPE_INTDIV" : "other");
}

/* ---- alarm, itimer, timer_create ---------------------------------------------------------- */
static volatile int alrm_hits;
static void alrm_handler(int sig)
{
    (void)sig;
    alrm_hits++;
}

static void wait_for(volatile int *counter, int n, int sig)
{
    sigset_t old, blk;
    sigemptyset(&blk);
    sigaddset(&blk, sig);
    pthread_sigmask(SIG_BLOCK, &blk, &old);
    while (*counter < n)
        sigsuspend(&old);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void t_alarm(void)
{
    install(SIGALRM, alrm_handler, 0);
    unsigned prev0 = alarm(10);
    unsigned prev = alarm(0);
    int64_t t0 = now_ms();
    alarm(1);
    wait_for(&alrm_hits, 1, SIGALRM);
    int64_t took = now_ms() - t0;
    CHECK(took >= 900 && took < 20000, "alarm(1) fired after %lld ms", (long long)took);
    printf("alarm: first=%u previous=%u fired=%d\n", prev0, prev, alrm_hits);
}

static void t_itimer(void)
{
    install(SIGALRM, alrm_handler, 0);
    struct itimerval it = {{0, 20000}, {0, 20000}}, cur;
    int64_t t0 = now_ms();
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
    CHECK(getitimer(ITIMER_REAL, &cur) == 0, "getitimer");
    int armed = cur.it_interval.tv_usec == 20000 &&
                (cur.it_value.tv_sec > 0 || cur.it_value.tv_usec > 0);
    wait_for(&alrm_hits, 5, SIGALRM);
    int64_t took = now_ms() - t0;
    struct itimerval zero = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &zero, NULL);
    getitimer(ITIMER_REAL, &cur);
    int disarmed = cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0;
    CHECK(took >= 95, "5 ticks of 20 ms in %lld ms", (long long)took);
    int n = alrm_hits;
    sleep_ms(60);
    printf("itimer: armed=%d ticks>=5:%d disarmed=%d stopped=%d\n", armed, n >= 5, disarmed,
           alrm_hits == n);
}

static volatile int tm_hits, tm_code, tm_value;
static volatile pid_t tm_tid;
static void tm_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    tm_hits++;
    tm_code = si->si_code;
    tm_value = si->si_value.sival_int;
    tm_tid = gettid_();
}

static void t_timer(void)
{
    install_info(SIGUSR2, tm_handler, 0);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR2;
    sev.sigev_value.sival_int = 77;
    timer_t t;
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create: %s", strerror(errno));
    struct itimerspec its = {{0, 10000000}, {0, 10000000}}, cur;
    CHECK(timer_settime(t, 0, &its, NULL) == 0, "timer_settime: %s", strerror(errno));
    wait_for(&tm_hits, 3, SIGUSR2);
    CHECK(timer_gettime(t, &cur) == 0, "timer_gettime");
    int periodic = cur.it_interval.tv_nsec == 10000000;
    CHECK(timer_getoverrun(t) >= 0, "timer_getoverrun");
    CHECK(timer_delete(t) == 0, "timer_delete");
    int n = tm_hits, v1 = tm_value, c1 = tm_code;
    sleep_ms(50);
    int stopped = tm_hits == n;
    /* A one-shot on CLOCK_REALTIME with an absolute time. */
    timer_t t2;
    sev.sigev_value.sival_int = 78;
    CHECK(timer_create(CLOCK_REALTIME, &sev, &t2) == 0, "timer_create realtime");
    struct itimerspec abs = {{0, 0}, {0, 0}};
    clock_gettime(CLOCK_REALTIME, &abs.it_value);
    abs.it_value.tv_nsec += 20000000;
    if (abs.it_value.tv_nsec >= 1000000000) {
        abs.it_value.tv_sec++;
        abs.it_value.tv_nsec -= 1000000000;
    }
    tm_hits = 0;
    CHECK(timer_settime(t2, TIMER_ABSTIME, &abs, NULL) == 0, "timer_settime abs");
    wait_for(&tm_hits, 1, SIGUSR2);
    timer_delete(t2);
    printf("timer: ticks>=3:%d periodic=%d code=%s value=%d stopped_after_delete=%d "
           "abstime_value=%d\n",
           n >= 3, periodic, code_name(c1), v1, stopped, tm_value);
}

static volatile int tid_ready, tid_stop;
static volatile pid_t tid_worker_tid;
static void *tid_worker(void *arg)
{
    (void)arg;
    tid_worker_tid = gettid_();
    block(SIGUSR2, SIG_UNBLOCK);
    tid_ready = 1;
    while (!tid_stop)
        sleep_ms(2);
    return NULL;
}

static void t_timer_thread_id(void)
{
    install_info(SIGUSR2, tm_handler, 0);
    block(SIGUSR2, SIG_BLOCK); /* main never takes it; the worker unblocks it */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, tid_worker, NULL) == 0, "create");
    while (!tid_ready)
        sleep_ms(1);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGUSR2;
    sev.sigev_value.sival_int = 99;
    sev.sigev_notify_thread_id = tid_worker_tid;
    timer_t t;
    CHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create: %s", strerror(errno));
    struct itimerspec its = {{0, 10000000}, {0, 10000000}};
    tm_hits = 0;
    CHECK(timer_settime(t, 0, &its, NULL) == 0, "timer_settime");
    while (tm_hits < 3)
        sleep_ms(2);
    timer_delete(t);
    tid_stop = 1;
    pthread_join(th, NULL);
    printf("timer_thread_id: ticks>=3:1 in_target=%d code=%s value=%d\n",
           tm_tid == tid_worker_tid, code_name(tm_code), tm_value);
}

/* ---- EINTR: nanosleep and read without SA_RESTART ----------------------------------------- */
static void arm_ms(long ms)
{
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %s", strerror(errno));
}

static void t_eintr_sleep(void)
{
    install(SIGALRM, alrm_handler, 0);
    arm_ms(50);
    struct timespec ts = {5, 0}, rem = {0, 0};
    int64_t t0 = now_ms();
    int rc = nanosleep(&ts, &rem);
    int e = errno;
    int64_t took = now_ms() - t0;
    int rem_ok = rem.tv_sec < 5 && (rem.tv_sec > 0 || rem.tv_nsec > 0);
    CHECK(took < 4900, "nanosleep not interrupted (%lld ms)", (long long)took);
    printf("eintr_sleep: ret=%d errno=%s rem_ok=%d handled=%d\n", rc,
           e == EINTR ? "EINTR" : strerror(e), rem_ok, alrm_hits);
}

static void t_eintr_read(void)
{
    install(SIGALRM, alrm_handler, 0);
    int fd = eventfd(0, 0);
    CHECK(fd >= 0, "eventfd: %s", strerror(errno));
    arm_ms(50);
    uint64_t v;
    ssize_t rc = read(fd, &v, sizeof v); /* counter is 0: blocks until the signal */
    int e = errno;
    printf("eintr_read: ret=%ld errno=%s handled=%d\n", (long)rc,
           e == EINTR ? "EINTR" : strerror(e), alrm_hits);
    close(fd);
}

/* ---- restart_futex: an untimed FUTEX_WAIT restarts with SA_RESTART, EINTR without ------- */
static int futex_word;
static void *futex_waker(void *arg)
{
    (void)arg;
    sleep_ms(100);
    pthread_kill(main_thread, SIGUSR1);
    sleep_ms(300);
    __atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return NULL;
}

static const char *futex_round(int flags)
{
    install(SIGUSR1, count_handler, flags);
    hits = 0;
    futex_word = 0;
    main_thread = pthread_self();
    pthread_t th;
    CHECK(pthread_create(&th, NULL, futex_waker, NULL) == 0, "create");
    long rc = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    int e = errno;
    int handled = hits;
    pthread_join(th, NULL);
    CHECK(handled == 1, "handler ran %d times", handled);
    /* 0: woken after the restart; EAGAIN: restarted after the word changed. */
    if (rc == 0 || (rc == -1 && e == EAGAIN))
        return "restarted";
    if (rc == -1 && e == EINTR)
        return "EINTR";
    return strerror(e);
}

static void t_restart_futex(void)
{
    const char *with = futex_round(SA_RESTART);
    const char *without = futex_round(0);
    printf("restart_futex: SA_RESTART=%s no_SA_RESTART=%s\n", with, without);
}

/* ---- sigtimedwait ------------------------------------------------------------------------- */
static void t_sigtimedwait(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    block(SIGUSR1, SIG_BLOCK);
    struct timespec to = {0, 100000000};
    int64_t t0 = now_ms();
    int rc = sigtimedwait(&set, NULL, &to);
    int e = errno;
    int64_t took = now_ms() - t0;
    CHECK(rc == -1 && e == EAGAIN, "sigtimedwait with nothing pending = %d (%s)", rc,
          strerror(e));
    CHECK(took >= 95 && took < 10000, "timed out after %lld ms", (long long)took);
    raise(SIGUSR1);
    siginfo_t si;
    rc = sigtimedwait(&set, &si, &to);
    sigset_t p;
    sigpending(&p);
    /* raise() sends with tgkill (SI_TKILL); glibc's sigtimedwait reports that as SI_USER. */
    printf("sigtimedwait: timeout=EAGAIN got=%d code=%s consumed=%d\n", rc,
           si.si_code == SI_TKILL || si.si_code == SI_USER ? "SI_TKILL|SI_USER" : "other",
           !sigismember(&p, SIGUSR1));
    block(SIGUSR1, SIG_UNBLOCK);
}

/* ---- abort with a handler that returns, SIGTERM default ----------------------------------- */
static void abrt_handler(int sig)
{
    (void)sig;
    static const char msg[] = "SIGABRT handler ran\n";
    write(1, msg, sizeof msg - 1);
}

static void t_abort(void)
{
    install(SIGABRT, abrt_handler, 0);
    printf("about to abort\n");
    fflush(stdout);
    abort();
}

static void t_sigterm(void)
{
    signal(SIGTERM, SIG_IGN);
    raise(SIGTERM);
    raise(SIGCHLD); /* default action: ignore */
    raise(SIGURG);
    printf("ignored SIGTERM, SIGCHLD, SIGURG\n");
    signal(SIGTERM, SIG_DFL);
    printf("about to SIGTERM\n");
    fflush(stdout);
    kill(getpid(), SIGTERM);
    printf("still alive after SIGTERM\n");
    exit(1);
}

static const struct {
    const char *name;
    void (*fn)(void);
    int in_all;
} tests[] = {
    {"handler", t_handler, 1},
    {"siginfo", t_siginfo, 1},
    {"flags", t_flags, 1},
    {"altstack", t_altstack, 1},
    {"mask", t_mask, 1},
    {"sigsuspend", t_sigsuspend, 1},
    {"sigsuspend_thread", t_sigsuspend_thread, 1},
    {"thread_kill", t_thread_kill, 1},
    {"segv", t_segv, 1},
    {"fpe", t_fpe, 1},
    {"alarm", t_alarm, 1},
    {"itimer", t_itimer, 1},
    {"timer", t_timer, 1},
    {"timer_thread_id", t_timer_thread_id, 1},
    {"eintr_sleep", t_eintr_sleep, 1},
    {"eintr_read", t_eintr_read, 1},
    {"restart_futex", t_restart_futex, 1},
    {"sigtimedwait", t_sigtimedwait, 1},
    {"abort", t_abort, 0},
    {"sigterm", t_sigterm, 0},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (argc < 2 ? tests[i].in_all : strcmp(argv[1], tests[i].name) == 0) {
            alrm_hits = 0;
            tests[i].fn();
            ran++;
        }
    if (!ran) {
        printf("unknown test %s\n", argv[1]);
        return 2;
    }
    return 0;
}
