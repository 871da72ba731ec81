/*
 * Kiln's vDSO: clock_gettime, gettimeofday and time without a syscall, as Linux's vDSO does.
 * The kernel maps this image into the app and fills `kiln_vvar` (the second page) with the
 * clock's constants: TSC at boot, nanoseconds per tick as a 32.32 fixed-point factor, and
 * the wall-clock time at boot. Anything else falls back to the real syscall.
 */
    .section .kiln_vvar, "a"
    .balign 8
    .globl kiln_vvar
    .hidden kiln_vvar
kiln_vvar:
    .quad 0     /* 0:  TSC at boot */
    .quad 0     /* 8:  ns per tick, 32.32 fixed point */
    .quad 0     /* 16: wall-clock ns at boot */
    .quad 0     /* 24: reserved */

    .text
    .balign 16
/* Nanoseconds since boot in %rax; clobbers %rdx. */
monotonic_ns:
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    sub kiln_vvar+0(%rip), %rax
    mulq kiln_vvar+8(%rip)
    shrd $32, %rdx, %rax
    ret

/* int clock_gettime(clockid_t clk, struct timespec *ts) */
    .globl __vdso_clock_gettime
    .type __vdso_clock_gettime, @function
__vdso_clock_gettime:
    cmp $7, %edi
    ja 9f
    cmp $2, %edi          /* CPU-time clocks: the kernel accounts them */
    je 9f
    cmp $3, %edi
    je 9f
    call monotonic_ns
    test %edi, %edi       /* CLOCK_REALTIME */
    je 1f
    cmp $5, %edi          /* CLOCK_REALTIME_COARSE */
    jne 2f
1:  add kiln_vvar+16(%rip), %rax
2:  xor %edx, %edx
    mov $1000000000, %ecx
    div %rcx
    mov %rax, 0(%rsi)
    mov %rdx, 8(%rsi)
    xor %eax, %eax
    ret
9:  mov $228, %eax
    syscall
    ret
    .size __vdso_clock_gettime, .-__vdso_clock_gettime

/* int gettimeofday(struct timeval *tv, struct timezone *tz) */
    .globl __vdso_gettimeofday
    .type __vdso_gettimeofday, @function
__vdso_gettimeofday:
    test %rsi, %rsi       /* a timezone: let the kernel fill it */
    jne 9f
    test %rdi, %rdi
    je 1f
    call monotonic_ns
    add kiln_vvar+16(%rip), %rax
    xor %edx, %edx
    mov $1000000000, %ecx
    div %rcx
    mov %rax, 0(%rdi)
    mov %rdx, %rax
    xor %edx, %edx
    mov $1000, %ecx
    div %rcx
    mov %rax, 8(%rdi)
1:  xor %eax, %eax
    ret
9:  mov $96, %eax
    syscall
    ret
    .size __vdso_gettimeofday, .-__vdso_gettimeofday

/* time_t time(time_t *t) */
    .globl __vdso_time
    .type __vdso_time, @function
__vdso_time:
    call monotonic_ns
    add kiln_vvar+16(%rip), %rax
    xor %edx, %edx
    mov $1000000000, %ecx
    div %rcx
    test %rdi, %rdi
    je 1f
    mov %rax, (%rdi)
1:  ret
    .size __vdso_time, .-__vdso_time

/* int clock_getres(clockid_t clk, struct timespec *res): always the syscall */
    .globl __vdso_clock_getres
    .type __vdso_clock_getres, @function
__vdso_clock_getres:
    mov $229, %eax
    syscall
    ret
    .size __vdso_clock_getres, .-__vdso_clock_getres

/* int getcpu(unsigned *cpu, unsigned *node, void *cache): always the syscall */
    .globl __vdso_getcpu
    .type __vdso_getcpu, @function
__vdso_getcpu:
    mov $309, %eax
    syscall
    ret
    .size __vdso_getcpu, .-__vdso_getcpu

    .weak clock_gettime
    .set clock_gettime, __vdso_clock_gettime
    .weak gettimeofday
    .set gettimeofday, __vdso_gettimeofday
    .weak time
    .set time, __vdso_time
    .weak clock_getres
    .set clock_getres, __vdso_clock_getres
    .weak getcpu
    .set getcpu, __vdso_getcpu

    .section .note.GNU-stack, "", @progbits
