//! `nopoll_conn_opts_*`: connection options.

#[allow(unused_imports)]
use crate::prelude::*;

use super::handle::Table;
use super::types::*;
use super::{boundary, cstr};
use crate::protocol::DeflateConfig;
use crate::sync::Arc;
use crate::sync::Lock;
use core::ffi::{c_char, c_long};

/// What an options object holds.
#[derive(Clone, Debug)]
pub(crate) struct OptsData {
    pub reuse: bool,
    pub cookie: Option<String>,
    pub extra_headers: Option<String>,
    pub interface: Option<String>,
    pub max_frame_size: Option<u64>,
    pub permessage_deflate: Option<DeflateConfig>,
    pub add_origin: bool,
    pub skip_origin_check: bool,
    pub ssl_protocol: noPollSslProtocol,
    pub ssl_verify: bool,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub chain_certificate: Option<String>,
    pub ca_certificate: Option<String>,
}

impl Default for OptsData {
    fn default() -> Self {
        OptsData {
            reuse: false,
            cookie: None,
            extra_headers: None,
            interface: None,
            max_frame_size: None,
            permessage_deflate: None,
            add_origin: true,
            skip_origin_check: false,
            ssl_protocol: NOPOLL_METHOD_TLS_FLEXIBLE,
            ssl_verify: false,
            certificate: None,
            private_key: None,
            chain_certificate: None,
            ca_certificate: None,
        }
    }
}

pub(crate) struct OptsObj {
    pub data: Lock<OptsData>,
}

pub(crate) static OPTS: Table<OptsObj> = Table::new(3);

/// Reads an options handle and releases it unless `reuse` is set (what
/// every API that receives options does, also on failure). NULL gives the
/// defaults.
pub(crate) fn take_opts(opts: *mut noPollConnOpts) -> OptsData {
    if opts.is_null() {
        return OptsData::default();
    }
    let Some(o) = OPTS.get(opts as usize) else {
        return OptsData::default();
    };
    let data = o.data.lock().clone();
    drop(o);
    if !data.reuse {
        OPTS.release(opts as usize);
    }
    data
}

fn with_opts(opts: *mut noPollConnOpts, f: impl FnOnce(&mut OptsData)) {
    if let Some(o) = OPTS.get(opts as usize) {
        f(&mut o.data.lock());
    }
}

/// New options, one reference owned by the caller (or by the first API
/// that receives them, unless `reuse` is set).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_new() -> *mut noPollConnOpts {
    boundary(core::ptr::null_mut(), || {
        let obj = Arc::new(OptsObj {
            data: Lock::new(OptsData::default()),
        });
        OPTS.insert(&obj, 1).unwrap_or(0) as *mut noPollConnOpts
    })
}

/// +1 reference; false for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_ref(opts: *mut noPollConnOpts) -> nopoll_bool {
    boundary(nopoll_false, || OPTS.add_ref(opts as usize) as nopoll_bool)
}

/// -1 reference; frees at zero.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_unref(opts: *mut noPollConnOpts) {
    boundary((), || {
        OPTS.release(opts as usize);
    })
}

/// Same as `nopoll_conn_opts_unref`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_free(opts: *mut noPollConnOpts) {
    boundary((), || nopoll_conn_opts_unref(opts))
}

/// Releases options unless they are flagged for reuse.
#[unsafe(no_mangle)]
pub extern "C" fn __nopoll_conn_opts_release_if_needed(options: *mut noPollConnOpts) {
    boundary((), || {
        let _ = take_opts(options);
    })
}

/// reuse = true: receiving APIs do not consume the options.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_set_reuse(opts: *mut noPollConnOpts, reuse: nopoll_bool) {
    boundary((), || with_opts(opts, |o| o.reuse = reuse != 0))
}

/// Cookie header for the client handshake (copied; NULL unsets).
///
/// # Safety
/// `cookie_content` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_opts_set_cookie(
    opts: *mut noPollConnOpts,
    cookie_content: *const c_char,
) {
    // SAFETY: per this function's contract.
    let v = unsafe { cstr(cookie_content) }.map(str::to_string);
    boundary((), || with_opts(opts, |o| o.cookie = v))
}

/// Extra header text ("\r\nName: value"...) for the client handshake.
///
/// # Safety
/// `extra_headers` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_opts_set_extra_headers(
    opts: *mut noPollConnOpts,
    extra_headers: *const c_char,
) {
    // SAFETY: per this function's contract.
    let v = unsafe { cstr(extra_headers) }.map(str::to_string);
    boundary((), || with_opts(opts, |o| o.extra_headers = v))
}

/// Local address to bind client sockets to (NULL = default).
///
/// # Safety
/// `_interface` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_conn_opts_set_interface(
    opts: *mut noPollConnOpts,
    _interface: *const c_char,
) {
    // SAFETY: per this function's contract.
    let v = unsafe { cstr(_interface) }.map(str::to_string);
    boundary((), || with_opts(opts, |o| o.interface = v))
}

/// Incoming frame limit overriding the context's; invalid values ignored.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_set_max_frame_size(
    opts: *mut noPollConnOpts,
    max_frame_size: c_long,
) {
    boundary((), || {
        if max_frame_size > 0 && max_frame_size <= NOPOLL_MAX_FRAME_SIZE_LIMIT {
            with_opts(opts, |o| o.max_frame_size = Some(max_frame_size as u64))
        }
    })
}

/// Extension: the client offers permessage-deflate (RFC 7692; default
/// off). `no_context_takeover` asks the server for no context takeover in
/// both directions (no compressor memory between messages); a server that
/// does not grant it fails the connection. Compression level 1.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_set_permessage_deflate(
    opts: *mut noPollConnOpts,
    enable: nopoll_bool,
    no_context_takeover: nopoll_bool,
) {
    boundary((), || {
        with_opts(opts, |o| {
            o.permessage_deflate = (enable != 0).then(|| DeflateConfig {
                no_context_takeover: no_context_takeover != 0,
                ..DeflateConfig::default()
            })
        })
    })
}

/// Client: whether to send an Origin header (default true).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_add_origin_header(opts: *mut noPollConnOpts, add: nopoll_bool) {
    boundary((), || with_opts(opts, |o| o.add_origin = add != 0))
}

/// Server: accept handshakes without Origin (already the default here).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_conn_opts_skip_origin_check(
    opts: *mut noPollConnOpts,
    skip_check: nopoll_bool,
) {
    boundary((), || {
        with_opts(opts, |o| o.skip_origin_check = skip_check != 0)
    })
}

pub(crate) fn set_ssl(opts: *mut noPollConnOpts, f: impl FnOnce(&mut OptsData)) {
    with_opts(opts, f)
}
