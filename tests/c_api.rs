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

mod cbuild;

use cbuild::{build, libs, out_dir, passed_count, root, run_bounded, Link};
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

/// The C programs of `tests/c/`, one `#[test]` each (see `c_program!`).
/// `programs_are_all_registered` fails when a new file is not listed here.
const PROGRAMS: [&str; 20] = [
    "api_basics",
    "client",
    "server",
    "lifetimes",
    "event_loop",
    "writes",
    "threads",
    "bad_input",
    "socket_faults",
    "extensions",
    "hooks",
    "fidelity",
    "sequences",
    "two_readers",
    "fd_exhaustion",
    "hostile_setters",
    "log_handler",
    "scale",
    "deflate",
    "tls",
];

/// Files of `tests/c/` that are not programs of this harness.
const NOT_PROGRAMS: [&str; 1] = ["header_compile.c"];

/// Wall-clock limit per run; the programs have their own watchdog too.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn run_program(name: &str) {
    for link in [Link::Static, Link::Shared] {
        let exe = build("tests/c", name, link);
        let mut cmd = Command::new(&exe);
        cmd.current_dir(out_dir()).env_remove("NOPOLL_TEST_SLOW");
        let start = Instant::now();
        let (code, out, err) = run_bounded(cmd, RUN_TIMEOUT);
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
    socket_faults,
    extensions,
    hooks,
    fidelity,
    sequences,
    two_readers,
    fd_exhaustion,
    hostile_setters,
    log_handler,
    scale,
    deflate,
    tls
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
