//! Every test program baked and booted under QEMU (`bake run PROG -- ARGS`), checked by its
//! stdout and exit status. Test names are `<program>::<flavour>`.

use kiln_tests::{Case, Flavour, RunOpts, cases};

fn kiln(case: Case, flavour: Flavour) {
    case.assert_kiln(flavour, &RunOpts::default());
}

/// `mod $name { fn musl_static, fn musl_static_pie, fn glibc_static }`, each running `$body`.
macro_rules! per_flavour {
    ($name:ident, |$f:ident| $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn musl_static() {
                let $f = Flavour::MuslStatic;
                $body
            }
            #[test]
            fn musl_static_pie() {
                let $f = Flavour::MuslStaticPie;
                $body
            }
            #[test]
            fn glibc_static() {
                let $f = Flavour::GlibcStatic;
                $body
            }
        }
    };
}

per_flavour!(hello, |f| kiln(cases::HELLO, f));
per_flavour!(args_env, |f| kiln(cases::ARGS_ENV, f));
per_flavour!(args_none, |f| kiln(cases::ARGS_NONE, f));
per_flavour!(exit_codes, |f| {
    for case in cases::EXIT_CODES {
        kiln(case, f);
    }
});
per_flavour!(malloc_stress, |f| kiln(cases::MALLOC, f));
per_flavour!(float_printf, |f| kiln(cases::FLOAT, f));
per_flavour!(clocks_sleep, |f| kiln(cases::CLOCKS, f));
per_flavour!(tls, |f| kiln(cases::TLS, f));
per_flavour!(mmap_probe, |f| kiln(cases::MMAP, f));
per_flavour!(efault, |f| kiln(cases::EFAULT, f));
per_flavour!(stack_deep, |f| kiln(cases::STACK_DEEP, f));
per_flavour!(regs_preserved, |f| kiln(cases::REGS_PRESERVED, f));

// One flavour is enough for these: they exercise the kernel, not the libc's startup.
mod musl_static {
    use super::*;
    const F: Flavour = Flavour::MuslStatic;

    #[test]
    fn args_tricky() {
        kiln(cases::ARGS_TRICKY, F);
    }
    #[test]
    fn uname() {
        kiln(cases::UNAME, F);
    }
    #[test]
    fn enosys() {
        kiln(cases::ENOSYS, F);
    }
    #[test]
    fn getpid_loop() {
        kiln(cases::GETPID, F);
    }
    #[test]
    fn big_output() {
        kiln(cases::BIG_OUTPUT, F);
    }
}

// Faults: the kernel must turn each CPU exception into the signal exit status Linux gives.
per_flavour!(null_deref, |f| kiln(cases::NULL_DEREF, f));
per_flavour!(write_text, |f| kiln(cases::WRITE_TEXT, f));
per_flavour!(abort, |f| kiln(cases::ABORT, f));
mod mmap_fault {
    use super::*;
    #[test]
    fn musl_static() {
        kiln(cases::MMAP_FAULT, Flavour::MuslStatic);
    }
}
mod div_zero {
    use super::*;
    #[test]
    fn musl_static() {
        kiln(cases::DIV_ZERO, Flavour::MuslStatic);
    }
}
mod ud2 {
    use super::*;
    #[test]
    fn musl_static() {
        kiln(cases::UD2, Flavour::MuslStatic);
    }
}

mod glibc_static {
    use super::*;
    #[test]
    fn uname() {
        kiln(cases::UNAME, Flavour::GlibcStatic);
    }
}
