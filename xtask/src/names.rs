//! Short import and export names for an app's wasm and its wasm-bindgen glue, no
//! custom sections, and a check that the `wasm-streams` stand-in is in effect.
//!
//! wasm-bindgen names each import after the JavaScript it calls plus a 16-digit hash
//! (`__wbg_setProperty_3fe74e09d53acb0b`), and the closure exports after their full
//! Rust types. Those names are in both the wasm and the script, and hashes do not
//! compress: for the widget they were 6.3 KB of its gzip size. Binaryen's
//! `--minify-imports-and-exports-and-modules` renames them all (`a`, `b`, … `$a`) and
//! prints the old and new names; this module then renames the same names in the glue.
//!
//! Rules:
//! - Every import the map names must be a key of the glue's import object exactly once,
//!   and the wasm must import from one module only: a newer wasm-bindgen that lays the
//!   glue out differently fails the build here, by name, rather than in a browser.
//! - Exports are renamed where the glue reads them (`wasm.<name>`); an export the glue
//!   never reads (`main`, the start function's target) needs no rewrite.

use crate::{offline_env, Result};
use std::path::Path;
use std::process::Command;

/// Minifies the names in `pkg/app_bg.wasm` and rewrites `pkg/app.js` to match.
pub fn minify(root: &Path, pkg: &Path) -> Result {
    let wasm = pkg.join("app_bg.wasm").display().to_string();
    let wasm_opt = root.join("node_modules/.bin/wasm-opt");
    println!("xtask: $ wasm-opt --minify-imports-and-exports-and-modules {wasm}");
    let out = Command::new(&wasm_opt)
        .args([
            "--minify-imports-and-exports-and-modules",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "-o",
            &wasm,
            &wasm,
        ])
        .envs(offline_env())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", wasm_opt.display()))?;
    if !out.status.success() {
        return Err(format!(
            "wasm-opt could not minify the names of {wasm}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let map: Map = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("wasm-opt's name map did not read: {e}"))?;
    let new_module = first_import_module(&std::fs::read(&wasm).map_err(|e| e.to_string())?)
        .ok_or("the minified wasm has no import module")?;
    let glue_path = pkg.join("app.js");
    let glue = std::fs::read_to_string(&glue_path).map_err(|e| e.to_string())?;
    let glue = rewrite(&glue, &map, &new_module)?;
    std::fs::write(&glue_path, glue).map_err(|e| e.to_string())
}

/// Binaryen's map: imports as `[module, old, new]`, exports as `[old, new]`.
#[derive(serde::Deserialize)]
struct Map {
    imports: Vec<(String, String, String)>,
    exports: Vec<(String, String)>,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// The glue with the map's names.
fn rewrite(glue: &str, map: &Map, new_module: &str) -> Result<String> {
    let mut modules: Vec<&str> = map.imports.iter().map(|(m, _, _)| m.as_str()).collect();
    modules.sort_unstable();
    modules.dedup();
    let [module] = modules.as_slice() else {
        return Err(format!(
            "the wasm imports from {} modules, not one",
            modules.len()
        ));
    };
    let key = format!("\"{module}\":");
    if glue.matches(&key).count() != 1 {
        return Err(format!(
            "the glue does not name the import module {key} once"
        ));
    }
    let mut glue = glue.replace(&key, &format!("\"{new_module}\":"));
    for (_, old, new) in &map.imports {
        let (text, n) = replace_ident(&glue, old, new, "", ":");
        if n != 1 {
            return Err(format!(
                "the glue names the import {old} {n} times, not once"
            ));
        }
        glue = text;
    }
    for (old, new) in &map.exports {
        glue = replace_ident(&glue, old, new, "wasm.", "").0;
    }
    Ok(glue)
}

/// Replaces `before` + `old` + `after` by `before` + `new` + `after` where `old` is a
/// whole identifier (not part of a longer one, nor a property of another object);
/// returns the text and how many it replaced.
fn replace_ident(text: &str, old: &str, new: &str, before: &str, after: &str) -> (String, usize) {
    let needle = format!("{before}{old}{after}");
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let prev = rest[..at].chars().next_back();
        let next = rest[at + needle.len()..].chars().next();
        let whole = prev.is_none_or(|c| !is_ident(c) && c != '.')
            && (!after.is_empty() || next.is_none_or(|c| !is_ident(c)));
        out.push_str(&rest[..at]);
        if whole {
            out.push_str(&format!("{before}{new}{after}"));
            count += 1;
        } else {
            out.push_str(&needle);
        }
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    (out, count)
}

/// Export names of `wasm-streams`' classes (`IntoUnderlyingSource`, `…Sink`, …).
/// The workspace patches that crate with a stand-in without them
/// (`shared/web/wasm-streams`); they keep about 4 KB gzipped alive in each app.
const STREAM_EXPORT_PREFIXES: [&str; 2] = ["intounderlying", "__wbg_intounderlying"];

/// Fails, naming the export, if `pkg/app_bg.wasm` still exports a class of the real
/// `wasm-streams`: the patch in the root `Cargo.toml` no longer applies (Leptos moved
/// to another version of it), and the stand-in needs that version.
pub fn refuse_stream_exports(pkg: &Path) -> Result {
    let (path, names) = read_app_wasm(pkg, export_names)?;
    match names
        .iter()
        .find(|n| STREAM_EXPORT_PREFIXES.iter().any(|p| n.starts_with(p)))
    {
        Some(name) => Err(format!(
            "{} exports `{name}` of the real wasm-streams: the [patch.crates-io] entry in \
             Cargo.toml no longer matches the version Leptos uses; move shared/web/wasm-streams \
             to that version",
            path.display()
        )),
        None => Ok(()),
    }
}

/// Drops the custom sections (`producers`, `target_features`, …) from
/// `pkg/app_bg.wasm`: a browser reads none of them, and they were 232 bytes of the
/// widget's gzip size. Every other section is copied byte for byte.
pub fn strip_custom_sections(pkg: &Path) -> Result {
    let (path, stripped) = read_app_wasm(pkg, without_custom_sections)?;
    std::fs::write(&path, stripped).map_err(|e| e.to_string())
}

/// `pkg/app_bg.wasm`'s path and what `read` makes of its bytes; an error if the file
/// is missing or `read` cannot walk it.
fn read_app_wasm<T>(
    pkg: &Path,
    read: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<(std::path::PathBuf, T)> {
    let path = pkg.join("app_bg.wasm");
    let wasm = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value = read(&wasm).ok_or_else(|| {
        format!(
            "{} is not a wasm module this build can read",
            path.display()
        )
    })?;
    Ok((path, value))
}

/// `wasm` without its custom sections (id 0).
fn without_custom_sections(wasm: &[u8]) -> Option<Vec<u8>> {
    let mut out = wasm.get(..8)?.to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at)?;
        wasm.get(at..at + size)?;
        at += size;
        if id != 0 {
            out.extend_from_slice(&wasm[start..at]);
        }
    }
    Some(out)
}

/// The body of a wasm binary's first section with this id, if the binary reads
/// (its 8-byte header, then sections of an id, a size and a body).
fn section(wasm: &[u8], wanted: u8) -> Option<Option<&[u8]>> {
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at)?;
        let body = wasm.get(at..at + size)?;
        at += size;
        if id == wanted {
            return Some(Some(body));
        }
    }
    Some(None)
}

/// The names of a wasm binary's exports, in order.
fn export_names(wasm: &[u8]) -> Option<Vec<String>> {
    let Some(body) = section(wasm, 7)? else {
        return Some(Vec::new());
    };
    let mut p = 0;
    let count = leb(body, &mut p)?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        let len = leb(body, &mut p)?;
        names.push(String::from_utf8(body.get(p..p + len)?.to_vec()).ok()?);
        p += len + 1; // the name, then the kind
        leb(body, &mut p)?; // the index
    }
    Some(names)
}

