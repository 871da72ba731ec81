/*
 * Null-syscall cost: N getpid calls through syscall(2) (never cached by libc), timed with
 * CLOCK_MONOTONIC, plus the cost of clock_gettime itself. N = argv[1], default 100000.
 * argv[2] = "getpid" or "clock" runs only that loop (for instruction counting); the other
 * then reports 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000ll + t.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n <= 0)
        n = 1;
    const char *only = argc > 2 ? argv[2] : "";
    long pid = syscall(SYS_getpid);
    long long t0 = now();
    if (strcmp(only, "clock") != 0)
        for (long i = 0; i < n; i++)
            syscall(SYS_getpid);
    long long t1 = now();
    if (strcmp(only, "getpid") != 0)
        for (long i = 0; i < n; i++)
            now();
    long long t2 = now();
    printf("pid=%ld calls=%ld\n", pid, n);
    printf("getpid_ns=%.1f\n", (double)(t1 - t0) / n);
    printf("clock_gettime_ns=%.1f\n", (double)(t2 - t1) / n);
    return 0;
}
