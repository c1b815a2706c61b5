//! The C API core, exercised from C: every `tests/c/*.c` program (except
//! `header_compile.c`, which `tests/header.rs` builds) is compiled as C89
//! against the generated `nopoll.h`, linked once against `libnopoll.a` and
//! once against `libnopoll.so`, and run with a time limit. A program passes
//! when it exits 0 and its last line is `N passed, 0 failed` (N > 0).
//!
//! The libraries are the ones `cargo test` just built for the current
//! profile: `cargo test` compiles the crate's `staticlib` and `cdylib` into
//! `<target>/<profile>/deps/` (it does not copy them up to
//! `<target>/<profile>/` the way `cargo build` does), so the newest of the
//! two locations is used. The profile directory is found from this test's
//! own executable (`<target>/<profile>/deps/c_api-<hash>`), which also
//! honours `CARGO_TARGET_DIR` and `--target`.
//!
//! Needs `cc` on PATH. `tests/c/valgrind.sh` runs the same programs under
//! valgrind.

use std::env;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Set by build.rs (`cargo:rustc-env`); the file is missing when cbindgen
/// failed.
const GENERATED_HEADER: Option<&str> = option_env!("NOPOLL_GENERATED_HEADER");

/// The C programs of `tests/c/`, one `#[test]` each (see `c_program!`).
/// `programs_are_all_registered` fails when a new file is not listed here.
const PROGRAMS: [&str; 9] = [
    "api_basics",
    "client",
    "server",
    "lifetimes",
    "event_loop",
    "writes",
    "threads",
    "bad_input",
    "socket_faults",
];

/// Files of `tests/c/` that are not programs of this harness.
const NOT_PROGRAMS: [&str; 1] = ["header_compile.c"];

/// Wall-clock limit per run; the programs have their own watchdog too.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Extra libraries a C program linked against `libnopoll.a` needs (from
/// `cargo rustc --lib -- --print native-static-libs`).
const NATIVE_STATIC_LIBS: [&str; 7] = [
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The C89 flags of the drop-in promise, plus the one that keeps
/// declarations at the start of blocks.
const CFLAGS: [&str; 7] = [
    "-ansi",
    "-Wall",
    "-Werror",
    "-Wstrict-prototypes",
    "-Wdeclaration-after-statement",
    "-g",
    "-pthread",
];

fn root() -> &'static Path {
    Path::new(ROOT)
}

/// `<target>/<profile>`: where this test executable's `deps/` lives.
fn profile_dir() -> PathBuf {
    let exe = env::current_exe().expect("current_exe");
    let deps = exe
        .parent()
        .expect("test executable has a parent directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        return deps.parent().expect("deps has a parent").to_path_buf();
    }
    // Unusual layout: fall back to CARGO_TARGET_DIR or ./target, debug.
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root().join(p) })
        .unwrap_or_else(|| root().join("target"));
    target.join("debug")
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// A symbol only a build with the C API (feature `std`) has: a
/// `--no-default-features` build writes a `libnopoll.a` without it to the
/// same paths.
const C_API_MARKER: &[u8] = b"nopoll_conn_new_opts";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    hay.iter().enumerate().any(|(i, &b)| {
        b == first && hay.len() - i >= needle.len() && &hay[i..i + needle.len()] == needle
    })
}

/// Whether `lib` exists and exports the C API.
fn has_c_api(lib: &Path) -> bool {
    fs::read(lib).is_ok_and(|bytes| contains(&bytes, C_API_MARKER))
}

/// The static and shared library of one build.
struct Libs {
    static_lib: PathBuf,
    shared_lib: PathBuf,
}

/// `libnopoll.a` and `libnopoll.so` with the C API: the newest pair of
/// `<profile>/deps/` and `<profile>/`. When neither has it (someone built
/// with `--no-default-features` since, over the same files, and cargo
/// still considers this test's copy fresh), the library is built once more
/// with `cargo build --lib` into `<target>/c-api-lib` (another target
/// directory: the one of this `cargo test` is locked while it runs).
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
            .filter_map(|l| {
                let t = mtime(&l.static_lib)?.min(mtime(&l.shared_lib)?);
                Some((t, l))
            })
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
        let target = dir.parent().unwrap_or(&dir).join("c-api-lib");
        eprintln!(
            "c_api: no libnopoll with the C API in {} (a --no-default-features build \
             overwrote it?): building it into {}",
            dir.display(),
            target.display()
        );
        let status = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root())
            .args(["build", "--lib", "--quiet", "--profile", &profile])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --lib failed ({status})");
        let l = pair(&target.join(&profile_name));
        assert!(
            has_c_api(&l.static_lib) && has_c_api(&l.shared_lib),
            "{} / {} lack the C API",
            l.static_lib.display(),
            l.shared_lib.display()
        );
        l
    })
}

