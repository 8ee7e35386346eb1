//! include/flux_prometheus.h must be what cbindgen makes of the crate now.

use std::path::Path;

#[test]
fn header_in_the_repo_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("header is UTF-8");
    let path = root.join("include/flux_prometheus.h");
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        generated == committed,
        "include/flux_prometheus.h is stale; regenerate it with UPDATE_HEADER=1 cargo test --test header\n--- generated:\n{generated}"
    );
    assert!(
        generated.contains("int mod_main(flux_t *h, int argc, char **argv);"),
        "{generated}"
    );
}
