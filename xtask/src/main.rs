//! Build, run and test Switchboard. Run through the `cargo xtask` alias.
//!
//! - `cargo xtask dev`   — install what is missing, build everything, serve the demo on `wrangler dev`.
//! - `cargo xtask test`  — install what is missing, run unit, property, integration and browser tests.
//! - `cargo xtask bench` — build release artifacts, print their sizes, then run the
//!   load benchmark (ours against a bare relay on the same `wrangler dev`).
//! - `cargo xtask build-worker` — the `[build] command` of `edge/wrangler.toml`: runs
//!   `worker-build --release` unless its output is newer than every input.
//!
//! Rules: tools are installed at pinned versions only when missing or different;
//! nothing is downloaded at build or run time (the environment from [`offline_env`]
//! points worker-build at local binaries and stops wrangler from calling home).

mod names;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

/// Pinned versions. The wasm-bindgen CLI must equal the crate in Cargo.lock.
pub const WORKER_BUILD_VERSION: &str = "0.8.7";
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("dev") => dev(),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("build-worker") => build_worker(),
        Some("build-ui") => tools::ensure(false).and_then(|()| build_uis()),
        Some("setup") => tools::ensure(true),
        _ => Err("usage: cargo xtask dev | test | bench | build-worker | build-ui | setup".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Environment that keeps every tool offline and pointed at local binaries.
pub fn offline_env() -> Vec<(String, String)> {
    let root = root();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_bin = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(&home).join(".cargo"))
        .join("bin");
    vec![
        (
            "WASM_BINDGEN_BIN".into(),
            cargo_bin.join("wasm-bindgen").display().to_string(),
        ),
        (
            "WASM_OPT_BIN".into(),
            root.join("node_modules/.bin/wasm-opt")
                .display()
                .to_string(),
        ),
        (
            "ESBUILD_BIN".into(),
            root.join("node_modules/@esbuild/linux-x64/bin/esbuild")
                .display()
                .to_string(),
        ),
        ("WRANGLER_SEND_METRICS".into(), "false".into()),
        ("WRANGLER_SEND_ERROR_REPORTS".into(), "false".into()),
        ("WRANGLER_HIDE_BANNER".into(), "true".into()),
        ("CLOUDFLARE_CF_FETCH_ENABLED".into(), "false".into()),
        (
            "PATH".into(),
            format!(
                "{}:{}",
                cargo_bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
    ]
}

/// Runs a command in `dir`, failing with its name when it fails.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> Result {
    run_with(dir, program, args, &[])
}

/// [`run`] with more environment variables.
pub fn run_with(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Result {
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    println!("xtask: $ {}{program} {}", shown.concat(), args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(offline_env())
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}

fn newest_mtime(paths: &[PathBuf]) -> SystemTime {
    fn walk(p: &Path, best: &mut SystemTime) {
        if let Ok(md) = std::fs::metadata(p) {
            if md.is_dir() {
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        walk(&e.path(), best);
                    }
                }
            } else if let Ok(m) = md.modified() {
                *best = (*best).max(m);
            }
        }
    }
    let mut best = SystemTime::UNIX_EPOCH;
    for p in paths {
        walk(p, &mut best);
    }
    best
}

fn build_worker() -> Result {
    let root = root();
    let out = root.join("edge/build/index_bg.wasm");
    let inputs = [
        root.join("edge/src"),
        root.join("edge/Cargo.toml"),
        root.join("edge/demo-tenant.json"),
        root.join("shared/src"),
        root.join("shared/Cargo.toml"),
        root.join("Cargo.lock"),
        root.join("Cargo.toml"),
    ];
    let built = std::fs::metadata(&out).and_then(|m| m.modified()).ok();
    if built.is_some_and(|b| b >= newest_mtime(&inputs))
        && root.join("edge/build/worker/shim.mjs").exists()
    {
        println!("xtask: worker is up to date");
        return Ok(());
    }
    run(&root.join("edge"), "worker-build", &["--release"])
}

/// How an app's wasm is compiled.
#[derive(Clone, Copy, PartialEq)]
enum Build {
    /// The workspace's release profile (the agent console: panics print their message).
    Standard,
    /// The visitor widget, whose every byte a visitor downloads (budget: 100 KB gzip for
    /// the whole app): the standard library is rebuilt for size with `-Zbuild-std`, a
    /// panic aborts at once (no message, no location: no formatting machinery behind
    /// it) and `Debug` prints nothing, so no text the widget shows may use `{:?}`. The
    /// stable compiler takes these flags under `RUSTC_BOOTSTRAP=1`, set for this one
    /// command only; it needs the `rust-src` component (`tools::ensure` adds it). Own
    /// target folder, so the flags never mix with the shared wasm32 cache.
    Smallest,
}

impl Build {
    /// Binaryen's level for this build. The widget is measured by its gzip size, and
    /// `-O2` compresses better than `-Oz` although its raw wasm is larger (measured on
    /// the widget: `-Oz` 246,329 raw / 96,277 gzip; `-Os` 259,267 / 96,212; `-O2`
    /// 263,270 / 95,683; `-O3` 261,999 / 96,746).
    fn wasm_opt_level(self) -> &'static str {
        match self {
            Build::Standard => "-Oz",
            Build::Smallest => "-O2",
        }
    }
}

