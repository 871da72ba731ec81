//! Builds the kernel for `x86_64-unknown-none` and hands its path to `include_bytes!`, so that
//! `target/release/bake` carries the kernel inside it.
//!
//! `KILN_KERNEL_ELF=/path/to/elf` skips the nested kernel build and embeds that file instead:
//! for working on bake against a stand-in kernel, or for embedding a kernel built elsewhere.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in ["kernel", "libc-shim"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
    println!("cargo:rerun-if-env-changed=KILN_KERNEL_ELF");
    if let Some(kernel) = env::var_os("KILN_KERNEL_ELF") {
        let kernel = PathBuf::from(kernel);
        if !kernel.is_file() {
            panic!("KILN_KERNEL_ELF={} is not a file", kernel.display());
        }
        println!("cargo:rerun-if-changed={}", kernel.display());
        println!("cargo:rustc-env=KILN_KERNEL_PATH={}", kernel.display());
        return;
    }

    let profile = env::var("PROFILE").unwrap_or_else(|_| "debug".into());
    // A target dir of its own: the outer cargo holds the lock on target/.
    let target_dir = root.join("target").join("kernel");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "-p", "kiln-kernel", "--target", "x86_64-unknown-none"])
        .arg("--target-dir")
        .arg(&target_dir);
    // The kernel is always optimised: a debug kernel is too slow under TCG.
    cmd.arg("--release");
    // Do not leak the host build's flags into the kernel build.
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" || key == "RUSTC_WRAPPER" {
            cmd.env_remove(&key);
        }
    }
    let linker_script = root.join("kernel").join("linker.ld");
    let flags = [
        "-Crelocation-model=static".to_string(),
        "-Clink-arg=--no-pie".to_string(),
        format!("-Clink-arg=-T{}", linker_script.display()),
        "-Cforce-frame-pointers=yes".to_string(),
    ];
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    // Symbols stay (panic reports, debugging with gdb), DWARF does not: it would triple the
    // size of every image.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    let status = cmd.status().expect("running cargo to build the kernel");
    if !status.success() {
        panic!("building the kernel failed ({status})");
    }
    let kernel = target_dir.join("x86_64-unknown-none").join("release").join("kiln-kernel");
    println!("cargo:rustc-env=KILN_KERNEL_PATH={}", kernel.display());
    let _ = profile;
}
