/* Prints CLOCK_REALTIME (ns since the epoch) five times, 100 ms apart, so that the host can
 * compare the guest's wall clock with its own (tests/tests/process.rs). With an argument N:
 * twice, N seconds apart by the guest's clock, so that the host can compare the rates. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void print_now(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_REALTIME, &t) != 0)
        exit(1);
    printf("%lld\n", (long long)t.tv_sec * 1000000000ll + t.tv_nsec);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int times = argc > 1 ? 2 : 5;
    struct timespec gap = argc > 1 ? (struct timespec){atoi(argv[1]), 0} : (struct timespec){0, 100000000};
    for (int i = 0; i < times; i++) {
        print_now();
        if (i + 1 < times)
            nanosleep(&gap, NULL);
    }
    return 0;
}
