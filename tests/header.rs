//! The C side of the drop-in promise: the committed `include/nopoll.h` is the
//! one the build generates, C89 and C++ call sites compile against it, and an
//! installed copy works through pkg-config.
//!
//! Needs `cc`, `c++`, `make` and `pkg-config` on PATH (CI installs them). A
//! missing tool fails the test with the tool's name; nothing is skipped.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod cbuild;
use cbuild::run;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Set by build.rs; the file is missing when cbindgen failed (see the
/// build's `warning:` lines).
const GENERATED: &str = env!("NOPOLL_GENERATED_HEADER");

/// Every header upstream installs (and `make install` installs).
const MODULE_HEADERS: [&str; 12] = [
    "nopoll_ctx.h",
    "nopoll_conn.h",
    "nopoll_conn_opts.h",
    "nopoll_listener.h",
    "nopoll_msg.h",
    "nopoll_loop.h",
    "nopoll_io.h",
    "nopoll_log.h",
    "nopoll_decl.h",
    "nopoll_handlers.h",
    "nopoll_config.h",
    "nopoll_private.h",
];

fn root() -> &'static Path {
    Path::new(ROOT)
}

/// A fresh scratch directory for one test, removed by `Drop`.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = env::temp_dir().join(format!("nopoll-header-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn generated_header() -> String {
    fs::read_to_string(GENERATED).unwrap_or_else(|e| {
        panic!(
            "the build did not generate {GENERATED} ({e}): cbindgen failed, \
             see the `warning:` lines of `cargo build -vv`"
        )
    })
}

#[test]
fn committed_header_matches_generated() {
    let generated = generated_header();
    let committed_path = root().join("include/nopoll.h");
    if env::var_os("NOPOLL_BLESS_HEADER").is_some() {
        fs::write(&committed_path, &generated).expect("write include/nopoll.h");
        eprintln!("updated {}", committed_path.display());
    }
    let committed = fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != generated {
        let first_diff = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/nopoll.h is stale: it differs from the generated {GENERATED} \
             from line {}:\n  committed: {:?}\n  generated: {:?}\nRun `make header` and \
             commit include/nopoll.h.",
            first_diff + 1,
            committed.lines().nth(first_diff).unwrap_or("<end of file>"),
            generated.lines().nth(first_diff).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn generated_header_is_c89_shaped() {
    let header = generated_header();
    // Line comments are not C89; block comments only. (A `//` inside a
    // block comment, e.g. a URL, is fine, so look at code lines only.)
    let mut in_comment = false;
    for (n, line) in header.lines().enumerate() {
        let mut rest = line;
        let mut code = String::new();
        loop {
            if in_comment {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_comment = false;
                    }
                    None => break,
                }
            } else {
                match rest.find("/*") {
                    Some(start) => {
                        code.push_str(&rest[..start]);
                        rest = &rest[start + 2..];
                        in_comment = true;
                    }
                    None => {
                        code.push_str(rest);
                        break;
                    }
                }
            }
        }
        assert!(!code.contains("//"), "line {}: `//` comment: {line}", n + 1);
        for token in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let forbidden = matches!(token, "bool" | "_Bool" | "inline" | "stdbool" | "stdint")
                || (token.ends_with("_t")
                    && (token.starts_with("int") || token.starts_with("uint")));
            assert!(!forbidden, "line {}: `{token}` is not C89: {line}", n + 1);
        }
        assert!(
            !code.contains("()"),
            "line {}: `()` needs `(void)`: {line}",
            n + 1
        );
    }
    assert!(!in_comment, "unterminated comment");
    // Shapes the contract requires and cbindgen alone would get wrong.
    for needle in [
        "#define NOPOLL_SOCKET          int",
        "typedef struct _noPollHandshake noPollHandShake;",
        "typedef int nopoll_bool;",
        "typedef void * noPollPtr;",
        "NOPOLL_UNKNOWN_OP_CODE    = -1,",
        "void nopoll_ctx_free (noPollCtx * ctx);",
        "char      * nopoll_strdup_printf   (const char * chunk, ...);",
        "typedef noPollPtr (*noPollMutexCreate)(void);",
    ] {
        assert!(header.contains(needle), "header lacks `{needle}`");
    }
    for absent in [
        "typedef int NOPOLL_SOCKET",
        "typedef int noPollOpCode",
        "nopoll_log_forward",
        "nopoll_shim_",
        "nopoll_conn_produce_accept_key",
    ] {
        assert!(
            !header.contains(absent),
            "header must not contain `{absent}`"
        );
    }
}

