//! Lets the test, bench and command executables of a crate that links the
//! module load where libflux-core is not linked, and find it where it lives
//! in a prefix of its own. crates/flux-sys/build.rs decides which, and
//! says so through its `links` metadata.
//!
//! Without libflux (no flux-core here, or FLUX_PROMETHEUS_NO_BINDGEN set)
//! the module still builds: the broker provides libflux's symbols when it
//! loads it. The executables, though, reach the collectors' start
//! functions through the registry, and so libflux calls they never make.
//! There each libflux function flux-sys declares is defined as address 0:
//! they link and load, and every test that runs here works on recorded
//! payloads without entering libflux. The module itself is left alone, so
//! that it binds to the broker's libflux.
//!
//! With libflux linked from a directory the dynamic loader does not search
//! (flux-core in a prefix of its own, found through PKG_CONFIG_PATH or the
//! prefix of the `flux` on PATH), everything linked carries that directory
//! as its run path, as libtool gives flux-core's own programs and modules:
//! the executables find libflux there, and the module, loaded by a broker
//! that has libflux loaded already, binds to the broker's.

use std::env;
use std::path::Path;

/// The kinds of executable this package builds (cargo refuses a link
/// argument for a kind the package has none of).
fn kinds() -> Vec<&'static str> {
    let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let dir = Path::new(&dir);
    [
        ("tests", dir.join("tests").is_dir()),
        ("benches", dir.join("benches").is_dir()),
        (
            "bins",
            dir.join("src/main.rs").is_file() || dir.join("src/bin").is_dir(),
        ),
    ]
    .into_iter()
    .filter_map(|(kind, has)| has.then_some(kind))
    .collect()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Set by cargo-fuzz (fuzz/): src/lib.rs then keeps glibc's allocator.
    println!("cargo:rustc-check-cfg=cfg(fuzzing)");
    let linked = env::var("DEP_FLUX_CORE_LINKED").is_ok_and(|v| v == "1");
    if linked {
        let dirs = env::var("DEP_FLUX_CORE_LIBDIRS").unwrap_or_default();
        // Every target: the unit tests' harness has no link-argument kind
        // of its own.
        for dir in dirs.split(':').filter(|d| !d.is_empty() && !is_system(d)) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
        return;
    }
    let declared = env::var("DEP_FLUX_CORE_DECLARED").unwrap_or_default();
    for name in declared.split_whitespace() {
        for kind in kinds() {
            println!("cargo:rustc-link-arg-{kind}=-Wl,--defsym={name}=0");
        }
    }
}

/// A directory the dynamic loader searches without being told.
fn is_system(dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    matches!(dir, "/lib" | "/usr/lib" | "/lib64" | "/usr/lib64")
        || (dir.starts_with("/usr/lib/") && dir.ends_with("-linux-gnu"))
        || (dir.starts_with("/lib/") && dir.ends_with("-linux-gnu"))
}
