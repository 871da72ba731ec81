/*
 * Process-model micro-benchmarks (bench/process.sh runs it natively and under Kiln):
 *   proc_bench create N   pthread_create + pthread_join of a thread that returns at once
 *   proc_bench futex N    futex wake round trip: two threads hand a word back and forth
 *                         with FUTEX_WAKE/FUTEX_WAIT (one round trip = two hand-overs)
 *   proc_bench signal N   raise(SIGUSR1) with a handler installed: delivery and sigreturn
 * Prints "<mode>_ns=<ns per operation>" and "ops=<N>", measured with CLOCK_MONOTONIC, and
 * checks that every operation happened (exit 1 otherwise).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* musl-gcc has no kernel headers: the futex ABI numbers. */
#define FUTEX_WAIT_PRIVATE (0 | 128)
#define FUTEX_WAKE_PRIVATE (1 | 128)

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *nothing(void *arg) { return arg; }

static long bench_create(long n)
{
    long ok = 0;
    for (long i = 0; i < n; i++) {
        pthread_t t;
        void *ret = NULL;
        if (pthread_create(&t, NULL, nothing, (void *)(intptr_t)(i + 1)) != 0)
            break;
        pthread_join(t, &ret);
        ok += (intptr_t)ret == i + 1;
    }
    return ok;
}

/* 0: the main thread's turn, 1: the partner's. */
static int word;
static long rounds;

static void futex_wait(int *w, int val)
{
    while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == val)
        syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_set(int *w, int val)
{
    __atomic_store_n(w, val, __ATOMIC_RELEASE);
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *partner(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        futex_wait(&word, 0);
        futex_set(&word, 0);
    }
    return NULL;
}

static long bench_futex(long n)
{
    pthread_t t;
    if (pthread_create(&t, NULL, partner, (void *)(intptr_t)n) != 0)
        return 0;
    for (long i = 0; i < n; i++) {
        futex_set(&word, 1);
        futex_wait(&word, 1);
        rounds++;
    }
    pthread_join(t, NULL);
    return rounds;
}

static volatile long handled;
static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static long bench_signal(long n)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return 0;
    for (long i = 0; i < n; i++)
        raise(SIGUSR1);
    return handled;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: proc_bench create|futex|signal N\n");
        return 2;
    }
    long n = atol(argv[2]);
    long (*fn)(long);
    if (strcmp(argv[1], "create") == 0)
        fn = bench_create;
    else if (strcmp(argv[1], "futex") == 0)
        fn = bench_futex;
    else if (strcmp(argv[1], "signal") == 0)
        fn = bench_signal;
    else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    double t0 = now_ns();
    long done = fn(n);
    double t1 = now_ns();
    if (done != n) {
        printf("FAIL %s: %ld of %ld operations\n", argv[1], done, n);
        return 1;
    }
    printf("%s_ns=%.1f\nops=%ld\n", argv[1], (t1 - t0) / (double)n, n);
    return 0;
}
