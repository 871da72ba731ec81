/* Writes into its own code: text must be read-only, so SIGSEGV (exit status 139). */
#include <stdio.h>

int main(void)
{
    puts("about to write to .text");
    fflush(stdout);
    *(volatile char *)(void *)main = 0;
    puts("still alive");
    return 0;
}
