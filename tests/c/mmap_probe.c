/*
 * Anonymous memory the way allocators and runtimes use it: mmap, mprotect, munmap of part of
 * a mapping, MAP_FIXED over a hole, mremap growth, brk up and down. Prints one line per step.
 * With argv[1] = "fault", finally touches an unmapped page: SIGSEGV, exit status 139.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096

static int fail(const char *what)
{
    printf("FAIL: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    size_t len = 16 * PAGE;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return fail("mmap");
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            return fail("fresh mapping not zero");
    for (size_t i = 0; i < len; i += PAGE)
        p[i] = (unsigned char)(i / PAGE + 1);
    puts("mmap ok");

    if (mprotect(p, len, PROT_READ) != 0)
        return fail("mprotect");
    if (p[5 * PAGE] != 6)
        return fail("read after mprotect");
    if (mprotect(p, len, PROT_READ | PROT_WRITE) != 0)
        return fail("mprotect back");
    puts("mprotect ok");

    /* A hole in the middle, filled again with MAP_FIXED: fresh zero page, neighbours intact. */
    if (munmap(p + 4 * PAGE, PAGE) != 0)
        return fail("munmap of one page");
    unsigned char *q = mmap(p + 4 * PAGE, PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (q != p + 4 * PAGE)
        return fail("MAP_FIXED into the hole");
    if (q[0] != 0 || p[3 * PAGE] != 4 || p[5 * PAGE] != 6)
        return fail("contents around the refilled hole");
    puts("munmap+MAP_FIXED ok");

    unsigned char *r = mremap(p, len, 256 * PAGE, MREMAP_MAYMOVE);
    if (r == MAP_FAILED)
        return fail("mremap");
    if (r[3 * PAGE] != 4 || r[15 * PAGE] != 16 || r[200 * PAGE] != 0)
        return fail("contents after mremap");
    r[255 * PAGE] = 1;
    if (munmap(r, 256 * PAGE) != 0)
        return fail("munmap");
    puts("mremap ok");

    /* The raw brk syscall (musl's sbrk only reports the break): returns the new break. */
    uintptr_t b0 = (uintptr_t)syscall(SYS_brk, 0);
    if ((uintptr_t)syscall(SYS_brk, b0 + 64 * PAGE) != b0 + 64 * PAGE)
        return fail("brk grow");
    memset((void *)b0, 0x5a, 64 * PAGE);
    if ((uintptr_t)syscall(SYS_brk, b0 + 32 * PAGE) != b0 + 32 * PAGE)
        return fail("brk shrink");
    if (*(volatile unsigned char *)(b0 + 32 * PAGE - 1) != 0x5a)
        return fail("contents below the shrunk break");
    puts("brk ok");

    if (argc > 1 && strcmp(argv[1], "fault") == 0) {
        unsigned char *gone = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        munmap(gone, PAGE);
        puts("touching an unmapped page");
        fflush(stdout);
        *(volatile unsigned char *)gone = 1;
        puts("still alive");
    }
    return 0;
}
