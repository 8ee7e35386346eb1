//! Links the plugin so that the shell's `dlclose` leaves it mapped
//! (`-z nodelete`). The shell unloads its plugins only as it exits, and
//! the Rust runtime in the plugin registers thread-local destructors with
//! the C library, which must find their code where it was.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
