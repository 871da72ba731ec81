/*
 * Anonymous memory mapping beyond the basics (mmap_probe.c): MAP_FIXED over a live mapping,
 * faults caught by a SIGSEGV handler, memory given back by munmap, mremap moves, huge
 * MAP_NORESERVE reservations, MAP_GROWSDOWN, guard pages, madvise(DONTNEED).
 * `mmap2_ops NAME` runs one sub-test; without an argument all run in order. Every line is
 * exact. A failed check prints "FAIL <test>:<line>: <what>" and exits 1.
 *
 * Sub-tests: fixed mprotect_fault munmap_reuse munmap_fault mremap_grow noreserve growsdown
 *            guard dontneed shared
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB (1024UL * 1024)

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            printf("FAIL %s:%d: ", __func__, __LINE__);                                      \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
            fflush(stdout);                                                                  \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static unsigned char *map(void *hint, size_t len, int prot, int flags)
{
    void *p = mmap(hint, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap(%p, %zu, %d, %#x): %s", hint, len, prot, flags,
          strerror(errno));
    return p;
}

static int all_bytes(const unsigned char *p, size_t len, unsigned char v)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

/* ---- faults: a SIGSEGV handler records si_addr/si_code and jumps back ------------------- */
static sigjmp_buf jb;
static volatile uintptr_t fault_addr;
static volatile int fault_code, faults;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    fault_addr = (uintptr_t)si->si_addr;
    fault_code = si->si_code;
    faults++;
    siglongjmp(jb, 1);
}

static void catch_segv(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
}

/* Touches *p (a write if `write`); returns 1 if that faulted at exactly p. */
static int faults_at(volatile unsigned char *p, int write)
{
    int before = faults;
    if (sigsetjmp(jb, 1) == 0) {
        if (write)
            *p = 0x5a;
        else
            (void)*p;
        return 0;
    }
    return faults == before + 1 && fault_addr == (uintptr_t)p;
}

static const char *code_name(int c)
{
    return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other";
}