/// Compiles tests/c/header_compile.c against the committed headers.
fn compile_surface(compiler: &str, flags: &[&str], name: &str) {
    let scratch = Scratch::new(name);
    let mut cmd = Command::new(compiler);
    cmd.args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-c")
        .arg(root().join("tests/c/header_compile.c"))
        .arg("-o")
        .arg(scratch.0.join("header_compile.o"));
    run(&mut cmd);
    assert!(
        scratch.0.join("header_compile.o").is_file(),
        "{compiler} wrote no object"
    );
}

const C89: [&str; 4] = ["-ansi", "-Wall", "-Werror", "-Wstrict-prototypes"];

#[test]
fn module_headers_exist_and_include_nopoll_h() {
    for header in MODULE_HEADERS {
        let text = fs::read_to_string(root().join("include").join(header))
            .unwrap_or_else(|e| panic!("include/{header}: {e}"));
        assert!(
            text.contains("#include \"nopoll.h\""),
            "{header} must include nopoll.h"
        );
    }
}

#[test]
fn api_surface_compiles_as_c89() {
    compile_surface("cc", &C89, "c89");
}

#[test]
fn api_surface_compiles_as_c89_with_show_debug_log() {
    let flags = [&C89[..], &["-DSHOW_DEBUG_LOG"]].concat();
    compile_surface("cc", &flags, "c89-debug-log");
}

#[test]
fn api_surface_compiles_as_c89_with_show_format_bugs() {
    let flags = [&C89[..], &["-DSHOW_FORMAT_BUGS"]].concat();
    compile_surface("cc", &flags, "c89-format-bugs");
}

#[test]
fn api_surface_compiles_as_cpp() {
    compile_surface("c++", &["-x", "c++", "-Wall", "-Werror"], "cpp");
}

/// What the installed-library program prints when the shim works.
const EXPECTED: &str = "42-x\n1 2 3 4 5 6 7 2.50 123456789\nv|7|0.5\n1 1\n";