/// The directory holding the generated `nopoll.h`: NOPOLL_GENERATED_HEADER,
/// else the newest `<profile>/build/nopoll-*/out/nopoll.h`.
fn header_dir() -> PathBuf {
    if let Some(h) = GENERATED_HEADER.map(Path::new) {
        if h.is_file() {
            return h.parent().expect("header has a directory").to_path_buf();
        }
    }
    let build = profile_dir().join("build");
    let mut best: Option<(SystemTime, PathBuf)> = None;
    if let Ok(entries) = fs::read_dir(&build) {
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with("nopoll-") {
                continue;
            }
            let h = e.path().join("out").join("nopoll.h");
            if let Some(t) = mtime(&h) {
                if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
                    best = Some((t, h));
                }
            }
        }
    }
    match best {
        Some((_, h)) => h.parent().expect("header has a directory").to_path_buf(),
        None => panic!(
            "no generated nopoll.h (NOPOLL_GENERATED_HEADER={GENERATED_HEADER:?}, nor under {}): \
             cbindgen failed, see the `warning:` lines of `cargo build -vv`",
            build.display()
        ),
    }
}

/// Where the test binaries go (kept for debugging).
fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = profile_dir().join("c-api-tests");
        fs::create_dir_all(&d).expect("create the C test output directory");
        d
    })
}

/// A directory with `libnopoll.so` and `libnopoll.so.0` (the soname the
/// dynamic loader looks for) as symbolic links to the built library.
fn shared_lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let so = &libs().shared_lib;
        let dir = out_dir().join("lib");
        fs::create_dir_all(&dir).expect("create the shared library directory");
        for name in ["libnopoll.so", "libnopoll.so.0"] {
            let link = dir.join(name);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(so, &link).unwrap_or_else(|e| {
                panic!("cannot link {} to {}: {e}", link.display(), so.display())
            });
        }
        dir
    })
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

/// Compiles and links `tests/c/<name>.c`; the executable's path.
fn build(name: &str, link: Link) -> PathBuf {
    let src = root().join("tests/c").join(format!("{name}.c"));
    let suffix = match link {
        Link::Static => "static",
        Link::Shared => "shared",
    };
    let exe = out_dir().join(format!("{name}-{suffix}"));
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

/// Runs `exe` with a time limit; (exit status, stdout, stderr). The child
/// is killed when the limit passes.
fn run_bounded(exe: &Path, timeout: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(exe)
        .current_dir(out_dir())
        .env_remove("NOPOLL_TEST_SLOW")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
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
        match child.try_wait().expect("wait for the C program") {
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
    match status {
        Some(st) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = st.signal() {
                    return (Some(128 + sig), out, err);
                }
            }
            (st.code(), out, err)
        }
        None => (None, out, err),
    }
}

/// `N` of a final `N passed, 0 failed` line, if that is what the program
/// printed last.
fn passed_count(stdout: &str) -> Option<u32> {
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    let (n, rest) = last.trim().split_once(" passed, ")?;
    if rest != "0 failed" {
        return None;
    }
    n.parse().ok()
}

fn run_program(name: &str) {
    for link in [Link::Static, Link::Shared] {
        let exe = build(name, link);
        let start = Instant::now();
        let (code, out, err) = run_bounded(&exe, RUN_TIMEOUT);
        let took = start.elapsed();
        let report = format!(
            "{name} ({link:?}, {took:.1?}):\n--- stdout\n{out}\n--- stderr\n{err}",
            took = took
        );
        assert!(
            code.is_some(),
            "{name} ({link:?}) did not finish within {RUN_TIMEOUT:?} and was killed\n{report}"
        );
        assert_eq!(code, Some(0), "{name} ({link:?}) failed\n{report}");
        let n = passed_count(&out);
        assert!(
            n.is_some_and(|n| n > 0),
            "{name} ({link:?}) did not end with `N passed, 0 failed`\n{report}"
        );
        let lib = match link {
            Link::Static => &libs().static_lib,
            Link::Shared => &libs().shared_lib,
        };
        println!(
            "{name} ({link:?}, {}): {} checks passed in {took:.1?}",
            lib.display(),
            n.unwrap_or(0)
        );
    }
}

macro_rules! c_program {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_program(stringify!($name));
            }
        )*
    };
}

c_program!(
    api_basics,
    client,
    server,
    lifetimes,
    event_loop,
    writes,
    threads,
    bad_input,
    socket_faults
);

#[test]
fn programs_are_all_registered() {
    let mut found: Vec<String> = fs::read_dir(root().join("tests/c"))
        .expect("read tests/c")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".c") && !NOT_PROGRAMS.contains(&n.as_str()))
        .map(|n| n.trim_end_matches(".c").to_string())
        .collect();
    found.sort();
    let mut listed: Vec<String> = PROGRAMS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "tests/c/*.c and PROGRAMS (plus the c_program! list) in tests/c_api.rs differ"
    );
}

