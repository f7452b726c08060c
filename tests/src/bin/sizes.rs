//! `cargo xtask bench`: prints the sizes of what a visitor and an agent download,
//! and of the worker, raw and gzip -9.

use std::io::Write;

fn gz(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(bytes);
    e.finish().map(|v| v.len()).unwrap_or(0)
}

/// The content-hashed file of an app's `pkg/` (`manifest.json`, written by the build).
fn hashed(root: &std::path::Path, app: &str, which: &str) -> String {
    std::fs::read_to_string(root.join(format!("edge/dist/{app}/pkg/manifest.json")))
        .ok()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
        .and_then(|m| {
            m[which]
                .as_str()
                .map(|n| format!("edge/dist/{app}/pkg/{n}"))
        })
        .unwrap_or_else(|| format!("edge/dist/{app}/pkg/manifest.json ({which})"))
}

fn main() {
    let root = tests::root();
    let (ww, wj, aw, aj) = (
        hashed(&root, "widget", "wasm"),
        hashed(&root, "widget", "js"),
        hashed(&root, "agent", "wasm"),
        hashed(&root, "agent", "js"),
    );
    let files = [
        (
            "loader widget.js (on every host page)",
            "edge/dist/widget.js",
        ),
        ("widget app wasm (loaded on first open)", ww.as_str()),
        ("widget app JS glue", wj.as_str()),
        ("widget CSS", "edge/dist/widget/widget.css"),
        ("agent console wasm", aw.as_str()),
        ("agent console JS glue", aj.as_str()),
        ("worker wasm", "edge/build/index_bg.wasm"),
    ];
    println!("| artifact | raw bytes | gzip -9 bytes |");
    println!("|---|---:|---:|");
    for (what, path) in files {
        match std::fs::read(root.join(path)) {
            Ok(b) => println!("| {what} | {} | {} |", b.len(), gz(&b)),
            Err(e) => println!("| {what} | missing ({e}) | |"),
        }
    }
}
