/* Prints what uname(2) reports; Linux programs expect sysname "Linux" and machine "x86_64". */
#include <stdio.h>
#include <sys/utsname.h>

int main(void)
{
    struct utsname u;
    if (uname(&u) != 0) {
        puts("uname failed");
        return 1;
    }
    printf("sysname=%s\n", u.sysname);
    printf("machine=%s\n", u.machine);
    printf("release=%s\n", u.release);
    return 0;
}
