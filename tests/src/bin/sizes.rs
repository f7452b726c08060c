//! `cargo xtask bench`: prints the sizes of what a visitor and an agent download,
//! and of the worker: raw, gzip -9 (GNU gzip) and brotli (quality 11), and the widget app's
//! total against the 100 KB (gzip) budget.

use std::io::Write;
use std::process::{Command, Stdio};

/// The size after `gzip -9` — GNU gzip itself, the reference the budget names. (The
/// flate2 crate's default deflate, used before, wrote about 0.5% more for the widget's
/// wasm.) The input goes in on a thread of its own so a large file cannot fill both
/// pipes at once.
fn gz(bytes: &[u8]) -> usize {
    let child = Command::new("gzip")
        .args(["-9", "-c", "-n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("sizes: gzip is not installed");
        std::process::exit(1);
    };
    let input = bytes.to_vec();
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let out = child
        .wait_with_output()
        .map(|o| o.stdout.len())
        .unwrap_or(0);
    let _ = writer.join();
    out
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