/* ---- fixed: MAP_FIXED replaces part of a live mapping; NOREPLACE refuses ---------------- */
static void t_fixed(void)
{
    unsigned char *p = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(p, 0xaa, 4 * PAGE);
    unsigned char *q = map(p + PAGE, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
    CHECK(q == p + PAGE, "MAP_FIXED moved: %p vs %p", (void *)q, (void *)(p + PAGE));
    int replaced_zero = all_bytes(p + PAGE, 2 * PAGE, 0);
    int kept = all_bytes(p, PAGE, 0xaa) && all_bytes(p + 3 * PAGE, PAGE, 0xaa);
    void *r = mmap(p + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    int e = errno;
    printf("fixed: replaced_zero=%d kept=%d noreplace=%s\n", replaced_zero, kept,
           r == MAP_FAILED && e == EEXIST ? "EEXIST" : "mapped");
    munmap(p, 4 * PAGE);
}

/* ---- mprotect_fault: a write to a read-only page faults, then works again --------------- */
static void t_mprotect_fault(void)
{
    catch_segv();
    unsigned char *p = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    p[2 * PAGE + 5] = 1;
    CHECK(mprotect(p + 2 * PAGE, PAGE, PROT_READ) == 0, "mprotect: %s", strerror(errno));
    int w = faults_at(p + 2 * PAGE + 5, 1);
    int code = fault_code;
    int readable = p[2 * PAGE + 5] == 1;
    int neighbour = !faults_at(p + 3 * PAGE, 1);
    CHECK(mprotect(p + 2 * PAGE, PAGE, PROT_NONE) == 0, "mprotect none");
    int r = faults_at(p + 2 * PAGE + 100, 0);
    CHECK(mprotect(p + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
    int again = !faults_at(p + 2 * PAGE + 5, 1) && p[2 * PAGE + 5] == 0x5a;
    printf("mprotect_fault: write_faulted=%d code=%s still_readable=%d neighbour_writable=%d "
           "none_read_faulted=%d writable_again=%d\n",
           w, code_name(code), readable, neighbour, r, again);
    munmap(p, 4 * PAGE);
}

/* ---- munmap_reuse: 768 MiB mapped, touched and unmapped in turn in a 128 MiB guest ------- */
static void t_munmap_reuse(void)
{
    const size_t len = 32 * MIB;
    const int rounds = 24;
    unsigned char *first = NULL;
    int zeroed = 1;
    for (int r = 0; r < rounds; r++) {
        unsigned char *p = map(NULL, len, PROT_READ | PROT_WRITE, 0);
        if (!first)
            first = p;
        for (size_t i = 0; i < len; i += PAGE) {
            zeroed &= p[i] == 0;
            p[i] = (unsigned char)r + 1;
        }
        CHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
    }
    /* The address range itself can be mapped again at the same place. */
    unsigned char *again = map(first, len, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
    int same = again == first;
    zeroed &= all_bytes(again, PAGE, 0) && again[len - 1] == 0;
    munmap(again, len);
    printf("munmap_reuse: rounds=%d mib=%lu zeroed=%d same_address_reusable=%d\n", rounds,
           (unsigned long)(rounds * len / MIB), zeroed, same);
}

/* ---- munmap_fault: an unmapped hole faults with SEGV_MAPERR ------------------------------ */
static void t_munmap_fault(void)
{
    catch_segv();
    unsigned char *p = map(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(p, 1, 3 * PAGE);
    CHECK(munmap(p + PAGE, PAGE) == 0, "munmap middle");
    int f = faults_at(p + PAGE + 64, 0);
    int code = fault_code;
    int rest = p[0] == 1 && p[2 * PAGE] == 1;
    printf("munmap_fault: hole_faulted=%d code=%s rest_intact=%d\n", f, code_name(code), rest);
}

/* ---- mremap_grow: growth that must move keeps the contents ------------------------------- */
static void t_mremap_grow(void)
{
    /* 8 pages, keep the first 4: the next 4 get a blocker so growth in place is impossible. */
    unsigned char *p = map(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, 0);
    unsigned char *blocker = map(p + 4 * PAGE, 4 * PAGE, PROT_READ, MAP_FIXED);
    CHECK(blocker == p + 4 * PAGE, "blocker");
    for (size_t i = 0; i < 4 * PAGE; i++)
        p[i] = (unsigned char)(i * 7 + 3);
    errno = 0;
    void *same = mremap(p, 4 * PAGE, 64 * PAGE, 0);
    int refused = same == MAP_FAILED && errno == ENOMEM;
    unsigned char *q = mremap(p, 4 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    CHECK(q != MAP_FAILED, "mremap MAYMOVE: %s", strerror(errno));
    int preserved = 1;
    for (size_t i = 0; i < 4 * PAGE; i++)
        preserved &= q[i] == (unsigned char)(i * 7 + 3);
    int tail_zero = all_bytes(q + 4 * PAGE, 60 * PAGE, 0);
    memset(q + 4 * PAGE, 0x11, 60 * PAGE); /* and it is writable */
    /* The old place is free again: NOREPLACE can map it. */
    void *old = mmap(p, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                     -1, 0);
    int old_free = old == p;
    if (old != MAP_FAILED)
        munmap(old, 4 * PAGE);
    munmap(blocker, 4 * PAGE);
    munmap(q, 64 * PAGE);

    /* A big region: 16 MiB grown to 48 MiB, every page's stamp kept. */
    size_t big = 16 * MIB;
    unsigned char *b = map(NULL, big, PROT_READ | PROT_WRITE, 0);
    for (size_t i = 0; i < big; i += PAGE)
        b[i] = (unsigned char)(i / PAGE * 13);
    unsigned char *b2 = mremap(b, big, 3 * big, MREMAP_MAYMOVE);
    CHECK(b2 != MAP_FAILED, "mremap big: %s", strerror(errno));
    int big_ok = 1;
    for (size_t i = 0; i < big; i += PAGE)
        big_ok &= b2[i] == (unsigned char)(i / PAGE * 13);
    b2[3 * big - 1] = 1;
    /* And shrinking in place. */
    unsigned char *b3 = mremap(b2, 3 * big, PAGE, 0);
    int shrunk = b3 == b2 && b3[0] == 0;
    munmap(b3, PAGE);
    printf("mremap_grow: in_place_refused=%d moved=%d preserved=%d tail_zero=%d old_free=%d "
           "big_preserved=%d shrunk=%d\n",
           refused, q != p, preserved, tail_zero, old_free, big_ok, shrunk);
}

/* ---- noreserve: 1 GiB of address space, a few pages touched ------------------------------ */
static void t_noreserve(void)
{
    const size_t len = 1024 * MIB;
    unsigned char *p = map(NULL, len, PROT_READ | PROT_WRITE, MAP_NORESERVE);
    size_t offs[19];
    int n = 0;
    for (size_t o = 0; o < len; o += 64 * MIB, n++)
        offs[n] = o + (size_t)n * 8 * PAGE;
    offs[n++] = len / 2 + 123;
    offs[n++] = len - 1;
    offs[n++] = PAGE;
    for (int i = 0; i < n; i++)
        p[offs[i]] = (unsigned char)(i + 1);
    int ok = 1;
    for (int i = 0; i < n; i++)
        ok &= p[offs[i]] == (unsigned char)(i + 1);
    ok &= p[len / 4 + 5] == 0;
    CHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
    /* Twice more: the reservation is address space, not memory. */
    for (int k = 0; k < 2; k++) {
        unsigned char *q = map(NULL, len, PROT_READ | PROT_WRITE, MAP_NORESERVE);
        q[len - PAGE] = 9;
        ok &= q[len - PAGE] == 9;
        munmap(q, len);
    }
    printf("noreserve: mapped_mib=%lu touched=%d ok=%d\n", (unsigned long)(len / MIB), n, ok);
}

/* ---- growsdown: a MAP_GROWSDOWN mapping is usable and grows on a touch below it ---------- */
static void t_growsdown(void)
{
    /* Far from every other mapping, so the stack guard gap never stops the growth. */
    void *hint = (void *)0x3e0000000000UL;
    unsigned char *p = map(hint, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_GROWSDOWN);
    memset(p, 0x33, 16 * PAGE);
    int usable = all_bytes(p, 16 * PAGE, 0x33);
    volatile unsigned char *below = p - PAGE;
    *below = 0x44; /* grows the mapping by a page */
    int grew = *below == 0x44;
    printf("growsdown: usable=%d grew=%d\n", usable, grew);
}

/* ---- guard: a PROT_NONE page between two usable ones ------------------------------------- */
static void t_guard(void)
{
    catch_segv();
    unsigned char *p = map(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, 0);
    CHECK(mprotect(p + PAGE, PAGE, PROT_NONE) == 0, "mprotect");
    int r = faults_at(p + PAGE, 0);
    int code = fault_code;
    int w = faults_at(p + 2 * PAGE - 1, 1);
    p[0] = 1;
    p[2 * PAGE] = 2;
    /* Fresh PROT_NONE mapping too (how thread-stack guards are made). */
    unsigned char *g = map(NULL, PAGE, PROT_NONE, 0);
    int fresh = faults_at(g + 17, 0);
    printf("guard: read_faulted=%d code=%s write_faulted=%d fresh_prot_none_faulted=%d "
           "neighbours_ok=%d\n",
           r, code_name(code), w, fresh, p[0] == 1 && p[2 * PAGE] == 2);
}

/* ---- dontneed: MADV_DONTNEED gives back zero pages --------------------------------------- */
static void t_dontneed(void)
{
    unsigned char *p = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(p, 0x55, 4 * PAGE);
    CHECK(madvise(p + PAGE, 2 * PAGE, MADV_DONTNEED) == 0, "madvise: %s", strerror(errno));
    int zeroed = all_bytes(p + PAGE, 2 * PAGE, 0);
    int kept = all_bytes(p, PAGE, 0x55) && all_bytes(p + 3 * PAGE, PAGE, 0x55);
    p[PAGE] = 7; /* still mapped and writable */
    CHECK(madvise(p, 4 * PAGE, MADV_WILLNEED) == 0, "MADV_WILLNEED");
    printf("dontneed: zeroed=%d kept=%d writable=%d\n", zeroed, kept, p[PAGE] == 7);
    munmap(p, 4 * PAGE);
}

/* ---- shared: MAP_SHARED anonymous, MAP_POPULATE, MAP_STACK ------------------------------- */
static void t_shared(void)
{
    unsigned char *s =
        mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED, "MAP_SHARED: %s", strerror(errno));
    s[PAGE] = 3;
    unsigned char *pop = map(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_POPULATE);
    unsigned char *stk = map(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_STACK);
    stk[8 * PAGE - 1] = 1;
    printf("shared: shared_ok=%d populate_zero=%d stack_ok=%d\n", s[PAGE] == 3,
           all_bytes(pop, 8 * PAGE, 0), stk[8 * PAGE - 1] == 1);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"fixed", t_fixed},         {"mprotect_fault", t_mprotect_fault},
    {"munmap_reuse", t_munmap_reuse}, {"munmap_fault", t_munmap_fault},
    {"mremap_grow", t_mremap_grow},   {"noreserve", t_noreserve},
    {"growsdown", t_growsdown},       {"guard", t_guard},
    {"dontneed", t_dontneed},         {"shared", t_shared},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (argc < 2 || strcmp(argv[1], tests[i].name) == 0) {
            tests[i].fn();
            ran++;
        }
    if (!ran) {
        printf("unknown test %s\n", argv[1]);
        return 2;
    }
    return 0;
}
