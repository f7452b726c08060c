//! Installs what a fresh machine lacks, at pinned versions, and skips what is there.

use crate::{root, run, Result, WASM_BINDGEN_VERSION, WORKER_BUILD_VERSION};
use std::path::Path;
use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(program)
        .args(args)
        .envs(crate::offline_env())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn step(what: &str) {
    println!("xtask: [setup] {what}");
}

/// Ensures every tool; `browser` adds Chromium for the browser tests.
pub fn ensure(browser: bool) -> Result {
    let root = root();
    // wasm32 target
    let targets = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if targets
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        step("wasm32-unknown-unknown target: present");
    } else {
        step("installing the wasm32-unknown-unknown target");
        run(
            &root,
            "rustup",
            &["target", "add", "wasm32-unknown-unknown"],
        )?;
    }
    // The standard library's source: the widget's size build rebuilds it (`-Zbuild-std`).
    let components = output("rustup", &["component", "list", "--installed"]).unwrap_or_default();
    if components.lines().any(|l| l.trim().starts_with("rust-src")) {
        step("rust-src component: present");
    } else {
        step("installing the rust-src component (the widget's size build compiles std)");
        run(&root, "rustup", &["component", "add", "rust-src"])?;
    }
    // worker-build
    let v = output("worker-build", &["--version"]).unwrap_or_default();
    if v.contains(WORKER_BUILD_VERSION) {
        step(&format!("worker-build {WORKER_BUILD_VERSION}: present"));
    } else {
        step(&format!(
            "installing worker-build {WORKER_BUILD_VERSION} (about 4 minutes on 2 cores)"
        ));
        run(
            &root,
            "cargo",
            &[
                "install",
                "worker-build",
                "--version",
                WORKER_BUILD_VERSION,
                "--locked",
            ],
        )?;
    }
    // wasm-bindgen CLI: without --locked (its lockfile pins a crate this registry lacks).
    let v = output("wasm-bindgen", &["--version"]).unwrap_or_default();
    if v.contains(WASM_BINDGEN_VERSION) {
        step(&format!("wasm-bindgen-cli {WASM_BINDGEN_VERSION}: present"));
    } else {
        step(&format!(
            "installing wasm-bindgen-cli {WASM_BINDGEN_VERSION} (about 2 minutes)"
        ));
        run(
            &root,
            "cargo",
            &[
                "install",
                "wasm-bindgen-cli",
                "--version",
                WASM_BINDGEN_VERSION,
                "--force",
            ],
        )?;
    }
    // node packages from the committed lockfile
    let stamp = root.join("node_modules/.package-lock.json");
    let fresh = match (
        std::fs::metadata(&stamp).and_then(|m| m.modified()),
        std::fs::metadata(root.join("package-lock.json")).and_then(|m| m.modified()),
    ) {
        (Ok(a), Ok(b)) => a >= b && root.join("node_modules/.bin/wrangler").exists(),
        _ => false,
    };
    if fresh {
        step("node packages: present");
    } else {
        step("installing node packages (npm ci)");
        run(&root, "npm", &["ci", "--no-audit", "--no-fund"])?;
    }
    if browser {
        if Path::new("/usr/bin/chromium").exists() {
            step("chromium: present");
        } else {
            step("installing chromium from Debian (apt-get)");
            run(&root, "apt-get", &["update"])?;
            run(
                &root,
                "apt-get",
                &["install", "-y", "--no-install-recommends", "chromium"],
            )?;
        }
    }
    Ok(())
}
