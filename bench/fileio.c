/* bench/fileio.c: file-system throughput and metadata rates, for bench/files.sh.
 *
 *   fileio [-m MIB] [-n FILES] [-b BLOCK] [-p seq|files|all] DIR
 *
 * seq:   writes MIB MiB (default 32) to DIR/fileio.dat in BLOCK-byte write(2)s (default
 *        65536), then fsync(2)s it (timed on its own), then reads it back in BLOCK-byte
 *        read(2)s through a fresh descriptor, checking a stamp in every 4 KiB page, then
 *        unlinks it.
 *        Nothing drops caches: on Linux the read is served from the page cache.
 * files: in DIR/fileio.d, creates FILES empty files (default 2000; open O_CREAT|O_EXCL then
 *        close), stats each (stat(2)), unlinks each, then removes the directory.
 *
 * Output, one key=value per line (bench/files.sh parses it):
 *   write_bytes write_ns write_MBps fsync_ns read_bytes read_ns read_MBps
 *   create_n create_ns create_ops stat_n stat_ns stat_ops unlink_n unlink_ns unlink_ops
 * MBps is 10^6 bytes per second; ops is operations per second; ns is elapsed
 * clock_gettime(CLOCK_MONOTONIC) time of the phase. Under QEMU's -icount shift=0 a guest's
 * clocks are virtual (1 ns per guest instruction while the CPU runs), so *_ns is then the
 * guest instruction count of the phase plus any virtual time spent halted.
 * On any error: "error=<phase>: <strerror>" and exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *dir;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *phase)
{
    printf("error=%s: %s\n", phase, strerror(errno));
    fflush(stdout);
    exit(1);
}

static double per_sec(uint64_t amount, uint64_t ns)
{
    return ns ? (double)amount * 1e9 / (double)ns : 0.0;
}

/* The first 8-byte word of every 4 KiB page of block i holds (i << 32 | page index), the
 * rest a fixed pattern, so a read that returns the wrong block or page is caught while the
 * user-space work per block stays small (musl's memcmp is byte by byte). */
#define STAMP_WORDS 512 /* 4 KiB in 8-byte words */
static void stamp(uint64_t *buf, size_t words, uint64_t block)
{
    for (size_t w = 0; w < words; w += STAMP_WORDS)
        buf[w] = block << 32 | w / STAMP_WORDS;
}

static int stamped(const uint64_t *buf, size_t words, uint64_t block)
{
    for (size_t w = 0; w < words; w += STAMP_WORDS)
        if (buf[w] != (block << 32 | w / STAMP_WORDS) || buf[w + 1] != 0x5a5a5a5a5a5a5a5aull)
            return 0;
    return 1;
}

static void seq(uint64_t mib, size_t block)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/fileio.dat", dir);
    uint64_t total = mib << 20, blocks = total / block;
    size_t words = block / 8;
    uint64_t *buf = malloc(block);
    if (!buf)
        fail("malloc");
    memset(buf, 0x5a, block);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail("open for write");
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < blocks; i++) {
        stamp(buf, words, i);
        ssize_t n = write(fd, buf, block);
        if (n != (ssize_t)block) {
            if (n >= 0)
                errno = EIO;
            fail("write");
        }
    }
    uint64_t t1 = now_ns();
    if (fsync(fd) != 0)
        fail("fsync");
    uint64_t t2 = now_ns();
    if (close(fd) != 0)
        fail("close after write");

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail("open for read");
    uint64_t got = 0;
    uint64_t t3 = now_ns();
    for (uint64_t i = 0; i < blocks; i++) {
        size_t have = 0;
        while (have < block) {
            ssize_t n = read(fd, (char *)buf + have, block - have);
            if (n < 0)
                fail("read");
            if (n == 0) {
                errno = EIO;
                fail("read: short file");
            }
            have += (size_t)n;
        }
        if (!stamped(buf, words, i)) {
            errno = EIO;
            fail("read: wrong contents");
        }
        got += have;
    }
    char extra;
    if (read(fd, &extra, 1) != 0) {
        errno = EIO;
        fail("read: file longer than written");
    }
    uint64_t t4 = now_ns();
    close(fd);
    if (unlink(path) != 0)
        fail("unlink data file");

    printf("write_bytes=%llu\nwrite_ns=%llu\nwrite_MBps=%.1f\nfsync_ns=%llu\n",
           (unsigned long long)total, (unsigned long long)(t1 - t0),
           per_sec(total, t1 - t0) / 1e6, (unsigned long long)(t2 - t1));
    printf("read_bytes=%llu\nread_ns=%llu\nread_MBps=%.1f\n", (unsigned long long)got,
           (unsigned long long)(t4 - t3), per_sec(got, t4 - t3) / 1e6);
    free(buf);
}

static void report(const char *what, unsigned n, uint64_t ns)
{
    printf("%s_n=%u\n%s_ns=%llu\n%s_ops=%.1f\n", what, n, what, (unsigned long long)ns, what,
           per_sec(n, ns));
}

static void files(unsigned n)
{
    char sub[4096], path[4200];
    snprintf(sub, sizeof sub, "%s/fileio.d", dir);
    if (mkdir(sub, 0755) != 0)
        fail("mkdir");

    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%05u", sub, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            fail("create");
        if (close(fd) != 0)
            fail("close after create");
    }
    uint64_t t1 = now_ns();
    for (unsigned i = 0; i < n; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/f%05u", sub, i);
        if (stat(path, &st) != 0)
            fail("stat");
        if (!S_ISREG(st.st_mode) || st.st_size != 0) {
            errno = EIO;
            fail("stat: not an empty regular file");
        }
    }
    uint64_t t2 = now_ns();
    for (unsigned i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%05u", sub, i);
        if (unlink(path) != 0)
            fail("unlink");
    }
    uint64_t t3 = now_ns();
    if (rmdir(sub) != 0)
        fail("rmdir (files left behind?)");

    report("create", n, t1 - t0);
    report("stat", n, t2 - t1);
    report("unlink", n, t3 - t2);
}

static void usage(void)
{
    fprintf(stderr, "usage: fileio [-m MIB] [-n FILES] [-b BLOCK] [-p seq|files|all] DIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long mib = 32, nfiles = 2000, block = 65536;
    const char *phase = "all";
    int c;
    while ((c = getopt(argc, argv, "m:n:b:p:")) != -1) {
        switch (c) {
        case 'm': mib = strtoul(optarg, NULL, 0); break;
        case 'n': nfiles = strtoul(optarg, NULL, 0); break;
        case 'b': block = strtoul(optarg, NULL, 0); break;
        case 'p': phase = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || block == 0 || block % 4096 != 0 || (1ul << 20) % block != 0 ||
        nfiles > 99999)
        usage();
    dir = argv[optind];
    int do_seq = !strcmp(phase, "seq") || !strcmp(phase, "all");
    int do_files = !strcmp(phase, "files") || !strcmp(phase, "all");
    if (!do_seq && !do_files)
        usage();

    printf("dir=%s\nmib=%lu\nblock=%lu\nfiles=%lu\n", dir, mib, block, nfiles);
    if (do_seq)
        seq(mib, block);
    if (do_files)
        files((unsigned)nfiles);
    printf("done=1\n");
    return 0;
}