fn leb(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
}

/// The module name of the first import in a wasm binary.
fn first_import_module(wasm: &[u8]) -> Option<String> {
    let body = section(wasm, 2)??;
    let mut p = 0;
    leb(body, &mut p)?; // the count
    let len = leb(body, &mut p)?;
    String::from_utf8(body.get(p..p + len)?.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_whole_names_only() {
        let map = Map {
            imports: vec![("./app_bg.js".into(), "__wbg_f_1".into(), "a".into())],
            exports: vec![("memory".into(), "b".into())],
        };
        let glue = "const i = { __wbg_f_1: function() {}, x__wbg_f_1: 1 };\n\
                    return { \"./app_bg.js\": i };\nwasm.memory.buffer; wasm.memory2; o.memory";
        let out = rewrite(glue, &map, "a").unwrap();
        assert_eq!(
            out,
            "const i = { a: function() {}, x__wbg_f_1: 1 };\n\
             return { \"a\": i };\nwasm.b.buffer; wasm.memory2; o.memory"
        );
    }

    /// A module exporting functions 0 and 1 as "keep" and "intounderlyingsink_close".
    fn two_exports() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        let mut exports = vec![2];
        for (i, name) in ["keep", "intounderlyingsink_close"].iter().enumerate() {
            exports.push(name.len() as u8);
            exports.extend_from_slice(name.as_bytes());
            exports.extend([0, i as u8]);
        }
        m.push(7);
        m.push(exports.len() as u8);
        m.extend(exports);
        m.extend([0, 3, 1, b'x', 9]); // a custom section after it stays
        m
    }

    #[test]
    fn strips_custom_sections_only() {
        let mut m = two_exports();
        m.extend([1, 1, 0]); // a type section after the custom one
        let mut want = b"\0asm\x01\0\0\0".to_vec();
        want.extend_from_slice(&m[8..m.len() - 8]); // the export section
        want.extend([1, 1, 0]);
        assert_eq!(without_custom_sections(&m).unwrap(), want);
        assert!(without_custom_sections(&m[..m.len() - 1]).is_none());
    }

    #[test]
    fn reads_export_names_and_refuses_stream_classes() {
        assert_eq!(
            export_names(&two_exports()).unwrap(),
            ["keep", "intounderlyingsink_close"]
        );
        assert!(export_names(&two_exports()[..12]).is_none());
        assert_eq!(
            export_names(b"\0asm\x01\0\0\0").unwrap(),
            Vec::<String>::new()
        );

        let dir = std::env::temp_dir().join(format!("xtask-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app_bg.wasm"), two_exports()).unwrap();
        let err = refuse_stream_exports(&dir).unwrap_err();
        assert!(err.contains("`intounderlyingsink_close`"), "{err}");
        std::fs::write(dir.join("app_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(refuse_stream_exports(&dir), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_glue_without_the_import() {
        let map = Map {
            imports: vec![("m".into(), "__wbg_gone_2".into(), "a".into())],
            exports: vec![],
        };
        let err = rewrite("return { \"m\": {} };", &map, "a").unwrap_err();
        assert!(err.contains("__wbg_gone_2 0 times"), "{err}");
    }
}
