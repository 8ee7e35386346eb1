//! include/flux_prometheus.h declares the entry point as flux-core's module
//! loader calls it: the C compiler, with the installed `<flux/core.h>`,
//! checks its prototype against the broker's own `mod_main_f` (from
//! flux-core's src/broker/module.h, which is not installed).

use std::path::Path;
use std::process::Command;

#[test]
fn header_declares_mod_main_as_the_broker_calls_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cflags = match Command::new("pkg-config")
        .args(["--cflags", "flux-core"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            eprintln!("SKIP: pkg-config finds no flux-core, so there is no <flux/core.h> to check the header against");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let source = dir.join("check.c");
    std::fs::write(
        &source,
        "#include <flux_prometheus.h>\n\
         /* flux-core src/broker/module.h: the loader's type for it. */\n\
         typedef int (*mod_main_f)(flux_t *h, int argc, char *argv[]);\n\
         mod_main_f entry = mod_main;\n",
    )
    .expect("write the check");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&compiler)
        .args(["-Werror", "-Wall", "-c", "-o"])
        .arg(dir.join("check.o"))
        .arg("-I")
        .arg(root.join("include"))
        .args(cflags.split_whitespace())
        .arg(&source)
        .output()
        .expect("run the C compiler");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "include/flux_prometheus.h does not declare mod_main as flux-core's mod_main_f:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
