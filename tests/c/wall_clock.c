/* Prints CLOCK_REALTIME (ns since the epoch) five times, 100 ms apart, so that the host can
 * compare the guest's wall clock with its own (tests/tests/process.rs). With an argument N:
 * five times, then N seconds later by the guest's clock five times again, so that the host can
 * compare the rates (each burst's least delayed line gives the clocks' offset at that end). */
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

static void burst(void)
{
    struct timespec gap = {0, 100000000};
    for (int i = 0; i < 5; i++) {
        print_now();
        if (i < 4)
            nanosleep(&gap, NULL);
    }
}

int main(int argc, char **argv)
{
    burst();
    if (argc > 1) {
        struct timespec wait = {atoi(argv[1]), 0};
        nanosleep(&wait, NULL);
        burst();
    }
    return 0;
}
