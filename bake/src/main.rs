//! bake: OWNER helper B.
/// The kernel ELF, built by build.rs.
pub static KERNEL: &[u8] = include_bytes!(env!("KILN_KERNEL_PATH"));
fn main() {
    println!("kernel {} bytes", KERNEL.len());
}
