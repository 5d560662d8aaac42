#![allow(clippy::unwrap_used)]
//! The shipped binary is lean: the release profile keeps no DWARF debug info (with `debug = 1`
//! the release binary was 99 MB; without, ~17 MB with symbols, ~14 MB fully stripped).

#[test]
fn the_release_profile_ships_no_debug_info() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let text = std::fs::read_to_string(root).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let rel = &v["profile"]["release"];
    let debug_off = match rel.get("debug") {
        None => true,
        Some(toml::Value::Boolean(b)) => !b,
        Some(toml::Value::Integer(i)) => *i == 0,
        Some(toml::Value::String(s)) => s == "none",
        Some(_) => false,
    };
    let stripped = matches!(
        rel.get("strip").and_then(|s| s.as_str()),
        Some("debuginfo") | Some("symbols")
    ) || rel.get("strip").and_then(|s| s.as_bool()) == Some(true);
    let split = rel.get("split-debuginfo").and_then(|s| s.as_str()) == Some("packed");
    assert!(
        debug_off || stripped || split,
        "the release profile keeps debug info in the binary: {rel}"
    );
    // and the README says how to put the binary on PATH
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    assert!(readme.contains("cargo install --locked --path crates/cli"));
}
