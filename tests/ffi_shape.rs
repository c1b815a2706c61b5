//! Every function the C API exports has the same shape: its body runs
//! inside `boundary(FAILURE, || ...)` (src/ffi/mod.rs), the one place that
//! keeps a panic from unwinding into C and says what C gets instead.
//! A new exported function written without it fails this test.

use std::fs;
use std::path::Path;

/// Exported functions that run no Rust code of their own, with the reason.
const EXEMPT: &[(&str, &str)] = &[(
    "shim_bridge.rs",
    "tail jumps into the C shim (variadic functions): no Rust body",
)];

/// (file, function, body) of every `#[unsafe(no_mangle)]` function.
fn exported(dir: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let src = fs::read_to_string(&path).unwrap();
        let mut rest = src.as_str();
        while let Some(at) = rest.find("#[unsafe(no_mangle)]") {
            rest = &rest[at + 1..];
            let Some(f) = rest.find("extern \"C\" fn ") else {
                break;
            };
            let sig = &rest[f + "extern \"C\" fn ".len()..];
            let func: String = sig
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The body: from the signature's `{` to the `}` closing it at
            // column 0 (rustfmt puts it there), or a one-line `{}`.
            let open = sig.find('{').unwrap();
            let body = &sig[open..];
            let end = if body.starts_with("{}") {
                2
            } else {
                body.find("\n}").map_or(body.len(), |e| e + 2)
            };
            out.push((name.clone(), func, body[..end].to_string()));
        }
    }
    out
}

#[test]
fn every_exported_function_runs_inside_the_boundary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let funcs = exported(&dir);
    assert!(
        funcs.len() > 150,
        "found only {} exported functions: the scan is broken",
        funcs.len()
    );
    let bare: Vec<String> = funcs
        .iter()
        .filter(|(file, _, _)| !EXEMPT.iter().any(|(f, _)| f == file))
        .filter(|(_, _, body)| !body.contains("boundary("))
        .map(|(file, func, _)| format!("{file}: {func}"))
        .collect();
    assert!(
        bare.is_empty(),
        "exported without boundary(FAILURE, || ...):\n{}",
        bare.join("\n")
    );
}
