//! The crate's files import one another without circles: each file can be
//! read knowing only the files below it. A file's imports are the `crate::`,
//! `super::`, `self::` and child-module paths it names outside its
//! `#[cfg(test)]` module, each taken to the deepest module file it reaches.
//! A child reading its folder's shared items (`super::Spec`) does not
//! count; a folder naming its child (`jobs::SPEC`) does.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every module file under `root` (a crate's src), by module path.
fn modules(root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(root).expect("under root");
            let mut segments: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let last = segments.pop().expect("a file name");
            match last.as_str() {
                "lib.rs" | "main.rs" | "mod.rs" => {}
                name => segments.push(name.trim_end_matches(".rs").to_string()),
            }
            out.insert(segments, path);
        }
    }
    out
}

/// The source without comments and without its test module.
fn production_text(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            // The test module runs to the end of its braces: skip it.
            let mut depth = 0i32;
            let mut opened = false;
            for inner in lines.by_ref() {
                for c in inner.chars() {
                    match c {
                        '{' => {
                            depth += 1;
                            opened = true
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                if opened && depth <= 0 {
                    break;
                }
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Expands `a::{b, c::{d, e}}` into every full path it names.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// The paths a file names: its `use` trees expanded, and inline paths.
fn named_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("use ") {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before_ok {
            let tree = after[..end].trim();
            let tree = tree.split(" as ").next().unwrap_or(tree);
            paths.extend(expand(tree));
        }
        rest = &after[if before_ok { end } else { 0 }..];
    }
    let bytes = text.as_bytes();
    // Inline paths: any word followed by `::` that does not continue a
    // path (`crate::`, `super::`, a child module's name; the others do not
    // resolve).
    let mut from = 0;
    while let Some(i) = text[from..].find("::") {
        let colons = from + i;
        from = colons + 2;
        let at = text[..colons]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |b| b + 1);
        if at == colons || (at > 0 && bytes[at - 1] == b':') {
            continue;
        }
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(text.len(), |e| at + e);
        paths.push(text[at..end].to_string());
    }
    paths
}

/// The module file a path names, from the module `here` (a file's own
/// module path).
fn resolve(
    path: &str,
    here: &[String],
    known: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<Vec<String>> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segments.first().copied() {
        Some("crate") => Vec::new(),
        Some("self") => here.to_vec(),
        Some("super") => {
            let mut b = here.to_vec();
            b.pop();
            b
        }
        // A path that starts with a child module's name is relative.
        Some(first) if known.contains_key(&[here, &[first.to_string()]].concat()) => {
            segments.insert(0, "self");
            here.to_vec()
        }
        _ => return None,
    };
    segments.remove(0);
    while segments.first() == Some(&"super") {
        base.pop();
        segments.remove(0);
    }
    let mut best = None;
    let mut candidate = base.clone();
    if known.contains_key(&candidate) {
        best = Some(candidate.clone());
    }
    for segment in segments {
        candidate.push(segment.to_string());
        if known.contains_key(&candidate) {
            best = Some(candidate.clone());
        } else {
            break;
        }
    }
    best
}

/// The circles among the files of the crate under `root`, each as a list of
/// file paths.
fn circles(root: &Path) -> Vec<Vec<String>> {
    let known = modules(root);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &known {
        let text = fs::read_to_string(file).expect("a readable source file");
        let targets = edges.entry(module.clone()).or_default();
        for path in named_paths(&production_text(&text)) {
            if let Some(target) = resolve(&path, module, &known) {
                // A child naming its folder's shared items (`super::Spec`)
                // reads its parent's interface, as Rust lays a folder out;
                // the parent naming a child (`jobs::SPEC`) is an import.
                let reads_its_parent =
                    module.len() == target.len() + 1 && module.starts_with(&target);
                if target != *module && !reads_its_parent {
                    targets.insert(target);
                }
            }
        }
    }
    // Tarjan's strongly connected components.
    struct Walk<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, (usize, usize)>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        next: usize,
        found: Vec<Vec<&'a Vec<String>>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a Vec<String>) {
        w.index.insert(v, (w.next, w.next));
        w.next += 1;
        w.stack.push(v);
        w.on_stack.insert(v);
        if let Some(out) = w.edges.get(v) {
            for u in out {
                let Some((u, _)) = w.edges.get_key_value(u) else {
                    continue;
                };
                if !w.index.contains_key(u) {
                    visit(w, u);
                    let low_u = w.index[u].1;
                    let entry = w.index.get_mut(v).expect("visited");
                    entry.1 = entry.1.min(low_u);
                } else if w.on_stack.contains(u) {
                    let index_u = w.index[u].0;
                    let entry = w.index.get_mut(v).expect("visited");
                    entry.1 = entry.1.min(index_u);
                }
            }
        }
        let (index, low) = w.index[v];
        if index == low {
            let mut component = Vec::new();
            while let Some(u) = w.stack.pop() {
                w.on_stack.remove(u);
                component.push(u);
                if u == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges: &edges,
        index: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            visit(&mut walk, v);
        }
    }
    walk.found
        .into_iter()
        .map(|c| {
            c.into_iter()
                .map(|m| known[m].display().to_string())
                .collect()
        })
        .collect()
}

fn crate_sources() -> Vec<PathBuf> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut roots = vec![top.join("src")];
    if let Ok(entries) = fs::read_dir(top.join("crates")) {
        roots.extend(entries.flatten().map(|e| e.path().join("src")));
    }
    roots.into_iter().filter(|r| r.is_dir()).collect()
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    for root in crate_sources() {
        let found = circles(&root);
        assert!(
            found.is_empty(),
            "import circles under {}: {found:#?}",
            root.display()
        );
    }
}

#[test]
fn a_circle_is_found_where_there_is_one() {
    let dir = std::env::temp_dir().join(format!("layers-{}", std::process::id()));
    let src = dir.join("src");
    fs::create_dir_all(src.join("m")).expect("a scratch directory");
    fs::write(src.join("lib.rs"), "pub mod a;\npub mod m;\n").expect("write");
    fs::write(src.join("a.rs"), "use crate::m::b::thing;\n").expect("write");
    fs::write(src.join("m/mod.rs"), "pub mod b;\n").expect("write");
    fs::write(
        src.join("m/b.rs"),
        "pub fn thing() { crate::a::other() }\n#[cfg(test)]\nmod tests {\n use crate::m::b;\n}\n",
    )
    .expect("write");
    // A folder that names its child, whose child names a file that names
    // the folder, is a circle too.
    fs::write(src.join("c.rs"), "pub const X: u32 = crate::m::Y;\n").expect("write");
    fs::write(
        src.join("m/mod.rs"),
        "pub mod b;\npub mod d;\npub const Y: u32 = d::Z;\n",
    )
    .expect("write");
    fs::write(src.join("m/d.rs"), "pub const Z: u32 = crate::c::X;\n").expect("write");
    fs::write(src.join("lib.rs"), "pub mod a;\npub mod c;\npub mod m;\n").expect("write");
    let found = circles(&src);
    fs::remove_dir_all(&dir).ok();
    assert_eq!(found.len(), 2, "{found:?}");
    let mut sizes: Vec<usize> = found.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, 3], "{found:?}");
}