/// The flags of [`Build::Smallest`] (with the workspace's `erase_components`, which
/// `RUSTFLAGS` would otherwise replace).
const SMALLEST_RUSTFLAGS: &str = "--cfg erase_components -Zunstable-options \
     -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none";

/// Builds one Leptos app into `edge/dist/<name>/`.
fn build_app(krate: &str, out: &str, build: Build) -> Result {
    let root = root();
    let mut args = vec![
        "build",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        krate,
    ];
    const SMALLEST_DIR: &str = "target/smallest";
    let (target_dir, env): (&str, &[(&str, &str)]) = match build {
        Build::Standard => ("target", &[]),
        Build::Smallest => {
            args.extend([
                "-Zbuild-std=std,panic_abort",
                "-Zbuild-std-features=optimize_for_size",
            ]);
            (
                SMALLEST_DIR,
                &[
                    ("RUSTC_BOOTSTRAP", "1"),
                    ("RUSTFLAGS", SMALLEST_RUSTFLAGS),
                    ("CARGO_TARGET_DIR", SMALLEST_DIR),
                ],
            )
        }
    };
    run_with(&root, "cargo", &args, env)?;
    let wasm = root.join(format!(
        "{target_dir}/wasm32-unknown-unknown/release/{krate}.wasm"
    ));
    let pkg = root.join(format!("edge/dist/{out}/pkg"));
    std::fs::create_dir_all(&pkg).map_err(|e| e.to_string())?;
    let pkg_s = pkg.display().to_string();
    run(
        &root,
        "wasm-bindgen",
        &[
            "--target",
            "web",
            "--no-typescript",
            "--out-dir",
            &pkg_s,
            "--out-name",
            "app",
            &wasm.display().to_string(),
        ],
    )?;
    names::refuse_stream_exports(&pkg)?;
    let bg = pkg.join("app_bg.wasm").display().to_string();
    let wasm_opt = root
        .join("node_modules/.bin/wasm-opt")
        .display()
        .to_string();
    run(
        &root,
        &wasm_opt,
        &[
            build.wasm_opt_level(),
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "-o",
            &bg,
            &bg,
        ],
    )?;
    names::minify(&root, &pkg)?;
    names::strip_custom_sections(&pkg)?;
    hash_names(&root, &pkg, out)
}

