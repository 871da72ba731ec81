/* Creates COUNT files (argv[2]) in DIR/many (DIR is argv[1]), each holding its own name, with
 * no fsync anywhere, renames every tenth one, then ends as argv[3] says: "exit" (exit status
 * 0) or "abort" (killed by SIGABRT). Kiln keeps a volume's metadata in memory and writes it
 * back at the end of the VM either way; the test then lists and reads the volume on the host. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *path)
{
    printf("FAIL %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("usage: vol_many DIR COUNT exit|abort\n");
        return 2;
    }
    int count = atoi(argv[2]);
    char path[512], to[512], name[64];
    snprintf(path, sizeof path, "%s/many", argv[1]);
    if (mkdir(path, 0755) != 0) die("mkdir", path);
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof name, "f%04d.txt", i);
        snprintf(path, sizeof path, "%s/many/%s", argv[1], name);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0) die("open", path);
        size_t len = strlen(name);
        if (write(fd, name, len) != (ssize_t)len) die("write", path);
        if (close(fd) != 0) die("close", path);
        if (i % 10 == 9) {
            snprintf(to, sizeof to, "%s/many/renamed %04d", argv[1], i);
            if (rename(path, to) != 0) die("rename", path);
        }
    }
    printf("created %d\n", count);
    fflush(stdout);
    if (strcmp(argv[3], "abort") == 0) abort();
    return 0;
}
