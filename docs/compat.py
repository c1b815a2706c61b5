#!/usr/bin/env python3
"""Prints the README's compatibility table: every function of the nopoll
contract (docs/NOPOLL-API.md) with its status here. Statuses and notes live
in this file; tests/readme.rs checks that the README table lists every
contract function, so the table cannot silently fall behind."""
import re, sys, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
contract = (root / "docs/NOPOLL-API.md").read_text()
funcs = sorted(set(re.findall(r"^\| `((?:__)?nopoll_[a-z0-9_]+)` \| `", contract, re.M)))
funcs = [f for f in funcs if f not in ("nopoll_bool", "nopoll_is_disconnected")]

TLS = "TLS pending"
notes = {
    "nopoll_ctx_free": ("declared, not defined", "as upstream: the prototype exists, calling it fails to link"),
    "nopoll_conn_send_text": ("deviates", "text is checked to be UTF-8 (the docs promise it, upstream does not): invalid text returns -1. Never sleeps: a short write returns at once (see conventions)"),
    "nopoll_conn_send_text_fragment": ("deviates", "UTF-8 checked across fragments; never sleeps"),
    "nopoll_conn_send_binary": ("works", "never sleeps on a full socket (upstream retries up to 50 x 100 ms)"),
    "nopoll_conn_send_binary_fragment": ("works", "never sleeps"),
    "nopoll_conn_get_msg": ("deviates", "whole messages by default (upstream hands out frames); `nopoll_ctx_set_fragment_delivery` restores frames and partial frames"),
    "nopoll_ctx_set_on_msg": ("deviates", "whole messages by default, as for get_msg"),
    "nopoll_conn_set_on_msg": ("deviates", "whole messages by default, as for get_msg"),
    "nopoll_loop_wait": ("works", "epoll (poll elsewhere), no 500 ms slices, no FD_SETSIZE cap; also drops handshakes older than 10 s"),
    "nopoll_loop_stop": ("works", "wakes the loop at once (eventfd); async-signal-safe"),
    "nopoll_conn_is_ok": ("works", "false, not a crash, for a closed or released handle"),
    "nopoll_conn_set_accepted_protocol": ("deviates", "without it the server answers the first requested subprotocol, not the raw list (RFC 6455 clients reject a list)"),
    "nopoll_conn_opts_skip_origin_check": ("works", "a missing Origin is accepted by default anyway (RFC 6455); on_open can refuse it"),
    "nopoll_thread_handlers": ("works", "the hooks back `nopoll_mutex_*`; std builds lock with std mutexes either way, so the library itself never calls them"),
    "nopoll_conn_accept": ("works", "waits for a connection (listener sockets are non-blocking for the loop); a connection found closed while polling stays registered until nopoll_conn_close, as upstream"),
    "nopoll_io_get_engine": ("works", "epoll (default on Linux) or poll; SELECT gives poll (no FD_SETSIZE cap)"),
    "nopoll_ctx_set_certificate": ("not yet", "returns false (certificate store lands with TLS)"),
    "nopoll_ctx_find_certificate": ("not yet", "returns false"),
    "nopoll_conn_ref_count": ("works", "owner references; the library's transient ones are not counted"),
    "__nopoll_conn_owner_ref_count": ("works", "same as nopoll_conn_ref_count"),
    "__nopoll_conn_transient_ref": ("works", "same as nopoll_conn_ref"),
    "__nopoll_conn_transient_unref": ("works", "same as nopoll_conn_unref"),
    "nopoll_conn_close_ext": ("deviates", "the status is sent even when reason_size is 0 (upstream then sends an empty close frame, dropping the code the caller passed); 1005/1006/1015 and invalid codes are never sent: an empty close frame goes instead"),
    "nopoll_log_enable": ("works", "works in every build (no SHOW_DEBUG_LOG needed); lines also go to the Rust `log` crate"),
    "nopoll_strdup_printf": ("works", "C shim compiled by build.rs"),
    "nopoll_strdup_printfv": ("works", "C shim compiled by build.rs"),
    "__nopoll_log": ("works", "C shim; forwards to the context's log"),
    "nopoll_conn_produce_accept_key": ("works", "exported without a prototype, as upstream"),
    "nopoll_conn_complete_pending_write": ("works", "the loop also flushes pending output by itself"),
    "nopoll_conn_flush_writes": ("works", "waits for writability instead of sleeping 100 ms steps"),
    "nopoll_cleanup_library": ("works", "nothing global to release without TLS"),
    "nopoll_conn_opts_set_ssl_certs": (TLS, "stores the paths; true if the files are readable"),
    "nopoll_conn_opts_set_ssl_protocol": (TLS, "stored"),
    "nopoll_conn_opts_ssl_peer_verify": (TLS, "stored"),
    "nopoll_conn_is_tls_on": (TLS, "always false"),
}
for f in funcs:
    if f not in notes and ("tls" in f or "ssl" in f or f == "nopoll_listener_set_certificate"):
        notes[f] = (TLS, "links, logs and returns NULL / false")

print("| function | status | notes |")
print("|---|---|---|")
for f in funcs:
    status, note = notes.get(f, ("works", ""))
    print(f"| `{f}` | {status} | {note} |")
