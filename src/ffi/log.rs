//! `nopoll_log_*`: logging, bridged to the `log` crate.

#[allow(unused_imports)]
use crate::prelude::*;

use super::types::*;
use super::{boundary, cstr, ctx_from, ctx_handle, UserData};
use crate::runtime::{LogLevel, LogSink};
use crate::sync::Arc;
use alloc::ffi::CString;
use core::ffi::{c_char, c_int};

fn level_from_c(level: c_int) -> LogLevel {
    match level {
        NOPOLL_LEVEL_DEBUG => LogLevel::Debug,
        NOPOLL_LEVEL_WARNING => LogLevel::Warning,
        _ => LogLevel::Critical,
    }
}

/// Console logging on/off for the context.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_log_enable(ctx: *mut noPollCtx, value: nopoll_bool) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.log_enabled = value != 0);
        }
    })
}

/// Whether console logging is on (false for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_log_is_enabled(ctx: *mut noPollCtx) -> nopoll_bool {
    boundary(nopoll_false, || {
        ctx_from(ctx).is_some_and(|c| c.config().log_enabled) as nopoll_bool
    })
}

/// ANSI colours on/off.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_log_color_enable(ctx: *mut noPollCtx, value: nopoll_bool) {
    boundary((), || {
        if let Some(c) = ctx_from(ctx) {
            c.update_config(|cfg| cfg.log_color = value != 0);
        }
    })
}

/// Whether colours are on.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_log_color_is_enabled(ctx: *mut noPollCtx) -> nopoll_bool {
    boundary(nopoll_false, || {
        ctx_from(ctx).is_some_and(|c| c.config().log_color) as nopoll_bool
    })
}

/// Routes every log line of the context to `handler` (NULL removes it).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_log_set_handler(
    ctx: *mut noPollCtx,
    handler: noPollLogHandler,
    user_data: noPollPtr,
) {
    boundary((), || {
        let Some(c) = ctx_from(ctx) else {
            return;
        };
        let sink: Option<LogSink> = handler.map(|f| {
            let ud = UserData(user_data);
            let weak = Arc::downgrade(&c.inner);
            Arc::new(move |level: LogLevel, text: &str| {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let h = ctx_handle(&crate::runtime::Context::from_inner(inner));
                let lvl = match level {
                    LogLevel::Debug => NOPOLL_LEVEL_DEBUG,
                    LogLevel::Warning => NOPOLL_LEVEL_WARNING,
                    LogLevel::Critical => NOPOLL_LEVEL_CRITICAL,
                };
                let msg = CString::new(text.replace('\0', " ")).unwrap_or_default();
                // SAFETY: the caller's function with its user data; `msg` outlives the call.
                unsafe { f(h, lvl, msg.as_ptr(), ud.get()) };
            }) as LogSink
        });
        c.update_config(|cfg| cfg.log_sink = sink);
    })
}

/// One line from the C shim's `__nopoll_log` (user code through the
/// `nopoll_log` macros): delivered like the library's own lines.
///
/// # Safety
/// Every string is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_log_forward(
    ctx: *mut noPollCtx,
    level: c_int,
    function_name: *const c_char,
    file: *const c_char,
    line: c_int,
    text: *const c_char,
) {
    // SAFETY: per this function's contract.
    let (func, file, text) = unsafe { (cstr(function_name), cstr(file), cstr(text)) };
    boundary((), || {
        let text = text.unwrap_or("");
        let lvl = level_from_c(level);
        match ctx_from(ctx) {
            Some(c) => c.log(
                lvl,
                format_args!(
                    "{}:{} {}: {}",
                    file.unwrap_or("?"),
                    line,
                    func.unwrap_or("?"),
                    text
                ),
            ),
            None => {
                log::warn!(target: "nopoll", "{}:{} {}: {}", file.unwrap_or("?"), line, func.unwrap_or("?"), text)
            }
        }
    })
}
