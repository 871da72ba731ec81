/* Writes through a NULL pointer: must die of SIGSEGV (exit status 139). */
#include <stdio.h>

int main(void)
{
    puts("about to write to NULL");
    fflush(stdout);
    *(volatile int *)0 = 1;
    puts("still alive");
    return 0;
}
