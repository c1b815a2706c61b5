//! Rules of the source tree that a compiler on x86_64 does not check:
//! - every file of `src/runtime` is small enough to read in one sitting
//!   (issue 19: at most 800 lines);
//! - atomics and `Arc` come from `crate::sync` (Cortex-M0 has neither
//!   `alloc::sync` nor compare-and-swap atomics: only `make test-mcu`,
//!   which needs an Arm toolchain, would otherwise notice).

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src(sub: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(sub),
        &mut v,
    );
    v.sort();
    v
}

#[test]
fn runtime_files_stay_under_800_lines() {
    let files = src("runtime");
    assert!(files.len() > 10, "src/runtime not found");
    let long: Vec<String> = files
        .iter()
        .map(|p| (p, fs::read_to_string(p).unwrap().lines().count()))
        .filter(|(_, n)| *n > 800)
        .map(|(p, n)| format!("{}: {n} lines", p.display()))
        .collect();
    assert!(long.is_empty(), "split these:\n{}", long.join("\n"));
}

#[test]
fn atomics_and_arc_come_from_crate_sync() {
    let bad: Vec<String> = src("")
        .iter()
        .filter(|p| !p.ends_with("sync.rs"))
        .flat_map(|p| {
            let text = fs::read_to_string(p).unwrap();
            text.lines()
                .enumerate()
                .filter(|(_, l)| {
                    let code = l.split("//").next().unwrap_or("");
                    code.contains("alloc::sync") || code.contains("core::sync::atomic")
                })
                .map(|(i, l)| format!("{}:{}: {}", p.display(), i + 1, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        bad.is_empty(),
        "use crate::sync::{{Arc, atomic}} instead:\n{}",
        bad.join("\n")
    );
}
