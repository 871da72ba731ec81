/*
 * POSIX threads as real programs use them. `threads_pthreads NAME` runs one sub-test and
 * prints its lines; without an argument every sub-test runs in order. Every line is exact
 * (no timings, no addresses), so the integration tests compare stdout byte for byte.
 * A failed check prints "FAIL <test>:<line>: <what>" and exits 1.
 *
 * Sub-tests: many join cond barrier tls cancel detach prodcons yield sleep
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
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

#define PCHECK(call)                                                                         \
    do {                                                                                     \
        int rc_ = (call);                                                                    \
        CHECK(rc_ == 0, "%s = %d (%s)", #call, rc_, strerror(rc_));                          \
    } while (0)

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- many: 64 threads, one mutex, distinct thread ids ------------------------------------ */
#define MANY 64
#define MANY_ITERS 1000
static pthread_mutex_t many_lock = PTHREAD_MUTEX_INITIALIZER;
static long many_counter;
static pid_t many_tids[MANY];

static void *many_fn(void *arg)
{
    int i = (int)(intptr_t)arg;
    many_tids[i] = gettid_();
    for (int k = 0; k < MANY_ITERS; k++) {
        pthread_mutex_lock(&many_lock);
        long v = many_counter;
        if (k % 64 == 0)
            sched_yield(); /* widen the window a missing lock would expose */
        many_counter = v + 1;
        pthread_mutex_unlock(&many_lock);
    }
    return NULL;
}

static void t_many(void)
{
    pthread_t th[MANY];
    for (int i = 0; i < MANY; i++)
        PCHECK(pthread_create(&th[i], NULL, many_fn, (void *)(intptr_t)i));
    for (int i = 0; i < MANY; i++)
        PCHECK(pthread_join(th[i], NULL));
    pid_t me = gettid_();
    CHECK(me == getpid(), "main thread tid %d != pid %d", me, getpid());
    int distinct = 0;
    for (int i = 0; i < MANY; i++) {
        int dup = many_tids[i] == me || many_tids[i] <= 0;
        for (int j = 0; j < i; j++)
            dup |= many_tids[j] == many_tids[i];
        distinct += !dup;
    }
    printf("many: threads=%d counter=%ld distinct_tids=%d\n", MANY, many_counter, distinct);
}

/* ---- join: return values through return and pthread_exit -------------------------------- */
static void *join_fn(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (i % 2)
        pthread_exit((void *)(i * i + 1));
    return (void *)(i * i + 1);
}

static void t_join(void)
{
    pthread_t th[8];
    for (intptr_t i = 0; i < 8; i++)
        PCHECK(pthread_create(&th[i], NULL, join_fn, (void *)i));
    intptr_t sum = 0;
    for (int i = 0; i < 8; i++) {
        void *ret;
        PCHECK(pthread_join(th[i], &ret));
        sum += (intptr_t)ret;
    }
    printf("join: sum=%ld\n", (long)sum);
}

/* ---- cond: timed wait that times out, one that is signalled, broadcast ------------------- */
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond_mono;
static pthread_cond_t cond_bcast = PTHREAD_COND_INITIALIZER;
static int cond_flag, bcast_go, bcast_woken;

static void *cond_signaller(void *arg)
{
    (void)arg;
    sleep_ms(50);
    pthread_mutex_lock(&cond_lock);
    cond_flag = 1;
    pthread_cond_signal(&cond_mono);
    pthread_mutex_unlock(&cond_lock);
    return NULL;
}

static void *bcast_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cond_lock);
    while (!bcast_go)
        pthread_cond_wait(&cond_bcast, &cond_lock);
    bcast_woken++;
    pthread_mutex_unlock(&cond_lock);
    return NULL;
}