/// Every function of the C API core that the issue asks the C suite to
/// exercise.
const REQUIRED: &[&str] = &[
    // ctx
    "nopoll_ctx_new",
    "nopoll_ctx_ref",
    "nopoll_ctx_unref",
    "nopoll_ctx_ref_count",
    "nopoll_ctx_conns",
    "nopoll_ctx_set_on_accept",
    "nopoll_ctx_set_on_open",
    "nopoll_ctx_set_on_ready",
    "nopoll_ctx_set_on_msg",
    "nopoll_ctx_foreach_conn",
    "nopoll_ctx_set_max_frame_size",
    "nopoll_ctx_get_max_frame_size",
    "nopoll_ctx_set_protocol_version",
    // listener
    "nopoll_listener_new",
    "nopoll_listener_new6",
    "nopoll_listener_new_opts",
    "nopoll_listener_new_opts6",
    // conn
    "nopoll_conn_new",
    "nopoll_conn_new6",
    "nopoll_conn_new_opts",
    "nopoll_conn_opts_new",
    "nopoll_conn_accept",
    "nopoll_conn_is_ok",
    "nopoll_conn_is_ready",
    "nopoll_conn_wait_until_connection_ready",
    "nopoll_conn_send_text",
    "nopoll_conn_send_text_fragment",
    "nopoll_conn_send_binary",
    "nopoll_conn_send_binary_fragment",
    "nopoll_conn_send_ping",
    "nopoll_conn_send_pong",
    "nopoll_conn_get_msg",
    "nopoll_conn_read",
    "nopoll_conn_close",
    "nopoll_conn_close_ext",
    "nopoll_conn_shutdown",
    "nopoll_conn_ref",
    "nopoll_conn_unref",
    "nopoll_conn_ref_count",
    "nopoll_conn_get_id",
    "nopoll_conn_role",
    "nopoll_conn_socket",
    "nopoll_conn_host",
    "nopoll_conn_port",
    "nopoll_conn_ctx",
    "nopoll_conn_get_listener",
    "nopoll_conn_set_on_msg",
    "nopoll_conn_set_on_close",
    "nopoll_conn_set_on_ready",
    "nopoll_conn_set_hook",
    "nopoll_conn_get_hook",
    "nopoll_conn_get_close_status",
    "nopoll_conn_get_close_reason",
    "nopoll_conn_get_accepted_protocol",
    "nopoll_conn_get_requested_protocol",
    "nopoll_conn_set_accepted_protocol",
    "nopoll_conn_get_origin",
    "nopoll_conn_get_host_header",
    "nopoll_conn_get_cookie",
    "nopoll_conn_get_requested_url",
    "nopoll_conn_pending_write_bytes",
    "nopoll_conn_complete_pending_write",
    "nopoll_conn_flush_writes",
    "nopoll_conn_set_sock_block",
    "nopoll_conn_connect_timeout",
    "nopoll_conn_get_connect_timeout",
    "nopoll_conn_get_max_frame_size",
    // msg
    "nopoll_msg_get_payload",
    "nopoll_msg_get_payload_size",
    "nopoll_msg_opcode",
    "nopoll_msg_is_final",
    "nopoll_msg_is_fragment",
    "nopoll_msg_ref",
    "nopoll_msg_unref",
    "nopoll_msg_ref_count",
    "nopoll_msg_join",
    "nopoll_msg_new",
    // loop, threads, log, memory
    "nopoll_loop_wait",
    "nopoll_loop_stop",
    "nopoll_thread_handlers",
    "nopoll_mutex_create",
    "nopoll_mutex_destroy",
    "nopoll_mutex_lock",
    "nopoll_mutex_unlock",
    "nopoll_log_enable",
    "nopoll_log_is_enabled",
    "nopoll_log_color_enable",
    "nopoll_log_color_is_enabled",
    "nopoll_log_set_handler",
    "nopoll_calloc",
    "nopoll_realloc",
    "nopoll_free",
    "nopoll_strdup",
    "nopoll_cleanup_library",
];

/// Whether `src` calls `name` (the identifier followed by `(`).
fn calls(src: &str, name: &str) -> bool {
    let bytes = src.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut from = 0;
    while let Some(i) = src[from..].find(name) {
        let at = from + i;
        let end = at + name.len();
        from = end;
        if at > 0 && ident(bytes[at - 1]) {
            continue;
        }
        if bytes.get(end).is_some_and(|b| ident(*b)) {
            continue;
        }
        if src[end..].trim_start().starts_with('(') {
            return true;
        }
    }
    false
}

#[test]
fn every_required_function_is_called() {
    let mut all = String::new();
    for p in PROGRAMS {
        let path = root().join("tests/c").join(format!("{p}.c"));
        all.push_str(&fs::read_to_string(&path).unwrap_or_default());
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !calls(&all, f))
        .collect();
    assert!(missing.is_empty(), "functions no C test calls: {missing:?}");
}
