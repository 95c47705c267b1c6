//! Keeps ARCHITECTURE.md's code map true, by machine.
//!
//! Each `### \`crate\`` section of the code map lists that crate's modules
//! as bullets that start with the module's path in backticks
//! (`` * `stream::ws` — … ``). This test fails when a bullet names a
//! module that does not exist, or when a crate has a module the map does
//! not name: when code moves, the map must move with it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

/// The modules of the crate whose sources are under `src`: `a/b.rs` is
/// `a::b`, `a/mod.rs` is `a`, a binary `bin/x.rs` is `x`; the crate roots
/// (`lib.rs`, `main.rs`) are not modules.
fn modules_on_disk(src: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeSet<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("readable source dir").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                // `src/bin/x.rs` are binaries named `x`, not modules of a `bin` module.
                if !(prefix.is_empty() && name == "bin") {
                    inner.push(name);
                }
                walk(&path, &inner, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut parts = prefix.to_vec();
                match stem {
                    "mod" => {}
                    "lib" | "main" if prefix.is_empty() => continue,
                    other => parts.push(other.to_owned()),
                }
                if !parts.is_empty() {
                    out.insert(parts.join("::"));
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(src, &[], &mut out);
    out
}

/// The code map's sections: the crate directory each heading names, and
/// the module paths its bullets start with.
fn sections(map: &str) -> Vec<(String, BTreeSet<String>)> {
    let code_map = map.split("\n## Code map").nth(1).expect("ARCHITECTURE.md has a `## Code map` section");
    let code_map = code_map.split("\n## ").next().unwrap_or_default();
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in code_map.lines() {
        if let Some(heading) = line.strip_prefix("### `") {
            let dir = heading.split('`').next().unwrap_or_default().to_owned();
            out.push((dir, BTreeSet::new()));
        } else if let (Some(bullet), Some((_, names))) = (line.strip_prefix("* `"), out.last_mut()) {
            let name = bullet.split('`').next().unwrap_or_default();
            // Files and scripts (`bench.py`, `webserver/benches/…`) are not modules.
            if name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':') {
                names.insert(name.to_owned());
            }
        }
    }
    out
}

#[test]
fn the_code_map_names_every_module_and_only_real_ones() {
    let root = workspace_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md is readable");
    let sections = sections(&map);
    let dirs: Vec<&str> = sections.iter().map(|(d, _)| d.as_str()).collect();
    for member in ["shared", "vision", "objects", "detector", "webserver", "tests", "scripts/bench"] {
        assert!(dirs.contains(&member), "the code map has no section for `{member}` (has {dirs:?})");
    }
    let mut problems = Vec::new();
    for (dir, named) in &sections {
        let src = root.join(dir).join("src");
        assert!(src.is_dir(), "code map section `{dir}` names no crate ({} is not a directory)", src.display());
        let on_disk = modules_on_disk(&src);
        let roots = ["main", "lib"];
        for name in named.iter().filter(|n| !on_disk.contains(*n) && !roots.contains(&n.as_str())) {
            problems.push(format!("`{dir}`: the map names `{name}`, which is not a module of {}", src.display()));
        }
        for module in on_disk.iter().filter(|m| !named.contains(*m)) {
            problems.push(format!("`{dir}`: module `{module}` is missing from the map"));
        }
    }
    assert!(problems.is_empty(), "ARCHITECTURE.md's code map is out of date:\n  {}", problems.join("\n  "));
}

#[test]
fn the_module_walk_and_the_bullet_parser_see_what_they_should() {
    let map = "intro\n## Code map\n### `x` (library)\n* `a` — one\n* `a::b` — two\n* `bench.py` — a file\n  * `not` a bullet head\n## Next\n* `ignored`\n";
    let sections = sections(map);
    assert_eq!(sections.len(), 1);
    assert_eq!(sections[0].0, "x");
    assert_eq!(sections[0].1.iter().map(String::as_str).collect::<Vec<_>>(), ["a", "a::b"]);
    let webserver = modules_on_disk(&workspace_root().join("webserver/src"));
    for expected in ["stream", "stream::ws", "http::events", "state"] {
        assert!(webserver.contains(expected), "{expected} not found in {webserver:?}");
    }
    assert!(!webserver.contains("main") && !webserver.contains("lib"));
}
