/* An unknown syscall number must fail with ENOSYS, not crash or hang. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    errno = 0;
    long r = syscall(999);
    printf("ret=%ld enosys=%d\n", r, errno == ENOSYS);
    return 0;
}
