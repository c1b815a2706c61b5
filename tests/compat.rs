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

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Set by build.rs; the file is missing when cbindgen failed.
const GENERATED_HEADER: Option<&str> = option_env!("NOPOLL_GENERATED_HEADER");

/// Wall-clock limit of one coverage run (the program's watchdog: 120 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// Limit of the drop-in script (it may build the release library first).
const DROPIN_TIMEOUT: Duration = Duration::from_secs(900);

/// The call-site flags of the drop-in promise.
const CFLAGS: [&str; 7] = [
    "-ansi",
    "-Wall",
    "-Werror",
    "-Wstrict-prototypes",
    "-Wdeclaration-after-statement",
    "-g",
    "-pthread",
];

/// What a program linked against `libnopoll.a` needs besides it (the
/// `Libs.private` of nopoll.pc).
const NATIVE_STATIC_LIBS: [&str; 7] = [
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The functions this library adds to upstream's API (README,
/// "Extensions"): the drop-in samples must not use them.
const EXTENSIONS: [&str; 6] = [
    "nopoll_ctx_set_on_http_request",
    "nopoll_conn_send_http_response",
    "nopoll_ctx_set_handshake_timeout",
    "nopoll_ctx_set_listen_backlog",
    "nopoll_ctx_set_max_message_size",
    "nopoll_ctx_set_fragment_delivery",
];

fn root() -> &'static Path {
    Path::new(ROOT)
}

/// `<target>/<profile>`: where this test executable's `deps/` lives.
fn profile_dir() -> PathBuf {
    let exe = env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a parent");
    if deps.file_name().is_some_and(|n| n == "deps") {
        return deps.parent().expect("deps has a parent").to_path_buf();
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"));
    target.join("debug")
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Whether `lib` exports the C API (a `--no-default-features` build
/// writes a library without it to the same paths).
fn has_c_api(lib: &Path) -> bool {
    let needle = b"nopoll_conn_new_opts";
    fs::read(lib).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}

struct Libs {
    static_lib: PathBuf,
    shared_lib: PathBuf,
}

/// The newest `libnopoll.a` / `libnopoll.so` pair with the C API of this
/// profile (`deps/` or the profile directory); else one built for this
/// test into `<target>/compat-lib`.
fn libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(|| {
        let dir = profile_dir();
        let pair = |d: &Path| Libs {
            static_lib: d.join("libnopoll.a"),
            shared_lib: d.join("libnopoll.so"),
        };
        let newest = [dir.join("deps"), dir.clone()]
            .iter()
            .map(|d| pair(d))
            .filter(|l| has_c_api(&l.static_lib) && has_c_api(&l.shared_lib))
            .filter_map(|l| Some((mtime(&l.static_lib)?.min(mtime(&l.shared_lib)?), l)))
            .max_by_key(|(t, _)| *t)
            .map(|(_, l)| l);
        if let Some(l) = newest {
            return l;
        }
        let profile_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "debug".into());
        let profile = if profile_name == "debug" {
            "dev".to_string()
        } else {
            profile_name.clone()
        };
        let target = dir.parent().unwrap_or(&dir).join("compat-lib");
        let status = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root())
            .args(["build", "--lib", "--quiet", "--profile", &profile])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --lib failed ({status})");
        let l = pair(&target.join(&profile_name));
        assert!(has_c_api(&l.static_lib) && has_c_api(&l.shared_lib));
        l
    })
}

/// The directory of the generated `nopoll.h`.
fn header_dir() -> PathBuf {
    if let Some(h) = GENERATED_HEADER.map(Path::new) {
        if h.is_file() {
            return h.parent().expect("header has a directory").to_path_buf();
        }
    }
    let build = profile_dir().join("build");
    let newest = fs::read_dir(&build)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("nopoll-"))
        .map(|e| e.path().join("out/nopoll.h"))
        .filter_map(|h| Some((mtime(&h)?, h)))
        .max_by_key(|(t, _)| *t);
    match newest {
        Some((_, h)) => h.parent().expect("header has a directory").to_path_buf(),
        None => panic!("no generated nopoll.h under {}", build.display()),
    }
}

fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = profile_dir().join("compat-tests");
        fs::create_dir_all(&d).expect("create the output directory");
        d
    })
}

/// `libnopoll.so` and its soname `libnopoll.so.0`, linked to the build.
fn shared_lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let so = &libs().shared_lib;
        let dir = out_dir().join("lib");
        fs::create_dir_all(&dir).expect("create the library directory");
        for name in ["libnopoll.so", "libnopoll.so.0"] {
            let link = dir.join(name);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(so, &link)
                .unwrap_or_else(|e| panic!("cannot link {}: {e}", link.display()));
        }
        dir
    })
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

/// Compiles `tests/compat/<name>.c`; the executable.
fn build(name: &str, link: Link) -> PathBuf {
    let src = root().join("tests/compat").join(format!("{name}.c"));
    let exe = out_dir().join(format!("{name}-{link:?}").to_lowercase());
    let mut cmd = Command::new(env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cmd.args(CFLAGS)
        .arg(format!("-I{}", header_dir().display()))
        .arg(format!("-I{}", root().join("include").display()))
        .arg(&src)
        .arg("-o")
        .arg(&exe);
    match link {
        Link::Static => {
            cmd.arg(&libs().static_lib).args(NATIVE_STATIC_LIBS);
        }
        Link::Shared => {
            let dir = shared_lib_dir();
            cmd.arg(format!("-L{}", dir.display()))
                .arg(format!("-Wl,-rpath,{}", dir.display()))
                .arg("-lnopoll")
                .arg("-lpthread");
        }
    }
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e} (is a C compiler installed?)"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs `cmd` with a time limit (killed after it); (exit code, stdout,
/// stderr), the code `None` when killed.
fn run_bounded(mut cmd: Command, timeout: Duration) -> (Option<i32>, String, String) {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for the child") {
            Some(st) => break Some(st),
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    let out = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    let code = status.map(|st| {
        use std::os::unix::process::ExitStatusExt;
        st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
    });
    (code, out, err)
}

/// N of a final `N passed, 0 failed` line.
fn passed_count(stdout: &str) -> Option<u32> {
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    let (n, rest) = last.trim().split_once(" passed, ")?;
    (rest == "0 failed").then(|| n.parse().ok()).flatten()
}

fn run_coverage(link: Link) {
    let exe = build("coverage", link);
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

/// Every function of the contract, as tests/readme.rs reads it.
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
