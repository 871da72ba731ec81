/* Exits with the status given as argv[1] (via return from main, i.e. exit()). */
#include <stdlib.h>

int main(int argc, char **argv)
{
    return argc > 1 ? atoi(argv[1]) : 0;
}
