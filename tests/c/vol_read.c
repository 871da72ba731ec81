/* Reads back what vol_write left on the volume at argv[1] and checks every byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what) {
    printf("FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static char path[512];
static const char *at(const char *dir, const char *name) {
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static size_t slurp(const char *p, unsigned char *buf, size_t cap) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) die(p);
    size_t got = 0;
    ssize_t n;
    while ((n = read(fd, buf + got, cap - got)) > 0) got += n;
    if (n < 0) die("read");
    close(fd);
    return got;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/data";
    static unsigned char buf[256 * 1024];
    size_t n = slurp(at(dir, "greeting.txt"), buf, sizeof buf);
    fwrite(buf, 1, n, stdout);
    n = slurp(at(dir, "pattern.bin"), buf, sizeof buf);
    if (n != 200 * 1024) {
        printf("FAIL pattern.bin has %zu bytes\n", n);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (buf[i] != (unsigned char)(i * 7 + i / 251)) {
            printf("FAIL pattern.bin byte %zu\n", i);
            return 1;
        }
    printf("pattern.bin ok\n");
    n = slurp(at(dir, "sub dir/final name.txt"), buf, sizeof buf);
    fwrite(buf, 1, n, stdout);
    struct stat st;
    if (stat(at(dir, "gone"), &st) == 0 || errno != ENOENT) die("gone still exists");
    printf("read %s\n", dir);
    return 0;
}
