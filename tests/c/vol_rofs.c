/* On a read-only volume at argv[1]: reading works, every kind of write fails with EROFS. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int bad = 0;
static void expect_erofs(const char *what, int rc) {
    if (rc == -1 && errno == EROFS) {
        printf("%s: EROFS\n", what);
    } else {
        printf("%s: expected EROFS, got rc=%d errno=%s\n", what, rc, rc == -1 ? strerror(errno) : "-");
        bad = 1;
    }
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/data";
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/hello.txt", dir);
    int fd = open(p, O_RDONLY);
    char buf[64] = {0};
    if (fd < 0 || read(fd, buf, sizeof buf - 1) < 0) {
        printf("read %s failed: %s\n", p, strerror(errno));
        return 1;
    }
    close(fd);
    printf("read: %s", buf);
    expect_erofs("open O_WRONLY", open(p, O_WRONLY));
    snprintf(q, sizeof q, "%s/new.txt", dir);
    expect_erofs("creat", open(q, O_CREAT | O_WRONLY, 0644));
    expect_erofs("unlink", unlink(p));
    expect_erofs("mkdir", mkdir(q, 0755));
    expect_erofs("rename", rename(p, q));
    return bad;
}
