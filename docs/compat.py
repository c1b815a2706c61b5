#!/usr/bin/env python3
"""Prints the README's compatibility table: every function of the nopoll
contract (docs/NOPOLL-API.md) with its status here; `--write` puts it in
README.md between the compat markers. Statuses and notes live in this file.
tests/compat.rs fails when the README's table differs from this output, so
the table always lists every contract function."""
import re, sys, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
contract = (root / "docs/NOPOLL-API.md").read_text()
funcs = sorted(set(re.findall(r"^\| `((?:__)?nopoll_[a-z0-9_]+)` \| `", contract, re.M)))
funcs = [f for f in funcs if f not in ("nopoll_bool", "nopoll_is_disconnected")]

notes = {
    "nopoll_ctx_free": ("declared, not defined", "as upstream: the prototype exists, calling it fails to link"),
    "nopoll_conn_send_text": ("deviates", "text is checked to be UTF-8 (the docs promise it, upstream does not): invalid text returns -1. Never sleeps: a short write returns at once (see conventions). Before the handshake completes: returns the length, the frame follows the 101 (upstream writes it ahead of the 101)"),
    "nopoll_conn_send_text_fragment": ("deviates", "UTF-8 checked across fragments; never sleeps; the frames after the first go out as continuations (upstream repeats the text opcode, which RFC 6455 forbids)"),
    "nopoll_conn_send_binary": ("works", "never sleeps on a full socket (upstream retries up to 50 x 100 ms)"),
    "nopoll_conn_send_binary_fragment": ("deviates", "never sleeps; the frames after the first go out as continuations (upstream repeats the binary opcode, which RFC 6455 forbids)"),
    "nopoll_conn_get_msg": ("deviates", "whole messages by default (upstream hands out frames); `nopoll_ctx_set_fragment_delivery` restores frames and partial frames"),
    "nopoll_ctx_set_on_msg": ("deviates", "whole messages by default, as for get_msg"),
    "nopoll_conn_set_on_msg": ("deviates", "whole messages by default, as for get_msg"),
    "nopoll_loop_wait": ("works", "epoll (poll elsewhere), no 500 ms slices, no FD_SETSIZE cap; also drops handshakes older than 10 s. Like upstream's, every call looks at readiness at least once (a wait of 0 ms when its timeout is already up), so a short timeout on a slow machine still serves ready input and pending writes"),
    "nopoll_loop_stop": ("works", "wakes the loop at once (eventfd; a UDP socket through a firmware table); async-signal-safe with the libc table"),
    "nopoll_conn_host": ("works", "behind a trusted proxy (PROXY header on a listener that requires one, `X-Forwarded-For` / `X-Real-IP` from `nopoll_ctx_set_trusted_proxies`), the client's address; `nopoll_conn_proxy_host` gives the proxy's"),
    "nopoll_conn_port": ("works", "the client's port when a PROXY header told it"),
    "nopoll_conn_is_ok": ("works", "false, not a crash, for a closed or released handle"),
    "nopoll_conn_is_ready": ("works", "true also when the peer sent messages and closed right after the 101 (in one read): the close shows only after `nopoll_conn_get_msg` handed out the last of them; until then `nopoll_conn_is_ok` stays true"),
    "nopoll_conn_wait_until_connection_ready": ("works", "true also when the peer sent messages and closed right after the 101 (in one read): the close shows only after `nopoll_conn_get_msg` handed out the last of them; until then `nopoll_conn_is_ok` stays true"),
    "nopoll_conn_set_accepted_protocol": ("deviates", "without it the server answers the first requested subprotocol, not the raw list (RFC 6455 clients reject a list)"),
    "nopoll_conn_opts_skip_origin_check": ("works", "a missing Origin is accepted by default anyway (RFC 6455); on_open can refuse it"),
    "nopoll_thread_handlers": ("works", "the hooks back `nopoll_mutex_*`, and in no_std builds every lock of the library (install them first); std builds lock with std mutexes either way"),
    "nopoll_conn_accept": ("works", "waits for a connection (listener sockets are non-blocking for the loop); runs on_accept; a connection found closed while polling stays registered until nopoll_conn_close, as upstream"),
    "nopoll_io_get_engine": ("works", "epoll (default on Linux with the libc table) or poll (through the socket table); SELECT gives poll (no FD_SETSIZE cap); an unknown type gives the default"),
    "nopoll_ctx_set_certificate": ("deviates", "paths stored per context; files are opened at the first TLS accept; a second call for the same serverName keeps the first entry, as upstream. The NULL entry serves TLS listeners without a certificate of their own; a named entry is chosen by SNI when the client sends that name (upstream never looks at SNI)"),
    "nopoll_ctx_find_certificate": ("works", "returned strings belong to the context"),
    "nopoll_listener_from_socket": ("works", "also takes the application's listening socket (upstream's port-sharing sample does): a listener object the loop never accepts on"),
    "nopoll_conn_accept_complete": ("works", "runs on_accept as upstream, then TLS when `tls_on` (or the listener is a TLS one): the listener's certificate, else the context's default; a NULL listener is allowed"),
    "nopoll_conn_accept_socket": ("works", "runs on_accept; NULL for a socket that is not connected"),
    "nopoll_listener_accept": ("works", "waits for a connection also on a non-blocking listening socket; the new socket is blocking, as accept(2) returns it"),
    "nopoll_listener_sock_listen": ("works", "a blocking socket (as upstream's), never fd 0-2"),
    "nopoll_conn_set_socket": ("works", "the loop then serves the new socket"),
    "nopoll_conn_opts_set_interface": ("works", "an interface name (SO_BINDTODEVICE, as upstream) or a local address to bind to"),
    "nopoll_conn_new_with_socket": ("works", "when it fails (NULL) the socket stays the caller's, open (upstream closes it when the request cannot be sent)"),
    "nopoll_ctx_unregister_conn": ("works", "the loop stops watching the socket"),
    "__nopoll_conn_send_common": ("works", "continues a fragmented message; a continuation with none in progress goes out as binary"),
    "nopoll_conn_send_frame": ("works", "payloads above NOPOLL_MAX_FRAME_SIZE_LIMIT give -1, as for every send (no nopoll peer accepts them, an int cannot report them)"),
    "nopoll_conn_get_accepted_protocol": ("works", "client: what the server answered, also a subprotocol the client did not offer (accepted with a warning in the log, as upstream accepts it; RFC 6455 would fail the connection)"),
    "nopoll_conn_get_close_status": ("works", "a close frame refused for its code (reserved or out of range: answered with 1002) still reports the code the peer sent"),
    "nopoll_conn_get_close_reason": ("works", "also the reason of a close frame refused for its code"),
    "nopoll_timeval_substract": ("works", "result normalised like timersub(3): 0 <= tv_usec < 1000000"),
    "nopoll_conn_ref_count": ("works", "owner references; the library's transient ones are not counted"),
    "__nopoll_conn_owner_ref_count": ("works", "same as nopoll_conn_ref_count"),
    "__nopoll_conn_transient_ref": ("works", "same as nopoll_conn_ref"),
    "__nopoll_conn_transient_unref": ("works", "same as nopoll_conn_unref"),
    "nopoll_conn_close_ext": ("deviates", "the status is sent even when reason_size is 0 (upstream then sends an empty close frame, dropping the code the caller passed); any other code of 1000-4999 goes out verbatim with its reason, as upstream (a reason beyond the 123 bytes a close frame holds, or not UTF-8, is cut there: upstream sends it whole and peers fail the connection); 1005, 1006, 1015 (forbidden on the wire by RFC 6455) and codes outside 1000-4999 are never sent: an empty close frame goes instead"),
    "nopoll_log_enable": ("works", "works in every build (no SHOW_DEBUG_LOG needed); lines also go to the Rust `log` crate"),
    "nopoll_strdup_printf": ("works", "C shim compiled by build.rs"),
    "nopoll_strdup_printfv": ("works", "C shim compiled by build.rs"),
    "__nopoll_log": ("works", "C shim; forwards to the context's log"),
    "nopoll_conn_produce_accept_key": ("works", "exported without a prototype, as upstream"),
    "nopoll_conn_complete_pending_write": ("works", "the loop also flushes pending output by itself"),
    "nopoll_conn_pending_write_bytes": ("deviates", "counts only bytes the socket refused: answers a message handler sends are gathered and written once per batch, and are not pending (a flush loop keeps the batching)"),
    "nopoll_conn_flush_writes": ("works", "waits for writability instead of sleeping 100 ms steps"),
    "nopoll_msg_unref": ("works", "refused, with a log line, on the message an on_msg handler is running with unless it was `nopoll_msg_ref`'d (that reference is the library's; upstream frees the message under the handler)"),
    "nopoll_cleanup_library": ("works", "nothing global to release (OpenSSL 3 cleans up by itself, upstream does nothing either on OpenSSL >= 1.1)"),
    "nopoll_conn_opts_set_ssl_certs": ("works", "true if the files given are readable; client: certificate + key (+ chain), CA added to the system store; listener: certificate, key, chain and the CA that verifies client certificates"),
    "nopoll_conn_opts_set_ssl_protocol": ("deviates", "a minimum, not one version: TLSV1_2, FLEXIBLE and the SSLv2/3 values mean TLS 1.2+ (1.3 included); TLSV1_1 / TLSV1 mean down to 1.1 / 1.0 (and OpenSSL security level 0 on that connection only). Upstream on OpenSSL 3 negotiates whatever the system allows"),
    "nopoll_conn_opts_ssl_peer_verify": ("works", "as upstream: NULL options verify, options from nopoll_conn_opts_new do not unless this asks; a verifying client also checks the host name (see deviations)"),
    "nopoll_conn_is_tls_on": ("works", "true for a TLS connection once its handshake completed (as upstream), and for a TLS listener"),
    "nopoll_conn_tls_new": ("deviates", "the TLS handshake before returning, bounded by the connect timeout, waiting on the socket (upstream sleep-polls 10 ms x 1000); NULL for argument/TCP failures, a connection that is not ok (with a log line) for TLS failures; host name verified; no SNI for IP literals; port NULL means 443 (upstream: 80)"),
    "nopoll_conn_tls_new6": ("deviates", "as nopoll_conn_tls_new"),
    "nopoll_conn_tls_new_with_socket": ("deviates", "as nopoll_conn_tls_new; on TLS failure the socket is closed with the connection"),
    "nopoll_listener_tls_new": ("works", "TLS runs per accepted connection in the loop, after on_accept, within the handshake timeout; the SSL_CTX is built once per listener (upstream: per connection, files re-read)"),
    "nopoll_listener_tls_new6": ("works", "as nopoll_listener_tls_new"),
    "nopoll_listener_tls_new_opts": ("works", "as nopoll_listener_tls_new; options verify client certificates only when ssl_peer_verify asks, against their CA only (upstream also trusts the system store)"),
    "nopoll_listener_tls_new_opts6": ("works", "as nopoll_listener_tls_new_opts"),
    "nopoll_listener_set_certificate": ("works", "false unless a TLS listener and the files are readable; used from the next accept"),
    "nopoll_ctx_set_ssl_context_creator": ("works", "called per TLS connection, both roles; the SSL_CTX* it returns is adopted (freed with the connection), as upstream; its options argument is NULL (ours are consumed by then); NULL from it fails the connection"),
    "nopoll_ctx_set_post_ssl_check": ("works", "called after every TLS handshake, both roles, with the real SSL_CTX* and SSL*; false closes the connection"),
}
for f in funcs:
    if f not in notes and ("tls" in f or "ssl" in f):
        raise SystemExit("docs/compat.py: no note for " + f)

lines = ["| function | status | notes |", "|---|---|---|"]
for f in funcs:
    status, note = notes.get(f, ("works", ""))
    lines.append(f"| `{f}` | {status} | {note} |")
table = "\n".join(lines) + "\n"

if sys.argv[1:] == ["--write"]:
    # Puts the table in README.md between the markers.
    readme = root / "README.md"
    text = readme.read_text()
    begin, end = "<!-- compat:begin -->\n", "<!-- compat:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + begin + table + end + tail)
else:
    sys.stdout.write(table)
