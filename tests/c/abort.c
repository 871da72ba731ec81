/* abort(): SIGABRT, exit status 134. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    puts("about to abort");
    fflush(stdout);
    abort();
}
