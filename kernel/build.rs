//! Builds the vDSO (kernel/vdso/): a tiny shared object the kernel maps into every app so
//! that clock_gettime, gettimeofday and time need no syscall. Linked with the host's C
//! toolchain (`$CC`, else `cc`), which the test and demo setups install.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("vdso");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("vdso.so");
    for f in ["vdso.S", "vdso.lds", "vdso.map"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=CC");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-nostdlib", "-shared", "-fPIC"])
        .arg(format!("-Wl,-T,{}", dir.join("vdso.lds").display()))
        .arg(format!("-Wl,--version-script={}", dir.join("vdso.map").display()))
        .args(["-Wl,--hash-style=both", "-Wl,-soname=linux-vdso.so.1", "-Wl,--build-id=none", "-Wl,-z,max-page-size=4096"])
        .arg("-o")
        .arg(&out)
        .arg(dir.join("vdso.S"))
        .status()
        .unwrap_or_else(|e| panic!("building the vDSO needs a C toolchain ({cc}): {e}; install gcc"));
    assert!(status.success(), "linking the vDSO failed ({status})");
    println!("cargo:rustc-env=KILN_VDSO_PATH={}", out.display());
}
