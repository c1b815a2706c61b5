//! TLS entry points: they link and fail cleanly until TLS is implemented
//! (NULL, `nopoll_false`, or options that are stored but unused), logging why.

#[allow(unused_imports)]
use crate::prelude::*;

use super::opts::{set_ssl, take_opts};
use super::types::*;
use super::{boundary, conn_from, cstr, ctx_cstr, ctx_from};
use crate::runtime::{Context, LogLevel};
use core::ffi::{c_char, c_int, CStr};

fn not_yet(ctx: Option<Context>, what: &str) {
    let msg = format_args!("{what}: TLS is not implemented in this build");
    match ctx {
        Some(c) => c.log(LogLevel::Critical, msg),
        None => log::error!(target: "nopoll", "{msg}"),
    }
}

/// False: no connection runs over TLS yet.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_is_tls_on(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || {
        let _ = conn;
        nopoll_false
    })
}

/// Stores certificate paths in the options; true only if the files given
/// are readable (they are used once TLS lands).
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_opts_set_ssl_certs(
    opts: *mut noPollConnOpts,
    certificate: *const c_char,
    private_key: *const c_char,
    chain_certificate: *const c_char,
    ca_certificate: *const c_char,
) -> nopoll_bool {
    // SAFETY: per this function's contract.
    let v = unsafe {
        [
            cstr(certificate),
            cstr(private_key),
            cstr(chain_certificate),
            cstr(ca_certificate),
        ]
    };
    boundary(nopoll_false, || {
        if opts.is_null() {
            return nopoll_false;
        }
        // Without std there is no file system to look at: taken as given.
        #[cfg(feature = "std")]
        let readable = v.iter().flatten().all(|p| std::fs::File::open(p).is_ok());
        #[cfg(not(feature = "std"))]
        let readable = true;
        let [c, k, ch, ca] = v.map(|s| s.map(str::to_string));
        set_ssl(opts, |o| {
            o.certificate = c;
            o.private_key = k;
            o.chain_certificate = ch;
            o.ca_certificate = ca;
        });
        readable as nopoll_bool
    })
}

/// Selects the TLS method for these options (stored).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_set_ssl_protocol(
    opts: *mut noPollConnOpts,
    ssl_protocol: noPollSslProtocol,
) {
    boundary((), || set_ssl(opts, |o| o.ssl_protocol = ssl_protocol))
}

/// Peer verification on/off (stored).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_ssl_peer_verify(opts: *mut noPollConnOpts, verify: nopoll_bool) {
    boundary((), || set_ssl(opts, |o| o.ssl_verify = verify != 0))
}

fn tls_client(ctx: *mut noPollCtx, options: *mut noPollConnOpts) -> *mut noPollConn {
    let _ = take_opts(options);
    not_yet(ctx_from(ctx), "nopoll_conn_tls_new");
    core::ptr::null_mut()
}

/// wss:// client: NULL until TLS is implemented (options consumed).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_tls_new(
    ctx: *mut noPollCtx,
    options: *mut noPollConnOpts,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    let _ = (host_ip, host_port, host_name, get_url, protocols, origin);
    boundary(core::ptr::null_mut(), || tls_client(ctx, options))
}

/// IPv6 wss:// client: NULL until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_tls_new6(
    ctx: *mut noPollCtx,
    options: *mut noPollConnOpts,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    let _ = (host_ip, host_port, host_name, get_url, protocols, origin);
    boundary(core::ptr::null_mut(), || tls_client(ctx, options))
}

/// TLS client over a connected socket: NULL until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_tls_new_with_socket(
    ctx: *mut noPollCtx,
    options: *mut noPollConnOpts,
    socket: c_int,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    let _ = (
        socket, host_ip, host_port, host_name, get_url, protocols, origin,
    );
    boundary(core::ptr::null_mut(), || tls_client(ctx, options))
}

fn tls_listener(ctx: *mut noPollCtx, opts: *mut noPollConnOpts) -> *mut noPollConn {
    let _ = take_opts(opts);
    not_yet(ctx_from(ctx), "nopoll_listener_tls_new");
    core::ptr::null_mut()
}

/// wss:// listener: NULL until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    let _ = (host, port);
    boundary(core::ptr::null_mut(), || {
        tls_listener(ctx, core::ptr::null_mut())
    })
}

/// IPv6 wss:// listener: NULL until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new6(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    let _ = (host, port);
    boundary(core::ptr::null_mut(), || {
        tls_listener(ctx, core::ptr::null_mut())
    })
}

