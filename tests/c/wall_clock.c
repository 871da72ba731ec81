/* Prints CLOCK_REALTIME (ns since the epoch) five times, 100 ms apart, so that the host can
 * compare the guest's wall clock with its own (tests/tests/process.rs). */
#include <stdio.h>
#include <time.h>

int main(void)
{
    for (int i = 0; i < 5; i++) {
        struct timespec t;
        if (clock_gettime(CLOCK_REALTIME, &t) != 0)
            return 1;
        printf("%lld\n", (long long)t.tv_sec * 1000000000ll + t.tv_nsec);
        fflush(stdout);
        struct timespec d = {0, 100000000};
        nanosleep(&d, NULL);
    }
    return 0;
}
