/* Prints argc, every argv entry and the environment variable KILN_TEST. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *v = getenv("KILN_TEST");
    printf("KILN_TEST=%s\n", v ? v : "(unset)");
    return 0;
}
