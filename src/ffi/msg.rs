//! `nopoll_msg_*`: messages handed to C.

#[allow(unused_imports)]
use crate::prelude::*;

use super::boundary;
use super::dispatch;
use super::handle::Table;
use super::published;
use super::types::*;
use crate::protocol::OpCode;
use crate::runtime::{LogLevel, Message};
use crate::sync::Arc;
use core::ffi::{c_int, c_long, c_uchar};

pub(crate) struct MsgObj {
    pub msg: Message,
}

pub(crate) static MSGS: Table<MsgObj> = Table::new(4);

/// Runs `f` on the message behind a handle: the running handler's own
/// without any lookup, a handler's message (published or kept) from its
/// slot, any other from the table.
fn with_msg<R>(p: *mut noPollMsg, f: impl FnOnce(&MsgObj) -> R) -> Option<R> {
    let f = match dispatch::with_msg(p as usize, f) {
        Ok(r) => return Some(r),
        Err(f) => f,
    };
    if published::is_published(p as usize) {
        return published::with_msg(p as usize, f);
    }
    MSGS.get(p as usize).map(|m| f(&m))
}

/// A new message handle on which the caller owns one reference.
pub(crate) fn msg_handle_owned(msg: Message) -> *mut noPollMsg {
    MSGS.insert_c_owned(&Arc::new(MsgObj { msg })).unwrap_or(0) as *mut noPollMsg
}

pub(crate) fn opcode_to_c(op: Option<OpCode>) -> noPollOpCode {
    match op {
        Some(op) => op as u8 as noPollOpCode,
        None => NOPOLL_UNKNOWN_OP_CODE,
    }
}

/// Empty message holder with one reference (freed by `nopoll_msg_unref`).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_new() -> *mut noPollMsg {
    boundary(core::ptr::null_mut(), || msg_handle_owned(Message::empty()))
}

/// The payload, followed by a NUL byte; NULL for NULL or an empty payload.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_get_payload(msg: *mut noPollMsg) -> *const c_uchar {
    boundary(core::ptr::null(), || {
        // The bytes live as long as the message object, which the caller references.
        with_msg(msg, |m| match m.msg.payload() {
            [] => core::ptr::null(),
            _ => m.msg.payload_with_nul().as_ptr(),
        })
        .unwrap_or(core::ptr::null())
    })
}

/// Payload size; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_get_payload_size(msg: *mut noPollMsg) -> c_long {
    boundary(-1, || {
        with_msg(msg, |m| m.msg.payload().len() as c_long).unwrap_or(-1)
    })
}

/// Frame opcode; NOPOLL_UNKNOWN_OP_CODE for NULL. A holder from
/// `nopoll_msg_new` has all fields zero, as upstream: opcode 0.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_opcode(msg: *mut noPollMsg) -> noPollOpCode {
    boundary(NOPOLL_UNKNOWN_OP_CODE, || {
        with_msg(msg, |m| match m.msg.opcode() {
            None => NOPOLL_CONTINUATION_FRAME,
            op => opcode_to_c(op),
        })
        .unwrap_or(NOPOLL_UNKNOWN_OP_CODE)
    })
}

/// FIN bit.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_is_final(msg: *mut noPollMsg) -> nopoll_bool {
    boundary(nopoll_false, || {
        with_msg(msg, |m| m.msg.is_final() as nopoll_bool).unwrap_or(nopoll_false)
    })
}

/// True for a piece of a message.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_is_fragment(msg: *mut noPollMsg) -> nopoll_bool {
    boundary(nopoll_false, || {
        with_msg(msg, |m| m.msg.is_fragment() as nopoll_bool).unwrap_or(nopoll_false)
    })
}

/// +1 reference; false for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_ref(msg: *mut noPollMsg) -> nopoll_bool {
    boundary(nopoll_false, || {
        let h = msg as usize;
        let ok = if published::is_published(h) {
            published::add_ref(h)
        } else {
            MSGS.add_ref(h)
        };
        ok as nopoll_bool
    })
}

/// Reference count; -1 for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_ref_count(msg: *mut noPollMsg) -> c_int {
    boundary(-1, || {
        let h = msg as usize;
        if published::is_published(h) {
            published::ref_count(h)
        } else {
            MSGS.c_refs(h)
        }
    })
}

/// -1 reference; frees at zero.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_unref(msg: *mut noPollMsg) {
    boundary((), || {
        let h = msg as usize;
        if published::is_published(h) {
            if published::release(h).is_err() {
                // Through the handler's context, so that a C log handler
                // sees it (the `log` crate alone when called elsewhere).
                let text = format_args!(
                    "nopoll_msg_unref: {h:#x} is the running handler's message; \
                     the library releases it after the handler"
                );
                match dispatch::current_ctx() {
                    Some(c) => c.log(LogLevel::Critical, text),
                    None => log::error!(target: "nopoll", "{text}"),
                }
            }
        } else {
            MSGS.release(h);
        }
    })
}

/// A new message with `msg`'s header and both payloads (inputs untouched).
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_msg_join(msg: *mut noPollMsg, msg2: *mut noPollMsg) -> *mut noPollMsg {
    boundary(core::ptr::null_mut(), || {
        // Copies: neither handle is held while the other is looked up.
        let copy = |p| with_msg(p, |m| m.msg.clone());
        match (copy(msg), copy(msg2)) {
            (None, None) => core::ptr::null_mut(),
            (Some(_), None) => {
                if nopoll_msg_ref(msg) != 0 {
                    msg
                } else {
                    core::ptr::null_mut()
                }
            }
            (None, Some(_)) => {
                if nopoll_msg_ref(msg2) != 0 {
                    msg2
                } else {
                    core::ptr::null_mut()
                }
            }
            (Some(a), Some(b)) => match a.join(&b) {
                Some(j) => msg_handle_owned(j),
                None => core::ptr::null_mut(),
            },
        }
    })
}
