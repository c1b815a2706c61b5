//! TLS entry points (wss:// in both roles): over the system OpenSSL, or
//! over the C table installed with `nopoll_install_tls_ops` (every build;
//! firmware builds have only the table). Without either, TLS connections
//! fail with a log line saying why.

#[allow(unused_imports)]
use crate::prelude::*;

use super::conn::{client_args, connect_common, given_opts, listen_common};
use super::opts::set_ssl;
use super::opts::OptsData;
use super::types::*;
use super::{boundary, conn_from, cstr, ctx_cstr, ctx_from};
#[allow(unused_imports)]
use super::{conn_handle, ctx_handle, UserData};
use crate::runtime::LogLevel;
#[allow(unused_imports)]
use crate::runtime::{Connection, Context};
use crate::sync::Arc;
use crate::tls::ops::noPollTlsOps;
use core::ffi::{c_char, c_int, CStr};

/// The runtime's TLS options from nopoll's options object.
pub(super) fn tls_options(o: &OptsData, verify: bool) -> crate::TlsOptions {
    crate::TlsOptions {
        certificate: o.certificate.clone(),
        private_key: o.private_key.clone(),
        chain: o.chain_certificate.clone(),
        ca: o.ca_certificate.clone(),
        protocol: o.ssl_protocol,
        verify,
    }
}

#[cfg(not(feature = "tls"))]
fn not_built(ctx: Option<Context>, what: &str) {
    let msg = format_args!("{what}: built without the tls feature");
    match ctx {
        Some(c) => c.log(LogLevel::Critical, msg),
        None => log::error!(target: "nopoll", "{msg}"),
    }
}

/// True when the connection runs TLS (a listener: accepts TLS).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_is_tls_on(conn: *mut noPollConn) -> nopoll_bool {
    boundary(nopoll_false, || {
        conn_from(conn).is_some_and(|c| c.is_tls()) as nopoll_bool
    })
}

/// Stores certificate paths in the options; true only if the files given
/// are readable (read when a TLS connection or listener uses the options).
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

/// wss:// client over IPv4: TCP connect, then the TLS handshake (bounded
/// by the connect timeout), then the upgrade request. NULL for argument or
/// TCP failures; a connection that is not ok when TLS fails (why is
/// logged). NULL `options`: the peer is verified (chain and host name).
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_tls_new(
    ctx: *mut noPollCtx,
    options: *mut noPollConnOpts,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    // SAFETY: forwarded contract.
    let a = unsafe { client_args(host_ip, host_port, host_name, get_url, protocols, origin) };
    boundary(core::ptr::null_mut(), || {
        connect_common(ctx, options, a, false, None, true)
    })
}

/// wss:// client over IPv6 (see `nopoll_conn_tls_new`).
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_tls_new6(
    ctx: *mut noPollCtx,
    options: *mut noPollConnOpts,
    host_ip: *const c_char,
    host_port: *const c_char,
    host_name: *const c_char,
    get_url: *const c_char,
    protocols: *const c_char,
    origin: *const c_char,
) -> *mut noPollConn {
    // SAFETY: forwarded contract.
    let a = unsafe { client_args(host_ip, host_port, host_name, get_url, protocols, origin) };
    boundary(core::ptr::null_mut(), || {
        connect_common(ctx, options, a, true, None, true)
    })
}

/// wss:// client over a socket the caller connected (see
/// `nopoll_conn_tls_new`).
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_tls_new_with_socket(
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
    // SAFETY: forwarded contract.
    let a = unsafe { client_args(host_ip, host_port, host_name, get_url, protocols, origin) };
    boundary(core::ptr::null_mut(), || {
        if socket < 0 {
            let _ = super::opts::take_opts(options);
            return core::ptr::null_mut();
        }
        connect_common(ctx, options, a, false, Some(socket), true)
    })
}

/// wss:// listener (IPv4): TLS runs on each accepted connection, driven by
/// the loop, after `on_accept`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_common(ctx, None, host, port, false, Some(listen_tls))
    })
}

/// `listen_common`'s wss:// listener: `opts` given or not.
fn listen_tls(
    c: &crate::runtime::Context,
    host: &str,
    port: &str,
    ipv6: bool,
    o: Option<&OptsData>,
) -> Result<crate::runtime::Connection, crate::runtime::Error> {
    // A listener verifies clients only when its options ask for it.
    let t = o.map(|o| tls_options(o, o.ssl_verify));
    c.listen_tls(host, port, ipv6, t)
}

/// wss:// listener (IPv6).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new6(
    ctx: *mut noPollCtx,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_common(ctx, None, host, port, true, Some(listen_tls))
    })
}

/// wss:// listener with options (certificate, CA, client verification,
/// version; consumed unless reuse is set).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new_opts(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_common(
            ctx,
            given_opts(opts).as_ref(),
            host,
            port,
            false,
            Some(listen_tls),
        )
    })
}

/// IPv6 wss:// listener with options.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_listener_tls_new_opts6(
    ctx: *mut noPollCtx,
    opts: *mut noPollConnOpts,
    host: *const c_char,
    port: *const c_char,
) -> *mut noPollConn {
    boundary(core::ptr::null_mut(), || {
        listen_common(
            ctx,
            given_opts(opts).as_ref(),
            host,
            port,
            true,
            Some(listen_tls),
        )
    })
}