/// wss:// listener with options: NULL until TLS is implemented (consumed).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new_opts(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    let _ = (host, port);
    boundary(core::ptr::null_mut(), || tls_listener(ctx, opts))
}

/// IPv6 wss:// listener with options: NULL until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new_opts6(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    let _ = (host, port);
    boundary(core::ptr::null_mut(), || tls_listener(ctx, opts))
}

/// Certificate paths for a TLS listener: false until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_set_certificate(
    listener: *mut noPollConn,
    certificate: *const c_char,
    private_key: *const c_char,
    chain_file: *const c_char,
) -> nopoll_bool {
    let _ = (certificate, private_key, chain_file);
    boundary(nopoll_false, || {
        not_yet(
            conn_from(listener).map(|c| c.ctx()),
            "nopoll_listener_set_certificate",
        );
        nopoll_false
    })
}

/// Stores (copies of) certificate, key and chain *paths* for TLS
/// listeners of the context, under `serverName` (NULL: the default entry).
/// The files are not opened here. An entry already stored for the same
/// serverName is kept (as upstream). False if ctx, certificateFile or
/// privateKey is NULL (or a string is not UTF-8).
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_ctx_set_certificate(
    ctx: *mut noPollCtx,
    serverName: *const c_char,
    certificateFile: *const c_char,
    privateKey: *const c_char,
    optionalChainFile: *const c_char,
) -> nopoll_bool {
    // SAFETY: per this function's contract.
    let strs = unsafe {
        [
            c_text(serverName),
            c_text(certificateFile),
            c_text(privateKey),
            c_text(optionalChainFile),
        ]
    };
    boundary(nopoll_false, || {
        let Some(c) = ctx_from(ctx) else {
            return nopoll_false;
        };
        let [Ok(name), Ok(Some(cert)), Ok(Some(key)), Ok(chain)] = strs else {
            c.log(
                LogLevel::Critical,
                format_args!(
                    "nopoll_ctx_set_certificate: certificateFile and privateKey are required (UTF-8 paths)"
                ),
            );
            return nopoll_false;
        };
        c.set_certificate(name, cert, key, chain) as nopoll_bool
    })
}

/// A C string argument: Ok(None) for NULL, Err for text that is not UTF-8.
///
/// # Safety
/// `p` is NULL or NUL-terminated and outlives `'a`.
unsafe fn c_text<'a>(p: *const c_char) -> Result<Option<&'a str>, ()> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map(Some)
        .map_err(drop)
}

/// Looks up the certificate store: the entry for `serverName`; with NULL,
/// the entry stored without a serverName, else the first one. Each
/// out-parameter is optional and receives a string owned by the context
/// (valid as long as the context; NULL for a chain that was not given).
/// False when nothing matches (out-parameters untouched).
///
/// # Safety
/// `serverName` is NULL or NUL-terminated; each out-parameter is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_ctx_find_certificate(
    ctx: *mut noPollCtx,
    serverName: *const c_char,
    certificateFile: *mut *const c_char,
    privateKey: *mut *const c_char,
    optionalChainFile: *mut *const c_char,
) -> nopoll_bool {
    // SAFETY: per this function's contract.
    let name = unsafe { c_text(serverName) };
    boundary(nopoll_false, || {
        let (Some(c), Ok(name)) = (ctx_from(ctx), name) else {
            return nopoll_false;
        };
        let Some(found) = c.find_certificate(name) else {
            return nopoll_false;
        };
        let outs = [
            (certificateFile, Some(found.certificate.as_str())),
            (privateKey, Some(found.private_key.as_str())),
            (optionalChainFile, found.chain.as_deref()),
        ];
        for (out, value) in outs {
            if !out.is_null() {
                // SAFETY: a non-NULL out-parameter is writable per the contract.
                unsafe { *out = ctx_cstr(&c, value) };
            }
        }
        nopoll_true
    })
}

/// Post-TLS-handshake check: stored nowhere until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_post_ssl_check(
    ctx: *mut noPollCtx,
    post_ssl_check: noPollSslPostCheck,
    user_data: noPollPtr,
) {
    let _ = (post_ssl_check, user_data);
    boundary((), || {
        not_yet(ctx_from(ctx), "nopoll_ctx_set_post_ssl_check")
    })
}

/// SSL_CTX creator: ignored until TLS is implemented.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_ssl_context_creator(
    ctx: *mut noPollCtx,
    context_creator: noPollSslContextCreator,
    user_data: noPollPtr,
) {
    let _ = (context_creator, user_data);
    boundary((), || {
        not_yet(ctx_from(ctx), "nopoll_ctx_set_ssl_context_creator")
    })
}
