/* One file on tmpfs of PERCENT % of the guest's RAM (sysinfo totalram; argv[1], default 60),
 * in DIR (argv[2], default /tmp): written in 1 MiB write(2)s of a pattern that depends on
 * the offset, read back in 256 KiB read(2)s through a new descriptor and checked word by word,
 * with a checksum of each pass; then a 1 TiB sparse extension (ftruncate) that must read as
 * zeroes and take no memory (st_blocks unchanged), and a truncation back to 1 MiB.
 *
 * Output: "big: W MiB of R MiB RAM, write sum S, read sum S" then "big: ok", exit 0; any
 * failure prints "FAIL ..." and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

static void die(const char *what)
{
    printf("FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The 8-byte word at byte offset `off` (a multiple of 8). */
static uint64_t word_at(uint64_t off)
{
    uint64_t x = off * 0x9E3779B97F4A7C15ull + 0x1234567;
    x ^= x >> 29;
    return x * 0xBF58476D1CE4E5B9ull;
}

int main(int argc, char **argv)
{
    int percent = argc > 1 ? atoi(argv[1]) : 60;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    struct sysinfo si;
    if (sysinfo(&si) != 0) die("sysinfo");
    uint64_t ram = (uint64_t)si.totalram * si.mem_unit;
    enum { WBLOCK = 1 << 20, RBLOCK = 256 << 10 };
    uint64_t size = ram / 100 * percent / WBLOCK * WBLOCK;

    char path[256];
    snprintf(path, sizeof path, "%s/big.bin", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) die("open for writing");
    static uint64_t buf[WBLOCK / 8];
    uint64_t wsum = 0;
    for (uint64_t off = 0; off < size; off += WBLOCK) {
        for (size_t i = 0; i < WBLOCK / 8; i++) {
            buf[i] = word_at(off + i * 8);
            wsum += buf[i] ^ (off + i * 8);
        }
        ssize_t n = write(fd, buf, WBLOCK);
        if (n != WBLOCK) {
            printf("FAIL write at %" PRIu64 " MiB of %" PRIu64 ": %zd (%s)\n", off >> 20,
                   size >> 20, n, strerror(errno));
            return 1;
        }
    }
    if (close(fd) != 0) die("close after writing");

    struct stat st;
    if (stat(path, &st) != 0) die("stat");
    if ((uint64_t)st.st_size != size) {
        printf("FAIL size %lld, want %" PRIu64 "\n", (long long)st.st_size, size);
        return 1;
    }
    fd = open(path, O_RDONLY);
    if (fd < 0) die("open for reading");
    uint64_t rsum = 0, off = 0;
    for (;;) {
        ssize_t n = read(fd, buf, RBLOCK);
        if (n < 0) die("read");
        if (n == 0) break;
        if (n % 8 != 0) {
            printf("FAIL read returned %zd bytes at %" PRIu64 "\n", n, off);
            return 1;
        }
        for (size_t i = 0; i < (size_t)n / 8; i++) {
            uint64_t at = off + i * 8;
            if (buf[i] != word_at(at)) {
                printf("FAIL byte %" PRIu64 ": %016" PRIx64 ", want %016" PRIx64 "\n", at,
                       buf[i], word_at(at));
                return 1;
            }
            rsum += buf[i] ^ at;
        }
        off += (uint64_t)n;
    }
    if (off != size) {
        printf("FAIL read %" PRIu64 " bytes, want %" PRIu64 "\n", off, size);
        return 1;
    }
    printf("big: %" PRIu64 " MiB of %" PRIu64 " MiB RAM, write sum %016" PRIx64
           ", read sum %016" PRIx64 "\n",
           size >> 20, ram >> 20, wsum, rsum);
    if (wsum != rsum) {
        printf("FAIL checksums differ\n");
        return 1;
    }
    close(fd);

    /* A hole of 1 TiB on top: no memory, zeroes. */
    blkcnt_t blocks = st.st_blocks;
    uint64_t huge = (uint64_t)1 << 40;
    if (truncate(path, (off_t)huge) != 0) die("truncate to 1 TiB");
    if (stat(path, &st) != 0) die("stat after growing");
    if ((uint64_t)st.st_size != huge || st.st_blocks != blocks) {
        printf("FAIL after growing: size %lld blocks %lld, want %" PRIu64 " and %lld\n",
               (long long)st.st_size, (long long)st.st_blocks, huge, (long long)blocks);
        return 1;
    }
    fd = open(path, O_RDONLY);
    if (fd < 0) die("open the sparse file");
    char tail[4096];
    memset(tail, 0x55, sizeof tail);
    if (pread(fd, tail, sizeof tail, (off_t)(huge - sizeof tail)) != (ssize_t)sizeof tail)
        die("pread at the end of the hole");
    for (size_t i = 0; i < sizeof tail; i++) {
        if (tail[i] != 0) {
            printf("FAIL the hole reads %d at %zu\n", tail[i], i);
            return 1;
        }
    }
    close(fd);
    if (truncate(path, WBLOCK) != 0) die("truncate to 1 MiB");
    if (stat(path, &st) != 0) die("stat after shrinking");
    if (st.st_size != WBLOCK || st.st_blocks > 2 * WBLOCK / 512) {
        printf("FAIL after shrinking: size %lld blocks %lld\n", (long long)st.st_size,
               (long long)st.st_blocks);
        return 1;
    }
    if (unlink(path) != 0) die("unlink");
    printf("big: ok\n");
    return 0;
}
