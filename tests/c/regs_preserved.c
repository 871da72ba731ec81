/* Checks the syscall ABI as Linux keeps it: every general-purpose register except rax, rcx
 * and r11 survives a syscall, the red zone below rsp is never written by the kernel (also not
 * while the app sleeps and timer interrupts arrive), and SSE registers survive too. */
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((used)) uint64_t in_regs[12] = {0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
                               0x4444444444444444, 0x5555555555555555, 0x6666666666666666,
                               0x7777777777777777, 0x8888888888888888, 0x9999999999999999,
                               0xaaaaaaaaaaaaaaaa, 0xbbbbbbbbbbbbbbbb, 0xcccccccccccccccc};
__attribute__((used)) uint64_t out_regs[12];

static int check_gprs(void) {
    __asm__ volatile(
        "push %%rbp\n"
        "push %%rbx\n"
        "push %%r12\n"
        "push %%r13\n"
        "push %%r14\n"
        "push %%r15\n"
        "mov in_regs+0(%%rip), %%rbx\n"
        "mov in_regs+8(%%rip), %%rdx\n"
        "mov in_regs+16(%%rip), %%rsi\n"
        "mov in_regs+24(%%rip), %%rbp\n"
        "mov in_regs+32(%%rip), %%r8\n"
        "mov in_regs+40(%%rip), %%r9\n"
        "mov in_regs+48(%%rip), %%r10\n"
        "mov in_regs+56(%%rip), %%r12\n"
        "mov in_regs+64(%%rip), %%r13\n"
        "mov in_regs+72(%%rip), %%r14\n"
        "mov in_regs+80(%%rip), %%r15\n"
        "mov in_regs+88(%%rip), %%rdi\n"
        "mov $39, %%eax\n" /* getpid */
        "syscall\n"
        "mov %%rbx, out_regs+0(%%rip)\n"
        "mov %%rdx, out_regs+8(%%rip)\n"
        "mov %%rsi, out_regs+16(%%rip)\n"
        "mov %%rbp, out_regs+24(%%rip)\n"
        "mov %%r8, out_regs+32(%%rip)\n"
        "mov %%r9, out_regs+40(%%rip)\n"
        "mov %%r10, out_regs+48(%%rip)\n"
        "mov %%r12, out_regs+56(%%rip)\n"
        "mov %%r13, out_regs+64(%%rip)\n"
        "mov %%r14, out_regs+72(%%rip)\n"
        "mov %%r15, out_regs+80(%%rip)\n"
        "mov %%rdi, out_regs+88(%%rip)\n"
        "pop %%r15\n"
        "pop %%r14\n"
        "pop %%r13\n"
        "pop %%r12\n"
        "pop %%rbx\n"
        "pop %%rbp\n"
        :
        :
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
    int bad = 0;
    for (int i = 0; i < 12; i++) {
        if (in_regs[i] != out_regs[i]) {
            printf("register %d clobbered: %llx -> %llx\n", i, (unsigned long long)in_regs[i],
                   (unsigned long long)out_regs[i]);
            bad = 1;
        }
    }
    return bad;
}

/* Fills the 128 bytes below rsp, makes a syscall (nanosleep, so timer interrupts arrive while
 * the app is stopped in the kernel), and counts bytes that changed. Leaf asm: nothing else
 * may use the red zone meanwhile. */
static long check_red_zone(long nr, void *arg1) {
    long changed;
    __asm__ volatile(
        "lea -128(%%rsp), %%r8\n"
        "xor %%ecx, %%ecx\n"
        "1: movb $0xa5, (%%r8,%%rcx)\n"
        "inc %%rcx\n"
        "cmp $128, %%rcx\n"
        "jne 1b\n"
        "mov %1, %%rax\n"
        "mov %2, %%rdi\n"
        "xor %%esi, %%esi\n"
        "syscall\n"
        "lea -128(%%rsp), %%r8\n"
        "xor %%ecx, %%ecx\n"
        "xor %%edx, %%edx\n"
        "2: cmpb $0xa5, (%%r8,%%rcx)\n"
        "je 3f\n"
        "inc %%rdx\n"
        "3: inc %%rcx\n"
        "cmp $128, %%rcx\n"
        "jne 2b\n"
        "mov %%rdx, %0\n"
        : "=r"(changed)
        : "r"(nr), "r"(arg1)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r11", "memory");
    return changed;
}

static int check_sse(void) {
    double a = 1.5, b = 2.25;
    __asm__ volatile("movsd %0, %%xmm6\n movsd %1, %%xmm7" : : "m"(a), "m"(b) : "xmm6", "xmm7");
    struct timespec ts = {0, 20 * 1000 * 1000};
    syscall(SYS_nanosleep, &ts, 0);
    double c, d;
    __asm__ volatile("movsd %%xmm6, %0\n movsd %%xmm7, %1" : "=m"(c), "=m"(d));
    return !(c == a && d == b);
}

int main(void) {
    int bad = check_gprs();
    struct timespec ts = {0, 50 * 1000 * 1000};
    long rz_getpid = check_red_zone(SYS_getpid, 0);
    long rz_sleep = check_red_zone(SYS_nanosleep, &ts);
    if (rz_getpid || rz_sleep) {
        printf("red zone clobbered: %ld bytes (getpid), %ld bytes (nanosleep)\n", rz_getpid, rz_sleep);
        bad = 1;
    }
    if (check_sse()) {
        printf("xmm6/xmm7 clobbered across nanosleep\n");
        bad = 1;
    }
    printf(bad ? "abi broken\n" : "abi ok\n");
    return bad;
}
