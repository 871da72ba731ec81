/* Smallest possible app: one line on stdout, exit 0. */
#include <stdio.h>

int main(void)
{
    puts("hello from kiln");
    return 0;
}
