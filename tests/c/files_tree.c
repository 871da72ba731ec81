/* Walks the tree under argv[1] (default /data): lists every directory with readdir, opens
 * and reads every file, and checks that each file holds its own path relative to the root
 * followed by a newline. Prints the counts; exits 1 on any mismatch. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static long files, dirs, bytes, bad;

static void walk(const char *root, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) {
        printf("cannot open directory %s\n", path);
        bad++;
        return;
    }
    dirs++;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char child[4096];
        snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (e->d_type == DT_DIR) {
            walk(root, child);
            continue;
        }
        char full[8192], buf[4096];
        snprintf(full, sizeof full, "%s/%s", root, child);
        int fd = open(full, O_RDONLY);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
        if (fd >= 0)
            close(fd);
        files++;
        size_t want = strlen(child);
        if (n != (ssize_t)want + 1 || memcmp(buf, child, want) != 0 || buf[want] != '\n') {
            if (bad < 5)
                printf("bad content in %s (%zd bytes)\n", full, n);
            bad++;
        } else {
            bytes += n;
        }
    }
    closedir(d);
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : "/data";
    walk(root, "");
    printf("tree: %ld files, %ld directories, %ld bytes, %ld bad\n", files, dirs, bytes, bad);
    return bad != 0;
}
