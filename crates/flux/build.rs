//! Compiles src/mimalloc_release.c against the `mimalloc.h` of the mimalloc
//! the module is built with (libmimalloc-sys passes its include directory
//! on): it sets mimalloc's `destroy_on_exit` by name, for src/os.rs.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/mimalloc_release.c");
    let include = env::var("DEP_MIMALLOC_INCLUDE_DIR")
        .expect("libmimalloc-sys passes its include directory (links = \"mimalloc\")");
    cc::Build::new()
        .file("src/mimalloc_release.c")
        .include(include)
        .compile("mimalloc_release");
}
