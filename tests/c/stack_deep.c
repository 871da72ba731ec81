/*
 * Uses 4 MiB of stack (1024 nested frames of 4 KiB each), as recursive parsers and programs with
 * big local buffers do; Linux gives the main thread 8 MiB by default.
 */
#include <stdio.h>
#include <string.h>

static unsigned long depth(int n)
{
    volatile unsigned char frame[4096];
    memset((void *)frame, n & 0xff, sizeof frame);
    unsigned long below = n > 0 ? depth(n - 1) : 0;
    return below + frame[n % sizeof frame] + frame[0];
}

int main(void)
{
    printf("sum=%lu\n", depth(1023));
    return 0;
}
