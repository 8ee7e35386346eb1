//! Chooses where the libflux declarations come from.
//!
//! Where pkg-config finds flux-core, bindgen generates the declarations from
//! the installed `<flux/core.h>` and the module links libflux-core; the crate's
//! own fallback declarations are then type-checked against bindgen's (see
//! src/flux/sys.rs). Where flux-core is missing, or FLUX_PROMETHEUS_NO_BINDGEN
//! is set, only the fallback declarations are compiled and the broker that
//! loads the module supplies the symbols at run time.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(flux_bindgen)");
    // Set by cargo-fuzz (fuzz/): src/lib.rs then keeps glibc's allocator.
    println!("cargo:rustc-check-cfg=cfg(fuzzing)");
    println!("cargo:rerun-if-env-changed=FLUX_PROMETHEUS_NO_BINDGEN");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-changed=build.rs");
    mimalloc_release();

    if env::var_os("FLUX_PROMETHEUS_NO_BINDGEN").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:warning=FLUX_PROMETHEUS_NO_BINDGEN is set: using the crate's own libflux declarations");
        without_libflux();
        return;
    }
    let lib = match pkg_config::Config::new()
        .atleast_version("0.88")
        .cargo_metadata(true)
        .probe("flux-core")
    {
        Ok(lib) => lib,
        Err(err) => {
            println!("cargo:warning=flux-core >= 0.88 not found by pkg-config ({err}); using the crate's own libflux declarations");
            without_libflux();
            return;
        }
    };

    let mut builder = bindgen::Builder::default()
        .header_contents("wrapper.h", "#include <flux/core.h>\n")
        .allowlist_function("flux_.*")
        .allowlist_type("flux_.*")
        .allowlist_var("FLUX_.*")
        .prepend_enum_name(false)
        .override_abi(bindgen::Abi::CUnwind, "flux_reactor_run")
        .layout_tests(false)
        .generate_comments(false);
    for path in &lib.include_paths {
        builder = builder.clang_arg(format!("-I{}", path.display()));
    }
    let bindings = match builder.generate() {
        Ok(b) => b,
        Err(err) => {
            println!("cargo:warning=bindgen could not read <flux/core.h> ({err}); using the crate's own libflux declarations");
            without_libflux();
            return;
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("flux_bindings.rs"))
        .expect("write bindgen output to OUT_DIR");
    println!("cargo:rustc-cfg=flux_bindgen");
}

/// Compiles src/flux/mimalloc_release.c against the `mimalloc.h` of the
/// mimalloc the module is built with (libmimalloc-sys passes its include
/// directory on): it sets mimalloc's `destroy_on_exit` by name, for
/// src/flux/os.rs.
fn mimalloc_release() {
    println!("cargo:rerun-if-changed=src/flux/mimalloc_release.c");
    let include = env::var("DEP_MIMALLOC_INCLUDE_DIR")
        .expect("libmimalloc-sys passes its include directory (links = \"mimalloc\")");
    cc::Build::new()
        .file("src/flux/mimalloc_release.c")
        .include(include)
        .compile("mimalloc_release");
}

/// With no libflux to link (no flux-core here), the module still builds:
/// the broker provides libflux's symbols when it loads it. The test, bench
/// and command executables, though, reach the collectors' start functions
/// through the registry, and so libflux calls they never make. There each
/// libflux function the crate declares (src/flux/sys.rs) is defined as
/// address 0: the executables link and load, and every test that runs here
/// works on recorded payloads without entering libflux. The module itself
/// is left alone, so that it binds to the broker's libflux.
fn without_libflux() {
    println!("cargo:rerun-if-changed=src/flux/sys.rs");
    let sys = std::fs::read_to_string("src/flux/sys.rs").unwrap_or_default();
    let mut names: Vec<&str> = sys
        .lines()
        .filter_map(|line| {
            let rest = line
                .trim_start()
                .strip_prefix("pub ")
                .unwrap_or(line.trim_start());
            rest.strip_prefix("fn flux_")?;
            let name = &rest["fn ".len()..rest.find('(')?];
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then_some(name)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        for kind in ["tests", "benches", "bins"] {
            println!("cargo:rustc-link-arg-{kind}=-Wl,--defsym={name}=0");
        }
    }
}
