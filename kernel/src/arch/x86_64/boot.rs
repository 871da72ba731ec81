//! PVH entry: QEMU (or Firecracker, cloud-hypervisor) jumps here in 32-bit protected mode with
//! paging off and `ebx` holding the physical address of `hvm_start_info`. The stub zeroes .bss,
//! builds early page tables (identity for the first GiB, the same GiB at the direct-map base and
//! at the kernel's higher-half base), enters long mode and calls [`crate::kmain`] on the boot
//! stack. Everything after this runs in the higher half.

use core::arch::global_asm;

/// Size of the stack `kmain` starts on (also the kernel stack for syscalls).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

// XEN_ELFNOTE_PHYS32_ENTRY (18): the 32-bit physical entry point.
global_asm!(
    r#"
    .pushsection .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32
    .p2align 2
    .popsection
    "#,
    options(att_syntax)
);

global_asm!(
    r#"
    .set KERNEL_VMA, 0xffffffff80000000

    .pushsection .boot.text, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi

    /* Zero .bss (page tables and boot stack live there). */
    mov $(__bss_start - KERNEL_VMA), %edi
    mov $(__bss_end - KERNEL_VMA), %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* PD: 512 x 2 MiB pages covering the first GiB. */
    mov $(boot_pd - KERNEL_VMA), %edi
    mov $0x83, %eax
    mov $512, %ecx
1:  mov %eax, (%edi)
    movl $0, 4(%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 1b

    mov $(boot_pd - KERNEL_VMA + 3), %eax
    mov %eax, (boot_pdpt_low - KERNEL_VMA)
    mov %eax, (boot_pdpt_high - KERNEL_VMA + 510 * 8)
    mov $(boot_pdpt_low - KERNEL_VMA + 3), %eax
    mov %eax, (boot_pml4 - KERNEL_VMA)
    mov %eax, (boot_pml4 - KERNEL_VMA + 256 * 8)
    mov $(boot_pdpt_high - KERNEL_VMA + 3), %eax
    mov %eax, (boot_pml4 - KERNEL_VMA + 511 * 8)

    /* PAE, then long mode with NX, then paging with write protection. */
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $(boot_pml4 - KERNEL_VMA), %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x900, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax
    mov %eax, %cr0

    lgdt boot_gdtr
    ljmp $0x08, $boot_long_mode

    .code64
boot_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    movabs $boot_stack_top, %rsp
    xor %ebp, %ebp
    mov %esi, %edi
    movabs $kmain, %rax
    call *%rax
2:  cli
    hlt
    jmp 2b

    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdtr:
    .word boot_gdtr - boot_gdt - 1
    .long boot_gdt
    .popsection

    .pushsection .bss.boot, "aw", @nobits
    .p2align 12
boot_pml4: .skip 4096
boot_pdpt_low: .skip 4096
boot_pdpt_high: .skip 4096
boot_pd: .skip 4096
    .global boot_stack_bottom
boot_stack_bottom: .skip {stack_size}
    .global boot_stack_top
boot_stack_top:
    .popsection
    "#,
    stack_size = const BOOT_STACK_SIZE,
    options(att_syntax)
);
