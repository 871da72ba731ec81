/* Writes files on a volume mounted at argv[1] and makes them durable (fsync, then a clean
 * exit): a small text file, a 200 KiB patterned file written in odd-sized pieces, a file in a
 * subdirectory that is renamed into place, and a file that is created and deleted. */
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

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/data";
    int fd = open(at(dir, "greeting.txt"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die("open greeting.txt");
    const char *msg = "persisted across boots\n";
    if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg)) die("write greeting.txt");
    if (fsync(fd) != 0) die("fsync greeting.txt");
    if (close(fd) != 0) die("close greeting.txt");

    fd = open(at(dir, "pattern.bin"), O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) die("open pattern.bin");
    static unsigned char buf[200 * 1024];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 7 + i / 251);
    size_t off = 0, step = 1;
    while (off < sizeof buf) {
        size_t n = step < sizeof buf - off ? step : sizeof buf - off;
        if (write(fd, buf + off, n) != (ssize_t)n) die("write pattern.bin");
        off += n;
        step = step * 3 + 1;
    }
    if (fdatasync(fd) != 0) die("fdatasync pattern.bin");
    close(fd);

    if (mkdir(at(dir, "sub dir"), 0755) != 0 && errno != EEXIST) die("mkdir");
    fd = open(at(dir, "sub dir/tmp name"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) die("open tmp name");
    if (write(fd, "renamed\n", 8) != 8) die("write tmp name");
    close(fd);
    char from[512];
    snprintf(from, sizeof from, "%s/sub dir/tmp name", dir);
    if (rename(from, at(dir, "sub dir/final name.txt")) != 0) die("rename");

    fd = open(at(dir, "gone"), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) die("open gone");
    close(fd);
    if (unlink(at(dir, "gone")) != 0) die("unlink");
    printf("wrote %s\n", dir);
    return 0;
}
