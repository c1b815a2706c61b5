//! Installing the socket function table (`noPollSocketOps`) from C.
//!
//! The struct is [`crate::net::SocketOps`] itself (one definition, exported
//! to `nopoll.h` by cbindgen): firmware fills one in with its stack's calls
//! (`lwip_socket`, ...), tests wrap the default one to inject faults.

#[allow(unused_imports)]
use crate::prelude::*;

use super::boundary;
use super::types::*;
#[cfg(feature = "std")]
use crate::net::LIBC_OPS;
use crate::net::{self, SocketOps};
use core::ffi::c_void;
use core::mem::offset_of;

/// Offsets of the entries that must not be NULL (all but `sendmsg` and
/// `set_errno`).
const MANDATORY: [usize; 19] = [
    offset_of!(SocketOps, socket),
    offset_of!(SocketOps, bind),
    offset_of!(SocketOps, listen),
    offset_of!(SocketOps, accept),
    offset_of!(SocketOps, connect),
    offset_of!(SocketOps, recv),
    offset_of!(SocketOps, send),
    offset_of!(SocketOps, close),
    offset_of!(SocketOps, shutdown),
    offset_of!(SocketOps, set_nonblocking),
    offset_of!(SocketOps, get_nonblocking),
    offset_of!(SocketOps, setsockopt),
    offset_of!(SocketOps, getsockopt),
    offset_of!(SocketOps, getpeername),
    offset_of!(SocketOps, getsockname),
    offset_of!(SocketOps, getaddrinfo),
    offset_of!(SocketOps, freeaddrinfo),
    offset_of!(SocketOps, poll),
    offset_of!(SocketOps, get_errno),
];

/// The table's words, and the mandatory ones as a mask of word indices
/// (made at compile time: no offsets array in the firmware's rodata).
const WORDS: usize = core::mem::size_of::<SocketOps>() / core::mem::size_of::<usize>();
const MANDATORY_WORDS: u32 = {
    assert!(WORDS <= 32);
    let mut mask = 0;
    let mut i = 0;
    while i < MANDATORY.len() {
        assert!(MANDATORY[i].is_multiple_of(core::mem::size_of::<usize>()));
        mask |= 1 << (MANDATORY[i] / core::mem::size_of::<usize>());
        i += 1;
    }
    mask
};

/// Installs `ops` as the table every socket call of the library goes
/// through (copied: `ops` may be freed afterwards). Call it once, before any
/// other nopoll call that may touch a socket.
///
/// Returns `nopoll_false` when `ops` is NULL, when an entry other than
/// `sendmsg` and `set_errno` is NULL, when a table was installed before, or when the library
/// already used sockets (the libc table is then in place for good).
///
/// # Safety
/// `ops` is NULL or points to a readable `noPollSocketOps` whose non-NULL
/// entries meet the contract documented on each field.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nopoll_install_socket_ops(ops: *const SocketOps) -> nopoll_bool {
    boundary(nopoll_false, || {
        if ops.is_null() {
            return nopoll_false;
        }
        let words = ops.cast::<*const c_void>();
        for i in 0..WORDS {
            // SAFETY: `ops` points to a readable table (contract), made of
            // `WORDS` pointer-sized, pointer-aligned fields (the mandatory
            // ones are function pointers); read as a raw pointer, a NULL is
            // no invalid value.
            if MANDATORY_WORDS >> i & 1 != 0 && unsafe { words.add(i).read() }.is_null() {
                return nopoll_false;
            }
        }
        // SAFETY: readable (contract) and every non-`Option` function
        // pointer was checked non-NULL above, so the copy is a valid value.
        let table = unsafe { ops.read() };
        if net::installed() {
            return nopoll_false;
        }
        // Leaked on success: the table stays in use for the whole process.
        let stored: &'static SocketOps = Box::leak(Box::new(table));
        if net::install(stored) {
            nopoll_true
        } else {
            // SAFETY: `stored` came from Box::leak above and was not installed.
            drop(unsafe { Box::from_raw(stored as *const SocketOps as *mut SocketOps) });
            nopoll_false
        }
    })
}

/// The default table (libc with the library's POSIX policy: close-on-exec,
/// no SIGPIPE, no fds 0..2), so a wrapper table can call through to it.
/// Never NULL; owned by the library. Without std (no libc sockets) it is
/// a table whose every call fails with `ENOSYS`.
#[unsafe(no_mangle)]
pub extern "C" fn nopoll_default_socket_ops() -> *const SocketOps {
    boundary(core::ptr::null(), || {
        #[cfg(feature = "std")]
        return &LIBC_OPS;
        #[cfg(not(feature = "std"))]
        &net::NO_OPS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_incomplete_tables_are_refused() {
        // SAFETY: NULL is allowed.
        let null = unsafe { nopoll_install_socket_ops(core::ptr::null()) };
        assert_eq!(null, nopoll_false);
        // A table with one NULL mandatory entry, each in turn, built as
        // raw memory (a Rust `SocketOps` cannot hold one).
        assert_eq!(MANDATORY_WORDS.count_ones() as usize, MANDATORY.len());
        for off in MANDATORY {
            let mut raw = core::mem::MaybeUninit::<SocketOps>::uninit();
            // SAFETY: copies a valid table into storage of the same type,
            // then zeroes the pointer-sized field at `off` in place.
            unsafe {
                raw.as_mut_ptr().write(LIBC_OPS);
                raw.as_mut_ptr()
                    .cast::<u8>()
                    .add(off)
                    .cast::<*const c_void>()
                    .write(core::ptr::null());
            }
            // SAFETY: points to readable memory of the table's layout.
            let incomplete = unsafe { nopoll_install_socket_ops(raw.as_ptr()) };
            assert_eq!(incomplete, nopoll_false, "NULL at offset {off}");
        }
        assert!(!nopoll_default_socket_ops().is_null());
    }
}