static void t_cond(void)
{
    /* 1. Nobody signals: ETIMEDOUT after the deadline (CLOCK_REALTIME, the default). */
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += 100 * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    int64_t t0 = now_ms(CLOCK_MONOTONIC);
    pthread_mutex_lock(&cond_lock);
    int rc;
    do
        rc = pthread_cond_timedwait(&c, &cond_lock, &dl);
    while (rc == 0); /* spurious wakeups are allowed */
    pthread_mutex_unlock(&cond_lock);
    int64_t waited = now_ms(CLOCK_MONOTONIC) - t0;
    CHECK(rc == ETIMEDOUT, "timedwait without signal = %d", rc);
    CHECK(waited >= 95 && waited < 10000, "timed out after %lld ms, want ~100",
          (long long)waited);

    /* 2. Signalled after 50 ms, long before a 20 s deadline (CLOCK_MONOTONIC condattr). */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    PCHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
    PCHECK(pthread_cond_init(&cond_mono, &ca));
    pthread_t th;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 20;
    t0 = now_ms(CLOCK_MONOTONIC);
    pthread_mutex_lock(&cond_lock);
    PCHECK(pthread_create(&th, NULL, cond_signaller, NULL));
    int rc2 = 0;
    while (!cond_flag && rc2 == 0)
        rc2 = pthread_cond_timedwait(&cond_mono, &cond_lock, &dl);
    pthread_mutex_unlock(&cond_lock);
    waited = now_ms(CLOCK_MONOTONIC) - t0;
    PCHECK(pthread_join(th, NULL));
    CHECK(rc2 == 0 && cond_flag == 1, "signalled timedwait = %d flag %d", rc2, cond_flag);
    CHECK(waited < 15000, "signalled wait took %lld ms", (long long)waited);

    /* 3. Broadcast wakes all 4 waiters. */
    pthread_t w[4];
    for (int i = 0; i < 4; i++)
        PCHECK(pthread_create(&w[i], NULL, bcast_waiter, NULL));
    sleep_ms(20);
    pthread_mutex_lock(&cond_lock);
    bcast_go = 1;
    pthread_cond_broadcast(&cond_bcast);
    pthread_mutex_unlock(&cond_lock);
    for (int i = 0; i < 4; i++)
        PCHECK(pthread_join(w[i], NULL));
    printf("cond: timeout=ETIMEDOUT signalled=0 broadcast_woken=%d\n", bcast_woken);
}

/* ---- barrier: 8 threads, 3 rounds, one serial thread per round ---------------------------- */
#define BAR_N 8
#define BAR_ROUNDS 3
static pthread_barrier_t bar;
static int bar_arrived, bar_serial, bar_bad;

