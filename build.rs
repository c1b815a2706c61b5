//! Build script: compiles the C shim and generates the C header.
//!
//! 1. `src/ffi/shim.c` (the variadic / `va_list` functions stable Rust cannot
//!    define) is compiled as C89 with the `cc` crate and bundled into the
//!    crate (hence into `libnopoll.a` and `libnopoll.so`), with the `std`
//!    feature like the rest of the C API (it calls `nopoll_log_forward`).
//! 2. On ELF targets with naked functions (rustc >= 1.88), the shim's
//!    functions get internal names and `src/ffi/shim_bridge.rs` exports the
//!    public ones as Rust tail-jump trampolines: a cdylib only exports
//!    symbols defined in Rust, so without them `libnopoll.so` would lack
//!    `nopoll_strdup_printf`, `nopoll_strdup_printfv` and `__nopoll_log`.
//! 3. `$OUT_DIR/nopoll.h` is generated with cbindgen from `src/ffi/` only
//!    (the C ABI lives there; internal types elsewhere must not leak), plus
//!    `src/net/ops.rs` for the socket table struct (settings in
//!    `cbindgen.toml`, hand-written parts in `include/nopoll_prelude.h.in`
//!    and `include/nopoll_trailer.h.in`) and its path exported as
//!    `NOPOLL_GENERATED_HEADER`. A cbindgen failure is only a warning (the
//!    library, including no_std builds, must still build); `tests/header.rs`
//!    then fails. `make header` copies the result to `include/nopoll.h`.
//! 4. The cdylib gets the soname `libnopoll.so.0` on Linux/Android.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PRELUDE: &str = "include/nopoll_prelude.h.in";
const TRAILER: &str = "include/nopoll_trailer.h.in";
const CBINDGEN_TOML: &str = "cbindgen.toml";
const SHIM_C: &str = "src/ffi/shim.c";
const SONAME: &str = "libnopoll.so.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed={CBINDGEN_TOML}");
    println!("cargo:rerun-if-changed={PRELUDE}");
    println!("cargo:rerun-if-changed={TRAILER}");
    println!("cargo:rustc-check-cfg=cfg(nopoll_shim_trampolines)");

    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let elf_os = matches!(target_os.as_str(), "linux" | "android");

    // The variadic functions of the C API live in the shim, with and
    // without std.
    let std = env::var_os("CARGO_FEATURE_STD").is_some();
    let trampolines =
        elf_os && matches!(target_arch.as_str(), "x86_64" | "aarch64") && rustc_minor() >= 88;
    if trampolines {
        println!("cargo:rustc-cfg=nopoll_shim_trampolines");
    }
    compile_shim(&manifest_dir, trampolines, std);

    if elf_os {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    }

    let header = out_dir.join("nopoll.h");
    println!(
        "cargo:rustc-env=NOPOLL_GENERATED_HEADER={}",
        header.display()
    );
    if let Err(err) = generate_header(&manifest_dir, &header) {
        // Never fail the build for this; tests/header.rs reports it.
        let _ = fs::remove_file(&header);
        for line in format!("nopoll.h not generated: {err}").lines() {
            println!("cargo:warning={line}");
        }
    }
}

/// Minor version of the compiler building the crate (0 if unknown).
fn rustc_minor() -> u32 {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return 0;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

fn compile_shim(manifest_dir: &Path, trampolines: bool, std: bool) {
    let mut build = cc::Build::new();
    build
        .file(manifest_dir.join(SHIM_C))
        .flag_if_supported("-std=c89")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true);
    if trampolines {
        build.define("NOPOLL_SHIM_TRAMPOLINES", None);
    }
    if !std {
        build.define("NOPOLL_SHIM_NO_STD", None);
    }
    build.compile("nopoll_shim");
}

fn generate_header(manifest_dir: &Path, header: &Path) -> Result<(), String> {
    let read = |rel: &str| {
        fs::read_to_string(manifest_dir.join(rel)).map_err(|e| format!("cannot read {rel}: {e}"))
    };
    let mut config = cbindgen::Config::from_file(manifest_dir.join(CBINDGEN_TOML))
        .map_err(|e| format!("{CBINDGEN_TOML}: {e}"))?;
    // `header` goes first (before any item) and `trailer` last, both
    // verbatim; trim the final newline cbindgen adds itself.
    config.header = Some(read(PRELUDE)?.trim_end().to_owned());
    config.trailer = Some(read(TRAILER)?.trim_end().to_owned());

    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(manifest_dir.join("src/ffi/mod.rs"))
        // The socket function table (`noPollSocketOps`) is defined once, in
        // net, and only its struct is exported (see cbindgen.toml).
        .with_src(manifest_dir.join("src/net/ops.rs"))
        // Likewise the TLS function table (`noPollTlsOps`), in tls.
        .with_src(manifest_dir.join("src/tls/ops.rs"))
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut text = Vec::new();
    bindings.write(&mut text);
    fs::write(header, text).map_err(|e| format!("cannot write {}: {e}", header.display()))
}
