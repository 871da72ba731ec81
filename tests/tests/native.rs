//! The test programs on the host kernel, without Kiln: each flavour builds as promised
//! (checked inside `program`) and every case prints and exits exactly as the Kiln tests expect.
//! If one of these fails, fix the test program or the table, not the kernel.

use kiln_tests::{Flavour, cases};

fn all_cases_natively(flavour: Flavour) {
    let mut failures = Vec::new();
    for case in cases::all() {
        if let Err(e) = std::panic::catch_unwind(|| case.assert_native(flavour)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(msg);
        }
    }
    assert!(
        failures.is_empty(),
        "{} native failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn musl_static() {
    all_cases_natively(Flavour::MuslStatic);
}

#[test]
fn musl_static_pie() {
    all_cases_natively(Flavour::MuslStaticPie);
}

#[test]
fn glibc_static() {
    all_cases_natively(Flavour::GlibcStatic);
}

#[test]
fn dynamic_program_has_interpreter() {
    let prog = kiln_tests::dynamic_program("hello");
    let info = kiln_tests::ElfInfo::read(&prog).unwrap();
    assert_eq!(info.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
}