static void *bar_fn(void *arg)
{
    (void)arg;
    for (int r = 0; r < BAR_ROUNDS; r++) {
        __atomic_add_fetch(&bar_arrived, 1, __ATOMIC_SEQ_CST);
        int rc = pthread_barrier_wait(&bar);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            __atomic_add_fetch(&bar_serial, 1, __ATOMIC_SEQ_CST);
        else if (rc != 0)
            __atomic_add_fetch(&bar_bad, 1, __ATOMIC_SEQ_CST);
        /* Everyone of this round has arrived before anyone leaves. */
        if (__atomic_load_n(&bar_arrived, __ATOMIC_SEQ_CST) < (r + 1) * BAR_N)
            __atomic_add_fetch(&bar_bad, 1, __ATOMIC_SEQ_CST);
        /* A second barrier so nobody races into the next round's count. */
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

static void t_barrier(void)
{
    PCHECK(pthread_barrier_init(&bar, NULL, BAR_N));
    pthread_t th[BAR_N];
    for (int i = 0; i < BAR_N; i++)
        PCHECK(pthread_create(&th[i], NULL, bar_fn, NULL));
    for (int i = 0; i < BAR_N; i++)
        PCHECK(pthread_join(th[i], NULL));
    PCHECK(pthread_barrier_destroy(&bar));
    printf("barrier: threads=%d rounds=%d serial=%d early_leavers=%d\n", BAR_N, BAR_ROUNDS,
           bar_serial, bar_bad);
}

/* ---- tls: __thread per thread ------------------------------------------------------------ */
#define TLS_N 16
static __thread int tls_val = 7;
static __thread char tls_buf[256] = "init";
static uintptr_t tls_addr[TLS_N];
static int tls_init_ok, tls_kept;

static void *tls_fn(void *arg)
{
    int i = (int)(intptr_t)arg;
    if (tls_val == 7 && strcmp(tls_buf, "init") == 0)
        __atomic_add_fetch(&tls_init_ok, 1, __ATOMIC_SEQ_CST);
    tls_val = 1000 + i;
    snprintf(tls_buf, sizeof tls_buf, "thread %d", i);
    tls_addr[i] = (uintptr_t)&tls_val;
    for (int k = 0; k < 20; k++) {
        sched_yield();
        sleep_ms(1);
    }
    char want[32];
    snprintf(want, sizeof want, "thread %d", i);
    if (tls_val == 1000 + i && strcmp(tls_buf, want) == 0)
        __atomic_add_fetch(&tls_kept, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void t_tls(void)
{
    tls_val = 99;
    pthread_t th[TLS_N];
    for (int i = 0; i < TLS_N; i++)
        PCHECK(pthread_create(&th[i], NULL, tls_fn, (void *)(intptr_t)i));
    for (int i = 0; i < TLS_N; i++)
        PCHECK(pthread_join(th[i], NULL));
    int distinct = 0;
    for (int i = 0; i < TLS_N; i++) {
        int dup = tls_addr[i] == (uintptr_t)&tls_val;
        for (int j = 0; j < i; j++)
            dup |= tls_addr[j] == tls_addr[i];
        distinct += !dup;
    }
    printf("tls: threads=%d fresh_init=%d kept=%d distinct_addrs=%d main=%d\n", TLS_N,
           tls_init_ok, tls_kept, distinct, tls_val);
}

/* ---- cancel: a thread blocked in nanosleep and one in pthread_cond_wait ------------------- */
static int cancel_cleanups;
static volatile int cancel_started;
static pthread_cond_t cancel_cond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;

static void cancel_cleanup(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&cancel_cleanups, 1, __ATOMIC_SEQ_CST);
}

static void *cancel_sleeper(void *arg)
{
    (void)arg;
    pthread_cleanup_push(cancel_cleanup, NULL);
    __atomic_add_fetch(&cancel_started, 1, __ATOMIC_SEQ_CST);
    struct timespec ts = {1000, 0};
    nanosleep(&ts, NULL); /* a cancellation point; never returns normally */
    pthread_cleanup_pop(0);
    return (void *)1;
}

static void cancel_unlock(void *arg)
{
    pthread_mutex_unlock(arg);
    cancel_cleanup(NULL);
}

static void *cancel_waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cancel_lock);
    pthread_cleanup_push(cancel_unlock, &cancel_lock);
    __atomic_add_fetch(&cancel_started, 1, __ATOMIC_SEQ_CST);
    for (;;)
        pthread_cond_wait(&cancel_cond, &cancel_lock);
    pthread_cleanup_pop(1);
    return (void *)1;
}

static void t_cancel(void)
{
    pthread_t a, b;
    PCHECK(pthread_create(&a, NULL, cancel_sleeper, NULL));
    PCHECK(pthread_create(&b, NULL, cancel_waiter, NULL));
    while (__atomic_load_n(&cancel_started, __ATOMIC_SEQ_CST) < 2)
        sleep_ms(5);
    sleep_ms(50); /* let both block */
    PCHECK(pthread_cancel(a));
    PCHECK(pthread_cancel(b));
    void *ra, *rb;
    PCHECK(pthread_join(a, &ra));
    PCHECK(pthread_join(b, &rb));
    /* The mutex was released by the cleanup handler: lockable again. */
    PCHECK(pthread_mutex_trylock(&cancel_lock));
    pthread_mutex_unlock(&cancel_lock);
    printf("cancel: sleeper=%s waiter=%s cleanups=%d\n",
           ra == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "returned",
           rb == PTHREAD_CANCELED ? "PTHREAD_CANCELED" : "returned", cancel_cleanups);
}

/* ---- detach: detached threads finish and are counted -------------------------------------- */
#define DET_N 8
static pthread_mutex_t det_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t det_cond = PTHREAD_COND_INITIALIZER;
static int det_done;

static void *det_fn(void *arg)
{
    sleep_ms((intptr_t)arg * 3);
    pthread_mutex_lock(&det_lock);
    det_done++;
    pthread_cond_signal(&det_cond);
    pthread_mutex_unlock(&det_lock);
    return NULL;
}

static void t_detach(void)
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    PCHECK(pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED));
    for (intptr_t i = 0; i < DET_N; i++) {
        pthread_t th;
        if (i % 2) {
            PCHECK(pthread_create(&th, &at, det_fn, (void *)i));
        } else {
            PCHECK(pthread_create(&th, NULL, det_fn, (void *)i));
            PCHECK(pthread_detach(th));
        }
    }
    pthread_mutex_lock(&det_lock);
    while (det_done < DET_N)
        pthread_cond_wait(&det_cond, &det_lock);
    pthread_mutex_unlock(&det_lock);
    /* Let them exit for real, then start more: exited detached threads are reclaimed. */
    sleep_ms(20);
    for (intptr_t round = 0; round < 4; round++)
        for (intptr_t i = 0; i < DET_N; i++) {
            pthread_t th;
            PCHECK(pthread_create(&th, &at, det_fn, (void *)0));
        }
    pthread_mutex_lock(&det_lock);
    while (det_done < DET_N * 5)
        pthread_cond_wait(&det_cond, &det_lock);
    pthread_mutex_unlock(&det_lock);
    printf("detach: finished=%d\n", det_done);
}

/* ---- prodcons: bounded buffer, 4 producers, 4 consumers ----------------------------------- */
#define PC_PROD 4
#define PC_CONS 4
#define PC_ITEMS 5000
#define PC_CAP 16
static long pc_buf[PC_CAP];
static int pc_head, pc_count, pc_producers_left = PC_PROD;
static pthread_mutex_t pc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc_not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pc_not_empty = PTHREAD_COND_INITIALIZER;

static void *pc_producer(void *arg)
{
    (void)arg;
    for (long v = 1; v <= PC_ITEMS; v++) {
        pthread_mutex_lock(&pc_lock);
        while (pc_count == PC_CAP)
            pthread_cond_wait(&pc_not_full, &pc_lock);
        pc_buf[(pc_head + pc_count) % PC_CAP] = v;
        pc_count++;
        pthread_cond_signal(&pc_not_empty);
        pthread_mutex_unlock(&pc_lock);
    }
    pthread_mutex_lock(&pc_lock);
    pc_producers_left--;
    pthread_cond_broadcast(&pc_not_empty);
    pthread_mutex_unlock(&pc_lock);
    return NULL;
}

