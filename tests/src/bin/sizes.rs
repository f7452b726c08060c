//! `cargo xtask bench`: prints the sizes of what a visitor and an agent download,
//! and of the worker: raw, gzip -9 and brotli (quality 11), and the widget app's
//! total against the 100 KB (gzip) budget.

use std::io::Write;

fn gz(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(bytes);
    e.finish().map(|v| v.len()).unwrap_or(0)
}

fn br(bytes: &[u8]) -> usize {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    match brotli::BrotliCompress(&mut &bytes[..], &mut out, &params) {
        Ok(_) => out.len(),
        Err(_) => 0,
    }
}

/// A content-hashed file of an app's `pkg/` (`manifest.json`, written by the build).
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
    let h = |app, which| hashed(&root, app, which);
    let widget_app = [
        (
            "widget document /widget/",
            "edge/dist/widget/index.html".to_string(),
        ),
        (
            "widget script (boot.js and the glue, one minified module)",
            h("widget", "boot"),
        ),
        ("widget CSS", h("widget", "css")),
        ("widget app wasm", h("widget", "wasm")),
    ];
    let others = [
        (
            "loader widget.js (on every host page)",
            "edge/dist/widget.js".to_string(),
        ),
        ("agent console wasm", h("agent", "wasm")),
        (
            "agent console script (boot.js and the glue, one minified module)",
            h("agent", "boot"),
        ),
        ("worker wasm", "edge/build/index_bg.wasm".to_string()),
    ];
    println!("| artifact | raw bytes | gzip -9 bytes | brotli 11 bytes |");
    println!("|---|---:|---:|---:|");
    let mut total = (0, 0, 0);
    let row = |what: &str, path: &str| match std::fs::read(root.join(path)) {
        Ok(b) => {
            let (g, r) = (gz(&b), br(&b));
            println!("| {what} | {} | {g} | {r} |", b.len());
            (b.len(), g, r)
        }
        Err(e) => {
            println!("| {what} | missing ({e}) | | |");
            (0, 0, 0)
        }
    };
    for (what, path) in &widget_app {
        let (a, b, c) = row(what, path);
        total = (total.0 + a, total.1 + b, total.2 + c);
    }
    println!(
        "| **widget app, all of it** (budget: 102,400 gzip) | {} | {} | {} |",
        total.0, total.1, total.2
    );
    for (what, path) in &others {
        row(what, path);
    }
}
