//! What the harnesses that compile and run C programs share (`tests/c_api.rs`,
//! `tests/compat.rs`, `tests/header.rs`): finding the library and the
//! generated header built for this profile, compiling a C89 program against
//! them (static or shared), running a tool that must succeed, and running a
//! program with a time limit.
//!
//! The libraries are the ones `cargo test` just built: it compiles the
//! crate's `staticlib` and `cdylib` into `<target>/<profile>/deps/` (it does
//! not copy them up to `<target>/<profile>/` the way `cargo build` does), so
//! the newest of the two locations is used. The profile directory is found
//! from the test's own executable (`<target>/<profile>/deps/<name>-<hash>`),
//! which also honours `CARGO_TARGET_DIR` and `--target`.
#![allow(dead_code)]

use std::env;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Set by build.rs (`cargo:rustc-env`); the file is missing when cbindgen
/// failed.
pub const GENERATED_HEADER: Option<&str> = option_env!("NOPOLL_GENERATED_HEADER");

/// Extra libraries a C program linked against `libnopoll.a` needs (from
/// `cargo rustc --lib -- --print native-static-libs`; nopoll.pc's
/// `Libs.private`).
pub const NATIVE_STATIC_LIBS: [&str; 9] = [
    "-lssl",
    "-lcrypto",
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
pub const CFLAGS: [&str; 7] = [
    "-ansi",
    "-Wall",
    "-Werror",
    "-Wstrict-prototypes",
    "-Wdeclaration-after-statement",
    "-g",
    "-pthread",
];

pub fn root() -> &'static Path {
    Path::new(ROOT)
}

/// `<target>/<profile>`: where this test executable's `deps/` lives.
pub fn profile_dir() -> PathBuf {
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

pub fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// A symbol only a build with the C API (feature `std`) has: a
/// `--no-default-features` build writes a `libnopoll.a` without it to the
/// same paths.
const C_API_MARKER: &[u8] = b"nopoll_conn_new_opts";

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let first = needle[0];
    hay.iter().enumerate().any(|(i, &b)| {
        b == first && hay.len() - i >= needle.len() && &hay[i..i + needle.len()] == needle
    })
}

/// Whether `lib` exists and exports the C API.
pub fn has_c_api(lib: &Path) -> bool {
    fs::read(lib).is_ok_and(|bytes| contains(&bytes, C_API_MARKER))
}

/// The static and shared library of one build.
pub struct Libs {
    pub static_lib: PathBuf,
    pub shared_lib: PathBuf,
}

/// `libnopoll.a` and `libnopoll.so` with the C API: the newest pair of
/// `<profile>/deps/` and `<profile>/`. When neither has it (someone built
/// with `--no-default-features` since, over the same files, and cargo
/// still considers this test's copy fresh), the library is built once more
/// with `cargo build --lib` into `<target>/c-api-lib` (another target
/// directory: the one of this `cargo test` is locked while it runs).
pub fn libs() -> &'static Libs {
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
            "no libnopoll with the C API in {} (a --no-default-features build \
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
pub fn header_dir() -> PathBuf {
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

/// Where this harness's binaries go (kept for debugging):
/// `<profile>/c-tests/<harness>`, the harness named after this test
/// executable (`c_api-<hash>` → `c_api`).
pub fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = env::current_exe().expect("current_exe");
        let stem = exe
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let harness = stem.split('-').next().unwrap_or("c").to_string();
        let d = profile_dir().join("c-tests").join(harness);
        fs::create_dir_all(&d).expect("create the C test output directory");
        d
    })
}

/// A directory with `libnopoll.so` and `libnopoll.so.0` (the soname the
/// dynamic loader looks for) as symbolic links to the built library.
pub fn shared_lib_dir() -> &'static Path {
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
pub enum Link {
    Static,
    Shared,
}

/// Compiles and links `<dir>/<name>.c` (dir relative to the crate root)
/// with the call-site flags of the drop-in promise; the executable's path.
pub fn build(dir: &str, name: &str, link: Link) -> PathBuf {
    let src = root().join(dir).join(format!("{name}.c"));
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
                // tests that call OpenSSL themselves (tls.c), as nopoll
                // programs that use the post check do
                .arg("-lssl")
                .arg("-lcrypto")
                .arg("-lpthread");
        }
    }
    run(&mut cmd);
    exe
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {shown}: {e} (is the program installed and on PATH?)")
    });
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` with a time limit (killed when it passes); (exit code,
/// stdout, stderr), the code `None` when killed and 128 + N for signal N.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> (Option<i32>, String, String) {
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

/// `N` of a final `N passed, 0 failed` line, if that is what the program
/// printed last.
pub fn passed_count(stdout: &str) -> Option<u32> {
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty())?;
    let (n, rest) = last.trim().split_once(" passed, ")?;
    if rest != "0 failed" {
        return None;
    }
    n.parse().ok()
}
