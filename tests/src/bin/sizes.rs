//! `cargo xtask bench`: prints the sizes of what a visitor and an agent download,
//! and of the worker, raw and gzip -9.

use std::io::Write;

fn gz(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(bytes);
    e.finish().map(|v| v.len()).unwrap_or(0)
}

fn main() {
    let root = tests::root();
    let files = [
        (
            "loader widget.js (on every host page)",
            "edge/dist/widget.js",
        ),
        (
            "widget app wasm (loaded on first open)",
            "edge/dist/widget/pkg/app_bg.wasm",
        ),
        ("widget app JS glue", "edge/dist/widget/pkg/app.js"),
        ("widget CSS", "edge/dist/widget/widget.css"),
        ("agent console wasm", "edge/dist/agent/pkg/app_bg.wasm"),
        ("agent console JS glue", "edge/dist/agent/pkg/app.js"),
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
