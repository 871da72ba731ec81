/* Thread-local storage in the main thread (PT_TLS, %fs set up by libc via arch_prctl). */
#include <stdio.h>

static __thread int counter = 41;
static __thread char buf[64];

int main(void)
{
    counter++;
    for (int i = 0; i < 63; i++)
        buf[i] = (char)('a' + i % 26);
    buf[63] = 0;
    printf("counter=%d first=%c last=%c\n", counter, buf[0], buf[62]);
    return 0;
}
