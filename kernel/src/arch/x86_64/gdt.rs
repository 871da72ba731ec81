//! GDT and TSS. The app and the kernel both run at ring 0, so there are only kernel segments;
//! the TSS exists for its interrupt stacks (IST): every vector runs on one, because the app
//! uses the 128-byte red zone below its stack pointer and no interrupt may push onto it.

use alloc::boxed::Box;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slots (1-based as the IDT names them).
pub const IST_DOUBLE_FAULT: u16 = 1;
pub const IST_NMI: u16 = 2;
pub const IST_MACHINE_CHECK: u16 = 3;
pub const IST_PAGE_FAULT: u16 = 4;
pub const IST_EXCEPTION: u16 = 5;
pub const IST_IRQ: u16 = 6;

const IST_STACK_SIZE: usize = 64 * 1024;

pub const KERNEL_CS: u16 = 0x08;

/// Builds this CPU's GDT and TSS (with freshly allocated IST stacks) and loads them.
pub fn init() {
    let mut tss = Box::new(TaskStateSegment::new());
    for slot in 0..6 {
        let stack = Box::leak(alloc::vec![0u8; IST_STACK_SIZE].into_boxed_slice());
        let top = (stack.as_ptr() as u64 + IST_STACK_SIZE as u64) & !0xf;
        tss.interrupt_stack_table[slot] = VirtAddr::new(top);
    }
    let tss: &'static TaskStateSegment = Box::leak(tss);
    let gdt = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    assert_eq!(code.0, KERNEL_CS);
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, which lives forever (leaked).
    unsafe {
        CS::set_reg(code);
        DS::set_reg(data);
        ES::set_reg(data);
        SS::set_reg(data);
        load_tss(tss_sel);
    }
    let _ = SegmentSelector(0);
}