struct pc_total {
    long sum, items;
};

static void *pc_consumer(void *arg)
{
    struct pc_total *t = arg;
    for (;;) {
        pthread_mutex_lock(&pc_lock);
        while (pc_count == 0 && pc_producers_left > 0)
            pthread_cond_wait(&pc_not_empty, &pc_lock);
        if (pc_count == 0) {
            pthread_mutex_unlock(&pc_lock);
            return NULL;
        }
        long v = pc_buf[pc_head];
        pc_head = (pc_head + 1) % PC_CAP;
        pc_count--;
        pthread_cond_signal(&pc_not_full);
        pthread_mutex_unlock(&pc_lock);
        t->sum += v;
        t->items++;
    }
}

static void t_prodcons(void)
{
    pthread_t p[PC_PROD], c[PC_CONS];
    struct pc_total tot[PC_CONS];
    memset(tot, 0, sizeof tot);
    for (int i = 0; i < PC_CONS; i++)
        PCHECK(pthread_create(&c[i], NULL, pc_consumer, &tot[i]));
    for (int i = 0; i < PC_PROD; i++)
        PCHECK(pthread_create(&p[i], NULL, pc_producer, NULL));
    for (int i = 0; i < PC_PROD; i++)
        PCHECK(pthread_join(p[i], NULL));
    long sum = 0, items = 0;
    for (int i = 0; i < PC_CONS; i++) {
        PCHECK(pthread_join(c[i], NULL));
        sum += tot[i].sum;
        items += tot[i].items;
    }
    printf("prodcons: items=%ld sum=%ld\n", items, sum);
}

/* ---- yield: strict alternation by spinning on sched_yield --------------------------------- */
#define YIELD_ROUNDS 1000
static int yield_turn;

static void *yield_fn(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int r = 0; r < YIELD_ROUNDS; r++) {
        while (__atomic_load_n(&yield_turn, __ATOMIC_ACQUIRE) != me)
            sched_yield();
        __atomic_store_n(&yield_turn, 1 - me, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void t_yield(void)
{
    pthread_t a, b;
    PCHECK(pthread_create(&a, NULL, yield_fn, (void *)0));
    PCHECK(pthread_create(&b, NULL, yield_fn, (void *)1));
    PCHECK(pthread_join(a, NULL));
    PCHECK(pthread_join(b, NULL));
    CHECK(sched_yield() == 0, "sched_yield");
    printf("yield: rounds=%d turn=%d\n", YIELD_ROUNDS, yield_turn);
}

/* ---- sleep: 8 threads sleep 250 ms at once: the sleeps overlap ---------------------------- */
#define SLEEP_N 8
#define SLEEP_MS 250
static int sleep_long_enough;

static void *sleep_fn(void *arg)
{
    (void)arg;
    int64_t t0 = now_ms(CLOCK_MONOTONIC);
    struct timespec ts = {0, SLEEP_MS * 1000000L};
    int rc = nanosleep(&ts, NULL);
    if (rc == 0 && now_ms(CLOCK_MONOTONIC) - t0 >= SLEEP_MS - 1)
        __atomic_add_fetch(&sleep_long_enough, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void t_sleep(void)
{
    pthread_t th[SLEEP_N];
    int64_t t0 = now_ms(CLOCK_MONOTONIC);
    for (int i = 0; i < SLEEP_N; i++)
        PCHECK(pthread_create(&th[i], NULL, sleep_fn, NULL));
    for (int i = 0; i < SLEEP_N; i++)
        PCHECK(pthread_join(th[i], NULL));
    int64_t total = now_ms(CLOCK_MONOTONIC) - t0;
    /* In sequence they would take 2000 ms. */
    CHECK(total < SLEEP_N * SLEEP_MS * 3 / 4, "8 concurrent 250 ms sleeps took %lld ms",
          (long long)total);
    printf("sleep: threads=%d slept_full=%d overlapped=1\n", SLEEP_N, sleep_long_enough);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"many", t_many},         {"join", t_join},         {"cond", t_cond},
    {"barrier", t_barrier},   {"tls", t_tls},           {"cancel", t_cancel},
    {"detach", t_detach},     {"prodcons", t_prodcons}, {"yield", t_yield},
    {"sleep", t_sleep},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (argc < 2 || strcmp(argv[1], tests[i].name) == 0) {
            tests[i].fn();
            ran++;
        }
    if (!ran) {
        printf("unknown test %s\n", argv[1]);
        return 2;
    }
    return 0;
}