/// FNV-1a, 64 bits: a content hash for asset names (not for security).
fn fnv(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// Gives every file a page of `out` loads a content-hashed name in `pkg/` (served
/// `immutable`, see `edge/static/_headers`): the wasm, one minified script module
/// (`boot.js` bundled with the wasm-bindgen glue it imports, by esbuild, so a page
/// loads one script rather than two) and the style sheet. The pages of `out` then
/// name the hashed files and preload the wasm, so it downloads beside the script
/// rather than after it; only the pages themselves revalidate. Writes
/// `pkg/manifest.json` with the names.
fn hash_names(root: &Path, pkg: &Path, out: &str) -> Result {
    let err = |e: std::io::Error| e.to_string();
    let dir = root.join(format!("edge/dist/{out}"));
    let hashed = |stem: &str, ext: &str, bytes: &[u8]| -> std::result::Result<String, String> {
        let name = format!("{stem}-{}.{ext}", fnv(bytes));
        std::fs::write(pkg.join(&name), bytes).map_err(err)?;
        Ok(name)
    };
    let wasm = std::fs::read(pkg.join("app_bg.wasm")).map_err(err)?;
    let wasm_name = hashed("app_bg", "wasm", &wasm)?;
    std::fs::remove_file(pkg.join("app_bg.wasm")).map_err(err)?;
    let glue = std::fs::read_to_string(pkg.join("app.js")).map_err(err)?;
    if !glue.contains("'app_bg.wasm'") {
        return Err("wasm-bindgen's glue no longer names 'app_bg.wasm'".into());
    }
    std::fs::write(
        pkg.join("app.js"),
        glue.replace("'app_bg.wasm'", &format!("'{wasm_name}'")),
    )
    .map_err(err)?;
    // boot.js imports the glue by its URL; the bundler reads it beside it in pkg/.
    let boot = std::fs::read_to_string(dir.join("boot.js")).map_err(err)?;
    let glue_url = format!("/{out}/pkg/app.js");
    if !boot.contains(&glue_url) {
        return Err(format!("{out}/boot.js does not import {glue_url}"));
    }
    let entry = pkg.join("boot.entry.js");
    std::fs::write(&entry, boot.replace(&glue_url, "./app.js")).map_err(err)?;
    let bundle = pkg.join("boot.bundle.js");
    let esbuild = root
        .join("node_modules/@esbuild/linux-x64/bin/esbuild")
        .display()
        .to_string();
    run(
        root,
        &esbuild,
        &[
            &entry.display().to_string(),
            "--bundle",
            "--format=esm",
            "--minify",
            "--target=es2020",
            &format!("--outfile={}", bundle.display()),
            "--log-level=warning",
        ],
    )?;
    let script = std::fs::read(&bundle).map_err(err)?;
    let boot_name = hashed("boot", "js", &script)?;
    for f in [entry, bundle, pkg.join("app.js"), dir.join("boot.js")] {
        std::fs::remove_file(&f).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let css_file = if out == "widget" {
        "widget.css"
    } else {
        "console.css"
    };
    // The style sheet minified by the same bundler (rules merged, shorter values).
    let css_min = pkg.join("style.min.css");
    run(
        root,
        &esbuild,
        &[
            &dir.join(css_file).display().to_string(),
            "--minify",
            &format!("--outfile={}", css_min.display()),
            "--log-level=warning",
        ],
    )?;
    let css = std::fs::read(&css_min).map_err(err)?;
    std::fs::remove_file(&css_min).map_err(err)?;
    let css_name = hashed(css_file.trim_end_matches(".css"), "css", &css)?;
    std::fs::remove_file(dir.join(css_file)).map_err(err)?;
    let mut pages = vec![dir.join("index.html")];
    if out == "agent" {
        pages.push(root.join("edge/dist/admin/index.html"));
    }
    let swaps = [
        (format!("/{out}/boot.js"), format!("/{out}/pkg/{boot_name}")),
        (
            format!("/{out}/{css_file}"),
            format!("/{out}/pkg/{css_name}"),
        ),
    ];
    for p in pages {
        let mut text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        for (from, to) in &swaps {
            if !text.contains(from.as_str()) {
                return Err(format!("{} does not name {from}", p.display()));
            }
            text = text.replace(from.as_str(), to);
        }
        // wasm-bindgen's glue fetches the wasm in cors mode: the preload must match.
        let preload = format!(
            "<link rel=\"preload\" href=\"/{out}/pkg/{wasm_name}\" as=\"fetch\" crossorigin>\n</head>"
        );
        text = text.replacen("</head>", &preload, 1);
        std::fs::write(&p, text).map_err(err)?;
    }
    std::fs::write(
        pkg.join("manifest.json"),
        format!("{{\"wasm\":\"{wasm_name}\",\"boot\":\"{boot_name}\",\"css\":\"{css_name}\"}}\n"),
    )
    .map_err(err)
}

fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for e in std::fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest)?;
        } else {
            std::fs::copy(&p, &dest).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Builds both UIs and the static site into `edge/dist/`.
pub fn build_uis() -> Result {
    let root = root();
    let dist = root.join("edge/dist");
    let _ = std::fs::remove_dir_all(&dist);
    copy_dir(&root.join("edge/static"), &dist)?;
    copy_dir(&root.join("widget/static"), &dist.join("widget"))?;
    // The loader is on every host page: minified (esbuild from the lockfile).
    run(
        &root,
        &root
            .join("node_modules/@esbuild/linux-x64/bin/esbuild")
            .display()
            .to_string(),
        &[
            &dist.join("widget/widget.js").display().to_string(),
            "--minify",
            "--target=es2017",
            &format!("--outfile={}", dist.join("widget.js").display()),
            "--log-level=warning",
        ],
    )?;
    std::fs::remove_file(dist.join("widget/widget.js")).map_err(|e| format!("widget.js: {e}"))?;
    copy_dir(&root.join("agent-ui/static"), &dist.join("agent"))?;
    // `/admin/` is a route of the console app: its page loads the same build.
    copy_dir(&root.join("agent-ui/admin"), &dist.join("admin"))?;
    build_app("widget", "widget", Build::Smallest)?;
    build_app("agent-ui", "agent", Build::Standard)?;
    Ok(())
}

fn dev() -> Result {
    tools::ensure(false)?;
    build_uis()?;
    build_worker()?;
    let root = root();
    let port = std::env::var("PORT").unwrap_or_else(|_| "8787".into());
    let state = root.join(".state");
    println!();
    println!("  Demo website:   http://127.0.0.1:{port}/");
    println!("  Agent console:  http://127.0.0.1:{port}/agent/");
    println!("      tenant demo — agents anna / anna-demo-pass, ben / ben-demo-pass, cleo / cleo-demo-pass");
    println!(
        "  Supervisor and admin screens:  http://127.0.0.1:{port}/admin/  (dana / dana-demo-pass)"
    );
    println!("  Admin API:      http://127.0.0.1:{port}/api/v1/admin/tenants/demo/config  (Authorization: Bearer dev-admin-token)");
    println!(
        "  State is kept in {} — delete it to start afresh. Ctrl-C stops.",
        state.display()
    );
    println!();
    let wrangler = root
        .join("node_modules/.bin/wrangler")
        .display()
        .to_string();
    run(
        &root.join("edge"),
        &wrangler,
        &[
            "dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &port,
            "--persist-to",
            &state.display().to_string(),
            "--show-interactive-dev-session=false",
        ],
    )
}

fn test(args: &[String]) -> Result {
    let only_e2e = args.iter().any(|a| a == "--e2e");
    tools::ensure(true)?;
    let root = root();
    if !only_e2e {
        run(
            &root,
            "cargo",
            &["test", "--workspace", "--exclude", "tests"],
        )?;
    }
    build_uis()?;
    build_worker()?;
    run(&root, "cargo", &["test", "-p", "tests", "--test", "e2e"])?;
    // The load benchmark and the open-time benchmark in smoke mode: they work; the
    // figures come from `cargo xtask bench`.
    run(
        &root,
        "cargo",
        &["run", "-p", "tests", "--bin", "bench", "--", "--smoke"],
    )?;
    run(
        &root,
        "cargo",
        &[
            "run", "-p", "tests", "--bin", "opentime", "--", "--runs", "1",
        ],
    )
}

/// Sizes of the built artifacts, then the load benchmark against the relay
/// (arguments after `bench` go to the load benchmark, e.g. `--smoke`, `--rounds 2`).
fn bench(args: &[String]) -> Result {
    tools::ensure(false)?;
    build_uis()?;
    build_worker()?;
    let root = root();
    run(
        &root,
        "cargo",
        &["run", "--release", "-p", "tests", "--bin", "sizes"],
    )?;
    let smoke = args.iter().any(|a| a == "--smoke");
    run(
        &root,
        "cargo",
        &[
            "run",
            "--release",
            "-p",
            "tests",
            "--bin",
            "opentime",
            "--",
            "--runs",
            if smoke { "1" } else { "10" },
        ],
    )?;
    let mut a: Vec<&str> = vec!["run", "--release", "-p", "tests", "--bin", "bench", "--"];
    a.extend(args.iter().map(String::as_str));
    run(&root, "cargo", &a)
}
