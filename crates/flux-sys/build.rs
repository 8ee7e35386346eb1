//! Chooses where the libflux declarations come from.
//!
//! flux-core is found by pkg-config, or else, as the user's `flux` finds
//! it, in the prefix of the `flux` on PATH.
//!
//! Where flux-core is found, bindgen generates the declarations from
//! the installed `<flux/core.h>` and the crate links libflux-core; its own
//! fallback declarations are then type-checked against bindgen's (see
//! src/lib.rs). Where flux-core is missing, or FLUX_PROMETHEUS_NO_BINDGEN is
//! set, only the fallback declarations are compiled and the broker that
//! loads the module supplies the symbols at run time.
//!
//! Either way it tells the crates that link it (through `links`
//! metadata): `DEP_FLUX_CORE_LINKED` is 1 where libflux-core is linked, and
//! `DEP_FLUX_CORE_DECLARED` names every libflux function declared here, so
//! that their test and command executables can stand in for them where it
//! is not (see the top-level build.rs).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(flux_bindgen)");
    println!("cargo:rerun-if-env-changed=FLUX_PROMETHEUS_NO_BINDGEN");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/lib.rs");
    let declared = declared_functions();
    println!("cargo:declared={}", declared.join(" "));

    if env::var_os("FLUX_PROMETHEUS_NO_BINDGEN").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:warning=FLUX_PROMETHEUS_NO_BINDGEN is set: using the crate's own libflux declarations");
        println!("cargo:linked=0");
        return;
    }
    let probe = || {
        pkg_config::Config::new()
            .atleast_version("0.88")
            .cargo_metadata(true)
            .probe("flux-core")
    };
    let found = probe().or_else(|err| match prefix_of_flux_on_path() {
        // As the user's `flux` finds it: a flux-core installed in a prefix
        // of its own (a site build, spack) that pkg-config was not told of.
        Some(dir) => {
            let mut path = dir.into_os_string();
            if let Some(old) = env::var_os("PKG_CONFIG_PATH").filter(|p| !p.is_empty()) {
                path.push(":");
                path.push(old);
            }
            env::set_var("PKG_CONFIG_PATH", path);
            probe()
        }
        None => Err(err),
    });
    let lib = match found {
        Ok(lib) => lib,
        Err(err) => {
            println!("cargo:warning=flux-core >= 0.88 not found by pkg-config ({err}); using the crate's own libflux declarations");
            println!("cargo:linked=0");
            return;
        }
    };

    let mut builder = bindgen::Builder::default()
        .header_contents(
            "wrapper.h",
            // shell.h insists on a plugin name for its logging macros.
            "#include <flux/core.h>\n#define FLUX_SHELL_PLUGIN_NAME \"flux-rs\"\n#include <flux/shell.h>\n",
        )
        .allowlist_function("flux_.*")
        .allowlist_type("flux_.*")
        .allowlist_var("FLUX_.*")
        .allowlist_type("kvs_op")
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
            println!("cargo:linked=0");
            return;
        }
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("flux_bindings.rs"))
        .expect("write bindgen output to OUT_DIR");
    println!("cargo:rustc-cfg=flux_bindgen");
    println!("cargo:linked=1");
    // Where flux-core lives in a prefix of its own, the test executables
    // find its library there, as the user's `flux` does.
    let dirs: Vec<String> = lib
        .link_paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    println!("cargo:libdirs={}", dirs.join(":"));
}

/// The pkg-config directory of the flux-core that the `flux` on PATH
/// belongs to (`PREFIX/bin/flux` and `PREFIX/lib/pkgconfig/flux-core.pc`),
/// if there is one.
fn prefix_of_flux_on_path() -> Option<PathBuf> {
    let flux = env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join("flux"))
        .find(|f| f.is_file())?;
    let prefix = flux.canonicalize().ok()?.parent()?.parent()?.to_path_buf();
    ["lib/pkgconfig", "lib64/pkgconfig", "share/pkgconfig"]
        .iter()
        .map(|d| prefix.join(d))
        .find(|d| d.join("flux-core.pc").is_file())
}

/// The names of the libflux functions src/lib.rs declares.
fn declared_functions() -> Vec<String> {
    let sys = std::fs::read_to_string("src/lib.rs").unwrap_or_default();
    let mut names: Vec<String> = sys
        .lines()
        .filter_map(|line| {
            let rest = line
                .trim_start()
                .strip_prefix("pub ")
                .unwrap_or(line.trim_start());
            rest.strip_prefix("fn flux_")?;
            let name = &rest["fn ".len()..rest.find('(')?];
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .then(|| name.to_string())
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
