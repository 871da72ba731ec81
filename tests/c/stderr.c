/* One line on stdout and one on stderr (fd 2): they must come out on separate streams. */
#include <stdio.h>

int main(void)
{
    fputs("to stdout\n", stdout);
    fflush(stdout);
    fputs("to stderr\n", stderr);
    return 0;
}
