/*
 * Many malloc/realloc/free calls of sizes 16 B .. 1 MiB (small ones come from brk, large
 * ones from mmap in both musl and glibc), with contents checked before every free, then one
 * 32 MiB calloc that must read as zero. Prints a checksum that depends only on the
 * pseudo-random sequence, never on addresses, so it is the same everywhere.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 64
#define ROUNDS 600
#define PAGE 4096

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

struct slot {
    unsigned char *p;
    size_t n;
    uint32_t seed;
};

static void fill(struct slot *s)
{
    memset(s->p, (int)(s->seed & 0xff), s->n);
    /* A distinct word in each page catches two pages mapped to the same frame. */
    for (size_t off = 0; off + 4 <= s->n; off += PAGE) {
        uint32_t w = s->seed ^ (uint32_t)(off / PAGE);
        memcpy(s->p + off, &w, 4);
    }
}

static uint64_t check(const struct slot *s, size_t valid)
{
    uint64_t sum = 0;
    for (size_t off = 0; off + 4 <= valid; off += PAGE) {
        uint32_t w;
        memcpy(&w, s->p + off, 4);
        if (w != (s->seed ^ (uint32_t)(off / PAGE))) {
            printf("corrupt word at offset %zu of %zu-byte block\n", off, s->n);
            exit(1);
        }
        sum += w;
        if (off + 5 <= valid && s->p[off + 4] != (unsigned char)(s->seed & 0xff)) {
            printf("corrupt byte at offset %zu of %zu-byte block\n", off + 4, s->n);
            exit(1);
        }
    }
    if (valid > 4 && s->p[valid - 1] != (unsigned char)(s->seed & 0xff) &&
        (valid - 1) % PAGE >= 4) {
        printf("corrupt last byte of %zu-byte block\n", s->n);
        exit(1);
    }
    return sum;
}

static size_t pick_size(void)
{
    /* Log-uniform in [16, 1 MiB]: as many tiny blocks as big ones. */
    unsigned shift = 4 + (unsigned)(next() % 17);
    size_t lo = (size_t)1 << shift;
    return lo + (size_t)(next() % lo);
}

int main(void)
{
    struct slot slots[SLOTS] = {0};
    uint64_t checksum = 0;
    unsigned long allocs = 0, frees = 0, reallocs = 0;

    for (int round = 0; round < ROUNDS; round++) {
        struct slot *s = &slots[next() % SLOTS];
        if (s->p) {
            checksum = checksum * 31 + check(s, s->n);
            if (next() % 4 == 0) {
                /* Grow or shrink in place or by moving; the common prefix must survive. */
                size_t n = pick_size();
                unsigned char *q = realloc(s->p, n);
                if (!q) {
                    printf("realloc(%zu) failed\n", n);
                    return 1;
                }
                s->p = q;
                check(s, n < s->n ? n : s->n);
                s->n = n;
                fill(s);
                reallocs++;
                continue;
            }
            free(s->p);
            s->p = NULL;
            frees++;
        } else {
            s->n = pick_size();
            s->seed = (uint32_t)next();
            s->p = malloc(s->n);
            if (!s->p) {
                printf("malloc(%zu) failed\n", s->n);
                return 1;
            }
            fill(s);
            allocs++;
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].p) {
            checksum = checksum * 31 + check(&slots[i], slots[i].n);
            free(slots[i].p);
            frees++;
        }
    }

    size_t big = (size_t)32 << 20;
    uint64_t *z = calloc(big / 8, 8);
    if (!z) {
        printf("calloc(32 MiB) failed\n");
        return 1;
    }
    for (size_t i = 0; i < big / 8; i++) {
        if (z[i] != 0) {
            printf("calloc memory not zero at word %zu\n", i);
            return 1;
        }
    }
    for (size_t i = 0; i < big / 8; i += PAGE / 8)
        z[i] = i;
    for (size_t i = 0; i < big / 8; i += PAGE / 8)
        checksum += z[i];
    free(z);

    printf("allocs=%lu reallocs=%lu frees=%lu\n", allocs, reallocs, frees);
    printf("checksum=%016llx\n", (unsigned long long)checksum);
    puts("malloc ok");
    return 0;
}
