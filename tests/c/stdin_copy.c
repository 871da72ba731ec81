/* Copies stdin to stdout with read(2) until end-of-file, then reports on stderr how many
 * bytes came and whether stdin is a terminal (tests/tests/cli.rs: bake run < FILE). */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    unsigned char buf[4096];
    long total = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        if (write(1, buf, n) != n)
            return 2;
        total += n;
    }
    fprintf(stderr, "stdin: %ld bytes, end %zd, isatty %d\n", total, n, isatty(0));
    return n < 0;
}