/// Certificate, key and optional chain files of a TLS listener (used from
/// the next accepted connection on). False if the listener is not a TLS
/// listener, certificate or key is NULL, or a file cannot be read.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_listener_set_certificate(
    listener: *mut noPollConn,
    certificate: *const c_char,
    private_key: *const c_char,
    chain_file: *const c_char,
) -> nopoll_bool {
    // SAFETY: per this function's contract.
    let (c, k, ch) = unsafe { (cstr(certificate), cstr(private_key), cstr(chain_file)) };
    boundary(nopoll_false, || {
        let Some(l) = conn_from(listener) else {
            return nopoll_false;
        };
        {
            let (Some(c), Some(k)) = (c, k) else {
                l.ctx().log(
                    LogLevel::Critical,
                    format_args!(
                        "nopoll_listener_set_certificate: certificate and key are required"
                    ),
                );
                return nopoll_false;
            };
            if !l.set_tls_certificate(c, k, ch) {
                l.ctx().log(
                    LogLevel::Critical,
                    format_args!(
                        "nopoll_listener_set_certificate: not a TLS listener, or cannot read {c}, {k} or {}",
                        ch.unwrap_or("(no chain)")
                    ),
                );
                return nopoll_false;
            }
            nopoll_true
        }
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

/// Called after every TLS handshake (both roles) with the `SSL_CTX*` and
/// the `SSL*` (with a C TLS table: NULL and the table's native session);
/// returning false closes the connection. NULL uninstalls.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_post_ssl_check(
    ctx: *mut noPollCtx,
    post_ssl_check: noPollSslPostCheck,
    user_data: noPollPtr,
) {
    boundary((), || {
        let Some(c) = ctx_from(ctx) else {
            return;
        };
        {
            let ud = UserData(user_data);
            let hook: Option<crate::tls::PostCheck> = post_ssl_check.map(|f| {
                let h: crate::tls::PostCheck =
                    Arc::new(move |ctx: &Context, conn: &Connection, ssl_ctx, ssl| {
                        let (c, k) = (ctx_handle(ctx), conn_handle(conn));
                        // SAFETY: `f` is the function C installed with this
                        // user data; the handles are valid while the library
                        // holds both objects; `ssl_ctx`/`ssl` are the live
                        // OpenSSL objects of this connection.
                        unsafe { f(c, k, ssl_ctx, ssl, ud.get()) != 0 }
                    });
                h
            });
            *c.inner.tls.post_check.lock() = hook;
        }
    })
}

/// Installs the `SSL_CTX*` creator: called for every TLS connection (both
/// roles); the context it returns is adopted (freed with the connection,
/// as upstream). The options argument it receives is NULL (ours are
/// consumed by then). NULL uninstalls.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_ctx_set_ssl_context_creator(
    ctx: *mut noPollCtx,
    context_creator: noPollSslContextCreator,
    user_data: noPollPtr,
) {
    boundary((), || {
        let Some(c) = ctx_from(ctx) else {
            return;
        };
        #[cfg(feature = "tls")]
        {
            let ud = UserData(user_data);
            let hook: Option<crate::tls::Creator> = context_creator.map(|f| {
                let h: crate::tls::Creator =
                    Arc::new(move |ctx: &Context, conn: &Connection, is_client: bool| {
                        let (c, k) = (ctx_handle(ctx), conn_handle(conn));
                        // SAFETY: as for the post check; options are NULL.
                        unsafe {
                            f(
                                c,
                                k,
                                core::ptr::null_mut(),
                                is_client as nopoll_bool,
                                ud.get(),
                            )
                        }
                    });
                h
            });
            *c.inner.tls.creator.lock() = hook;
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (context_creator, user_data);
            not_built(Some(c), "nopoll_ctx_set_ssl_context_creator");
        }
    })
}

/// Installs a table of TLS functions (mbedTLS, wolfSSL, esp-tls...) for the
/// whole process, used instead of OpenSSL from then on; in every build
/// (firmware builds have no other TLS). The table is copied. False if
/// `ops` is NULL, has another version or a NULL entry, or a table is
/// already installed.
///
/// # Safety
/// `ops` is NULL or points to a readable `noPollTlsOps` whose entries meet
/// the contract documented on each field.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_install_tls_ops(ops: *const noPollTlsOps) -> nopoll_bool {
    boundary(nopoll_false, || {
        // SAFETY: NULL or readable (contract); every field is an integer or
        // an Option of a function pointer, so any bit pattern C wrote for a
        // NULL or a function is a valid value.
        let Some(t) = (unsafe { ops.as_ref() }) else {
            return nopoll_false;
        };
        let complete = t.version == crate::tls::ops::NOPOLL_TLS_OPS_VERSION
            && t.session_new.is_some()
            && t.handshake.is_some()
            && t.read.is_some()
            && t.write.is_some()
            && t.pending.is_some()
            && t.close_notify.is_some()
            && t.session_free.is_some()
            && t.verify_result.is_some()
            && t.native.is_some();
        if !complete {
            return nopoll_false;
        }
        let copy = *t;
        let stored: &'static noPollTlsOps = Box::leak(Box::new(copy));
        crate::tls::ops::install(stored) as nopoll_bool
    })
}
