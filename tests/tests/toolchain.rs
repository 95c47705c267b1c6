//! The declared minimum Rust version is one the dependencies accept.
//!
//! `rust-version` in the workspace's Cargo.toml is a promise to users
//! building Lookout: "this compiler is enough". A dependency that needs a
//! newer one breaks the promise silently (rusqlite 0.43 needs 1.89); this
//! test reads `cargo metadata` and fails, naming the crates, when any
//! locked dependency declares a `rust-version` above ours.

use std::process::Command;

/// `"1.89"` or `"1.89.0"` as comparable numbers.
fn version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

#[test]
fn no_dependency_needs_a_newer_rust_than_the_declared_rust_version() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let members: Vec<&str> =
        metadata["workspace_members"].as_array().expect("members").iter().filter_map(|m| m.as_str()).collect();
    let packages = metadata["packages"].as_array().expect("packages");
    let rust_version = |p: &serde_json::Value| p["rust_version"].as_str().and_then(version);

    let declared: Vec<_> = packages.iter().filter(|p| members.contains(&p["id"].as_str().unwrap_or(""))).collect();
    assert!(!declared.is_empty(), "no workspace members in cargo metadata");
    let ours = declared
        .iter()
        .map(|p| rust_version(p).unwrap_or_else(|| panic!("{} declares no rust-version", p["name"])))
        .min()
        .expect("at least one member");

    let too_new: Vec<String> = packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap_or("")))
        .filter(|p| rust_version(p).is_some_and(|needs| needs > ours))
        .map(|p| format!("{} {} needs {}", p["name"], p["version"], p["rust_version"]))
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version is {}.{}.{} but dependencies need more; raise it in Cargo.toml:\n  {}",
        ours.0,
        ours.1,
        ours.2,
        too_new.join("\n  ")
    );
}

#[test]
fn versions_compare_as_numbers() {
    assert_eq!(version("1.89"), Some((1, 89, 0)));
    assert!(version("1.100.0") > version("1.91"));
    assert_eq!(version("x"), None);
}
