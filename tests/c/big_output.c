/* 2000 numbered lines (about 40 KB) on stdout: the console must not drop or reorder bytes. */
#include <stdio.h>

int main(void)
{
    unsigned long sum = 0;
    for (int i = 0; i < 2000; i++) {
        sum += (unsigned long)i * i;
        printf("line %04d %lu\n", i, sum);
    }
    puts("done");
    return 0;
}
