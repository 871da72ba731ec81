/* Sleeps argv[1] seconds (default 30): lets tests check bake's --timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int s = argc > 1 ? atoi(argv[1]) : 30;
    puts("sleeping");
    fflush(stdout);
    sleep(s);
    puts("woke up");
    return 0;
}
