/*
 * Bad pointers passed to system calls must fail with EFAULT, not crash the program or the
 * kernel. Raw syscall(2) throughout, so no libc (or vDSO) touches the pointer first.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void probe(const char *name, long ret)
{
    printf("%s: ret=%ld efault=%d\n", name, ret, ret == -1 && errno == EFAULT);
}

int main(void)
{
    void *bad = (void *)8; /* page 0 is never mapped */
    void *kernelish = (void *)0xffff800000001000ul;
    errno = 0;
    probe("write", syscall(SYS_write, 1, bad, 10));
    errno = 0;
    probe("write-kernel", syscall(SYS_write, 1, kernelish, 10));
    errno = 0;
    probe("clock_gettime", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, bad));
    errno = 0;
    probe("uname", syscall(SYS_uname, bad));
    puts("alive");
    return 0;
}
