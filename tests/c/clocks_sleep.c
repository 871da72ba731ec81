/* Checks that CLOCK_REALTIME is a plausible date and that nanosleep moves CLOCK_MONOTONIC. */
#include <stdio.h>
#include <time.h>

static long long ns(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000ll + t->tv_nsec;
}

int main(void)
{
    struct timespec rt, m0, m1;
    if (clock_gettime(CLOCK_REALTIME, &rt) != 0) {
        puts("clock_gettime(CLOCK_REALTIME) failed");
        return 1;
    }
    struct tm tm;
    gmtime_r(&rt.tv_sec, &tm);
    if (tm.tm_year + 1900 < 2024) {
        printf("realtime year %d < 2024\n", tm.tm_year + 1900);
        return 1;
    }
    puts("realtime ok");
    if (clock_gettime(CLOCK_MONOTONIC, &m0) != 0) {
        puts("clock_gettime(CLOCK_MONOTONIC) failed");
        return 1;
    }
    struct timespec req = {0, 200 * 1000 * 1000};
    if (nanosleep(&req, NULL) != 0) {
        puts("nanosleep failed");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &m1);
    long long d = ns(&m1) - ns(&m0);
    if (d < 200000000ll || d >= 5000000000ll) {
        printf("monotonic advanced %lld ns across a 200 ms sleep\n", d);
        return 1;
    }
    puts("slept ok");
    return 0;
}
