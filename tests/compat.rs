//! Drop-in compatibility, from C: `tests/compat/coverage.c` calls every
//! function of the contract (`docs/NOPOLL-API.md`) with NULL and boundary
//! arguments and checks the documented results; it is compiled as C89
//! against the generated `nopoll.h`, linked once against `libnopoll.a` and
//! once against `libnopoll.so`, and run with a time limit. The drop-in
//! samples of `c-examples/dropin/` are built against an installed copy
//! (`tests/compat/dropin.sh`) and may only use upstream's API.
//!
//! `tests/compat/sanitize.sh` runs coverage.c under AddressSanitizer and
//! valgrind (not from here: it takes minutes).
//!
//! Needs `cc` on PATH; the drop-in test also `make`, `pkg-config` and
//! `readelf`.

mod cbuild;

use cbuild::{build, out_dir, passed_count, root, run_bounded, Link};
use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

/// Wall-clock limit of one coverage run (the program's watchdog: 120 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// Limit of the drop-in script (it may build the release library first).
const DROPIN_TIMEOUT: Duration = Duration::from_secs(900);

/// The functions this library adds to upstream's API (README,
/// "Extensions"): the drop-in samples must not use them.
const EXTENSIONS: [&str; 7] = [
    "nopoll_ctx_set_on_http_request",
    "nopoll_conn_send_http_response",
    "nopoll_ctx_set_handshake_timeout",
    "nopoll_ctx_set_listen_backlog",
    "nopoll_ctx_set_max_message_size",
    "nopoll_ctx_set_fragment_delivery",
    "nopoll_ctx_set_legacy_fragments",
];

fn run_coverage(link: Link) {
    let exe = build("tests/compat", "coverage", link);
    let mut cmd = Command::new(&exe);
    cmd.current_dir(out_dir()).env_remove("COMPAT_SLOW");
    let start = Instant::now();
    let (code, out, err) = run_bounded(cmd, RUN_TIMEOUT);
    let report = format!(
        "coverage ({link:?}, {:.1?}):\n--- stdout\n{out}\n--- stderr\n{err}",
        start.elapsed()
    );
    assert!(code.is_some(), "killed after {RUN_TIMEOUT:?}\n{report}");
    assert_eq!(code, Some(0), "failed\n{report}");
    let n = passed_count(&out);
    assert!(
        n.is_some_and(|n| n > 500),
        "did not end with `N passed, 0 failed` (N > 500)\n{report}"
    );
    println!("coverage ({link:?}): {} checks passed", n.unwrap_or(0));
}

#[test]
fn coverage_static() {
    run_coverage(Link::Static);
}

#[test]
fn coverage_shared() {
    run_coverage(Link::Shared);
}

/// Every function of the contract (docs/NOPOLL-API.md).
fn contract_functions() -> BTreeSet<String> {
    let text = fs::read_to_string(root().join("docs/NOPOLL-API.md")).expect("read the contract");
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` | `").map(|(name, _)| name.to_string()))
        .filter(|n| {
            let bare = n.trim_start_matches('_');
            bare.starts_with("nopoll_")
                && bare
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .filter(|n| n != "nopoll_bool" && n != "nopoll_is_disconnected")
        .collect()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// C source without comments and string literals (so that a name only in
/// a comment does not count as a call).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            out.push(' ');
        } else if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            i += 1;
            while i < b.len() && b[i] != q {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            let c = src[i..].chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The identifiers of `code` that are called (followed by `(`).
fn called(code: &str) -> BTreeSet<String> {
    let b = code.as_bytes();
    let mut set = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        if is_ident(b[i]) && (i == 0 || !is_ident(b[i - 1])) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            if code[i..].trim_start().starts_with('(') {
                set.insert(code[start..i].to_string());
            }
        } else {
            i += 1;
        }
    }
    set
}

#[test]
fn coverage_calls_every_contract_function() {
    let contract = contract_functions();
    assert_eq!(contract.len(), 169, "functions in docs/NOPOLL-API.md");
    let src = fs::read_to_string(root().join("tests/compat/coverage.c")).expect("coverage.c");
    let calls = called(&code_only(&src));
    let missing: Vec<&String> = contract.iter().filter(|f| !calls.contains(*f)).collect();
    assert!(
        missing.is_empty(),
        "contract functions coverage.c does not call: {missing:?}"
    );
}

#[test]
fn dropin_samples_use_only_upstream_api() {
    let contract = contract_functions();
    let dir = root().join("c-examples/dropin");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).expect("c-examples/dropin") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "c") {
            continue;
        }
        seen += 1;
        let src = fs::read_to_string(&path).expect("read sample");
        let calls = called(&code_only(&src));
        let foreign: Vec<&String> = calls
            .iter()
            .filter(|f| f.trim_start_matches('_').starts_with("nopoll_"))
            .filter(|f| !contract.contains(*f) || EXTENSIONS.contains(&f.as_str()))
            .collect();
        assert!(
            foreign.is_empty(),
            "{} calls functions outside upstream's API: {foreign:?}",
            path.display()
        );
        assert!(
            calls.iter().any(|f| f.starts_with("nopoll_")),
            "{} calls no nopoll function",
            path.display()
        );
    }
    assert_eq!(seen, 3, "client.c, server.c, port-sharing.c");
}

/// `make install` into a scratch prefix, build the samples with pkg-config
/// (shared and static) and run them against each other.
#[test]
fn dropin_against_the_installed_library() {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("tests/compat/dropin.sh"))
        .current_dir(root())
        .env(
            "CARGO",
            env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        );
    let start = Instant::now();
    let (code, out, err) = run_bounded(cmd, DROPIN_TIMEOUT);
    let report = format!(
        "dropin.sh ({:.1?}):\n--- stdout\n{out}\n--- stderr\n{err}",
        start.elapsed()
    );
    assert!(code.is_some(), "killed after {DROPIN_TIMEOUT:?}\n{report}");
    assert_eq!(code, Some(0), "failed\n{report}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("dropin.sh: ") && last.ends_with(" passed, 0 failed"),
        "unexpected last line\n{report}"
    );
    println!("{last} ({:.1?})", start.elapsed());
}

/// The README's compatibility table is what docs/compat.py prints.
#[test]
fn compatibility_table_is_generated() {
    let mut cmd = Command::new("python3");
    cmd.arg(root().join("docs/compat.py"));
    let (code, table, err) = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(code, Some(0), "python3 docs/compat.py failed: {err}");
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let (_, rest) = readme
        .split_once("<!-- compat:begin -->\n")
        .expect("table start marker");
    let (section, _) = rest
        .split_once("<!-- compat:end -->")
        .expect("table end marker");
    assert!(
        section == table,
        "the README table differs from `python3 docs/compat.py`: regenerate it"
    );
}