/// `make install` into a scratch prefix, then build a C program the way a
/// user would (`pkg-config --cflags --libs nopoll`), dynamically and
/// statically, run it, and `make uninstall`.
#[test]
fn make_install_and_link_through_pkg_config() {
    let scratch = Scratch::new("install");
    let prefix = scratch.0.join("prefix");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new("make")
        .arg("-C")
        .arg(root())
        .arg("install")
        .arg(format!("PREFIX={}", prefix.display()))
        .arg(format!("CARGO={cargo}")));

    let lib = prefix.join("lib");
    for file in [
        "libnopoll.a",
        "libnopoll.so",
        "libnopoll.so.0",
        "pkgconfig/nopoll.pc",
    ] {
        assert!(
            lib.join(file).exists(),
            "make install did not install lib/{file}"
        );
    }
    for header in ["nopoll.h"].iter().chain(MODULE_HEADERS.iter()) {
        assert!(
            prefix.join("include/nopoll").join(header).is_file(),
            "make install did not install include/nopoll/{header}"
        );
    }

    // Exercises the three C shim functions through the installed library:
    // nopoll_strdup_printf / nopoll_strdup_printfv (floats and stack-passed
    // arguments included, which a broken trampoline would garble) and
    // __nopoll_log (forwarded to the log handler; a line longer than the
    // shim's 1 KiB buffer arrives cut and ending in "...").
    let program = scratch.0.join("printf.c");
    fs::write(
        &program,
        r#"#include <nopoll.h>
static int short_ok = 0;
static int long_ok = 0;
static void on_log (noPollCtx * ctx, noPollDebugLevel level, const char * line, noPollPtr user_data)
{
	size_t len = strlen (line);
	(void) ctx; (void) user_data;
	if (level == NOPOLL_LEVEL_WARNING && strstr (line, "value=5 end") != NULL)
		short_ok = 1;
	if (level == NOPOLL_LEVEL_CRITICAL && len > 3 && len < 2000 && strcmp (line + len - 3, "...") == 0)
		long_ok = 1;
}
static char * via_va_list (const char * format, ...)
{
	va_list args;
	char * result;
	va_start (args, format);
	result = nopoll_strdup_printfv (format, args);
	va_end (args);
	return result;
}
int main (void)
{
	char * text = nopoll_strdup_printf ("%d-%s", 42, "x");
	char * many = nopoll_strdup_printf ("%d %d %d %d %d %d %d %.2f %ld", 1, 2, 3, 4, 5, 6, 7, 2.5, 123456789L);
	char * va = via_va_list ("%s|%d|%.1f", "v", 7, 0.5);
	char big[3000];
	noPollCtx * ctx = nopoll_ctx_new ();
	memset (big, 'a', sizeof (big) - 1);
	big[sizeof (big) - 1] = '\0';
	nopoll_log_enable (ctx, nopoll_true);
	nopoll_log_set_handler (ctx, on_log, NULL);
	__nopoll_log (ctx, "main", "printf.c", 1, NOPOLL_LEVEL_WARNING, "value=%d %s", 5, "end");
	__nopoll_log (ctx, "main", "printf.c", 2, NOPOLL_LEVEL_CRITICAL, "%s", big);
	nopoll_ctx_unref (ctx);
	printf ("%s\n%s\n%s\n%d %d\n", text ? text : "(null)", many ? many : "(null)",
		va ? va : "(null)", short_ok, long_ok);
	nopoll_free (text);
	nopoll_free (many);
	nopoll_free (va);
	return 0;
}
"#,
    )
    .expect("write printf.c");

    let pkg_config = |args: &[&str]| -> Vec<String> {
        let out = run(Command::new("pkg-config")
            .args(args)
            .arg("nopoll")
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig")));
        String::from_utf8(out.stdout)
            .expect("pkg-config output")
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let cflags = pkg_config(&["--cflags"]);
    assert!(
        cflags.contains(&format!("-I{}", prefix.join("include/nopoll").display())),
        "pkg-config --cflags: {cflags:?}"
    );

    // Shared library: found through the libnopoll.so.0 soname symlink.
    let dynamic = scratch.0.join("printf-dynamic");
    run(Command::new("cc")
        .args(C89)
        .args(&cflags)
        .arg(&program)
        .arg("-o")
        .arg(&dynamic)
        .args(pkg_config(&["--libs"])));
    let out = run(Command::new(&dynamic).env("LD_LIBRARY_PATH", &lib));
    assert_eq!(String::from_utf8_lossy(&out.stdout), EXPECTED);

    // Static library with Libs.private.
    let static_exe = scratch.0.join("printf-static");
    let libs: Vec<String> = pkg_config(&["--libs", "--static"])
        .into_iter()
        .map(|flag| {
            if flag == "-lnopoll" {
                lib.join("libnopoll.a").display().to_string()
            } else {
                flag
            }
        })
        .collect();
    run(Command::new("cc")
        .args(C89)
        .args(&cflags)
        .arg(&program)
        .arg("-o")
        .arg(&static_exe)
        .args(&libs));
    let out = run(Command::new(&static_exe).env_remove("LD_LIBRARY_PATH"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), EXPECTED);

    run(Command::new("make")
        .arg("-C")
        .arg(root())
        .arg("uninstall")
        .arg(format!("PREFIX={}", prefix.display())));
    for file in [
        "libnopoll.a",
        "libnopoll.so",
        "libnopoll.so.0",
        "pkgconfig/nopoll.pc",
    ] {
        assert!(!lib.join(file).exists(), "make uninstall left lib/{file}");
    }
    assert!(
        !prefix.join("include/nopoll").exists(),
        "make uninstall left include/nopoll"
    );
}
