/* __builtin_trap() is ud2 on x86_64: #UD, SIGILL, exit status 132. */
#include <stdio.h>

int main(void)
{
    puts("about to execute ud2");
    fflush(stdout);
    __builtin_trap();
}
