//! `cargo xtask bench`: starts its own `wrangler dev` and measures click → pre-chat
//! form interactive in headless Chromium (`tests/browser/opentime.mjs`), cold and warm.
//! `--runs N` (default 10).

fn main() {
    let runs = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .unwrap_or_else(|| "10".into());
    let server = tests::Server::start(&[]);
    let st = std::process::Command::new("node")
        .args([
            tests::root()
                .join("tests/browser/opentime.mjs")
                .display()
                .to_string(),
            server.base(),
            runs,
        ])
        .current_dir(tests::root())
        .status()
        .expect("node");
    drop(server);
    if !st.success() {
        std::process::exit(1);
    }
}
