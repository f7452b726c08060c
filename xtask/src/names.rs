//! Short import and export names for an app's wasm and its wasm-bindgen glue, and
//! no exports that no app calls.
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

/// Exports no Switchboard app calls: the stream sources and sinks of `wasm-streams`,
/// which Leptos links for server functions' streaming. wasm-bindgen exports every
/// `#[wasm_bindgen]` type of every linked crate, and an export keeps its code alive.
const UNUSED_EXPORT_PREFIXES: [&str; 2] = ["intounderlying", "__wbg_intounderlying"];

/// Drops [`UNUSED_EXPORT_PREFIXES`] from the export section of `pkg/app_bg.wasm`, so
/// that the optimiser after it removes their code (the glue's classes for them stay,
/// never constructed). Run before `wasm-opt -Oz`.
pub fn drop_unused_exports(pkg: &Path) -> Result {
    let path = pkg.join("app_bg.wasm");
    let wasm = std::fs::read(&path).map_err(|e| e.to_string())?;
    let cut = without_exports(&wasm, |name| {
        UNUSED_EXPORT_PREFIXES.iter().any(|p| name.starts_with(p))
    })
    .ok_or_else(|| {
        format!(
            "{} is not a wasm module this build can read",
            path.display()
        )
    })?;
    std::fs::write(&path, cut).map_err(|e| e.to_string())
}

fn push_leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// One section of a wasm binary: `(id, raw, body)`, where `raw` is the whole section
/// as it stands (id, size, body) and `body` its contents.
type Section<'a> = (u8, &'a [u8], &'a [u8]);

/// A wasm binary's sections after its 8-byte header.
fn sections(wasm: &[u8]) -> Option<Vec<Section<'_>>> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at)?;
        let body = wasm.get(at..at + size)?;
        at += size;
        out.push((id, &wasm[start..at], body));
    }
    Some(out)
}

/// `wasm` without the exports whose names `drop` picks; every other section is
/// copied byte for byte.
fn without_exports(wasm: &[u8], drop: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut out = wasm.get(..8)?.to_vec();
    for (id, raw, body) in sections(wasm)? {
        if id != 7 {
            out.extend_from_slice(raw);
            continue;
        }
        let mut p = 0;
        let count = leb(body, &mut p)?;
        let mut kept = Vec::new();
        let mut n = 0;
        for _ in 0..count {
            let start = p;
            let len = leb(body, &mut p)?;
            let name = std::str::from_utf8(body.get(p..p + len)?).ok()?;
            p += len + 1; // the name, then the kind
            leb(body, &mut p)?; // the index
            if !drop(name) {
                kept.extend_from_slice(body.get(start..p)?);
                n += 1;
            }
        }
        let mut section = Vec::new();
        push_leb(&mut section, n);
        section.extend_from_slice(&kept);
        out.push(7);
        push_leb(&mut out, section.len());
        out.extend_from_slice(&section);
    }
    Some(out)
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
    let (_, _, body) = sections(wasm)?.into_iter().find(|(id, _, _)| *id == 2)?;
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
    fn drops_only_the_named_exports() {
        let cut = without_exports(&two_exports(), |n| n.starts_with("intounderlying")).unwrap();
        let mut want = b"\0asm\x01\0\0\0".to_vec();
        want.extend([7, 8, 1, 4]);
        want.extend_from_slice(b"keep");
        want.extend([0, 0, 0, 3, 1, b'x', 9]);
        assert_eq!(cut, want);
        assert_eq!(
            without_exports(&two_exports(), |_| false).unwrap(),
            two_exports()
        );
        assert!(without_exports(&two_exports()[..12], |_| false).is_none());
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
