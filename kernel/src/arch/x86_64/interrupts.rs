//! The IDT and the interrupt entry stubs: 256 vectors, each on an IST stack, each saving every
//! general-purpose register into a [`TrapFrame`] before calling [`interrupt_dispatch`].

use core::arch::{asm, global_asm};

use spin::Once;

use super::gdt::{IST_DOUBLE_FAULT, IST_EXCEPTION, IST_IRQ, IST_MACHINE_CHECK, IST_NMI, IST_PAGE_FAULT, KERNEL_CS};

/// Registers saved by the entry stub, lowest address first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// Each stub is at most 12 bytes and aligned to 16, so vector N's stub is at isr_stubs + 16*N.
// Vectors 8, 10-14, 17, 21, 29 and 30 push an error code; the others push a zero in its place.
global_asm!(
    r#"
    .pushsection .text.isr, "ax"
    .p2align 4
    .global isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
    .p2align 4
    .if vec - 8
    .if vec - 10
    .if vec - 11
    .if vec - 12
    .if vec - 13
    .if vec - 14
    .if vec - 17
    .if vec - 21
    .if vec - 29
    .if vec - 30
    push 0
    .endif
    .endif
    .endif
    .endif
    .endif
    .endif
    .endif
    .endif
    .endif
    .endif
    push vec
    jmp isr_common
    .set vec, vec + 1
    .endr

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
    .popsection
    "#,
    dispatch = sym interrupt_dispatch,
);

unsafe extern "C" {
    static isr_stubs: u8;
}

#[repr(C, align(16))]
struct Idt([[u64; 2]; 256]);

static IDT: Once<Idt> = Once::new();

fn ist_for(vector: usize) -> u16 {
    match vector {
        8 => IST_DOUBLE_FAULT,
        2 => IST_NMI,
        18 => IST_MACHINE_CHECK,
        14 => IST_PAGE_FAULT,
        0..32 => IST_EXCEPTION,
        _ => IST_IRQ,
    }
}

/// Builds the IDT and loads it on this CPU.
pub fn init() {
    let idt = IDT.call_once(|| {
        let base = core::ptr::addr_of!(isr_stubs) as u64;
        let mut idt = Idt([[0; 2]; 256]);
        for (vector, entry) in idt.0.iter_mut().enumerate() {
            let addr = base + 16 * vector as u64;
            let attrs: u64 = 0x8E; // present, DPL 0, 64-bit interrupt gate
            entry[0] = (addr & 0xffff)
                | (u64::from(KERNEL_CS) << 16)
                | (u64::from(ist_for(vector)) << 32)
                | (attrs << 40)
                | ((addr >> 16) & 0xffff) << 48;
            entry[1] = addr >> 32;
        }
        idt
    });
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer { limit: (core::mem::size_of::<Idt>() - 1) as u16, base: idt as *const Idt as u64 };
    // SAFETY: the IDT is in a static that lives forever and every entry points at a stub.
    unsafe { asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) }
}

/// Remaps the legacy 8259 PICs away from the exception vectors and masks them: Kiln uses the
/// local APIC only.
pub fn disable_pic() {
    use super::port::outb;
    outb(0x20, 0x11);
    outb(0xA0, 0x11);
    outb(0x21, 0x20);
    outb(0xA1, 0x28);
    outb(0x21, 4);
    outb(0xA1, 2);
    outb(0x21, 1);
    outb(0xA1, 1);
    outb(0x21, 0xff);
    outb(0xA1, 0xff);
}

extern "C" fn interrupt_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        0..32 => crate::fault::exception(frame),
        v if v == u64::from(crate::drivers::lapic::TIMER_VECTOR) => crate::sched::timer_interrupt(frame),
        v if v == u64::from(crate::drivers::lapic::SPURIOUS_VECTOR) => {}
        32..48 => {} // a legacy PIC line that fired before it was masked
        v if crate::drivers::virtio::is_device_vector(v) => crate::drivers::virtio::interrupt(frame),
        _ => crate::drivers::lapic::eoi(),
    }
}
