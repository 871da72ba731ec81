/* Integer division by zero: #DE, SIGFPE, exit status 136. */
#include <stdio.h>

/* Both volatile: gcc turns 1 / x into a compare, so the numerator must be unknown too. */
static volatile int num = 7;
static volatile int zero = 0;

int main(void)
{
    puts("about to divide by zero");
    fflush(stdout);
    volatile int r = num / zero;
    printf("still alive: %d\n", r);
    return 0;
}
