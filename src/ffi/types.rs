//! C types of the nopoll API (`../shared/NOPOLL-API.md` sections 2 to 4).
//!
//! Every `extern "C"` function of the crate spells its C signature with these
//! names, so cbindgen prints exactly the upstream types in `include/nopoll.h`.
//!
//! What cbindgen emits and what the hand-written prelude
//! (`include/nopoll_prelude.h.in`) emits:
//!
//! - callback typedefs (`noPollActionHandler`, ...) come from cbindgen: they
//!   are `Option<unsafe extern "C" fn(..)>` here (NULL is `None`) and forced
//!   into the header by `[export] include` in `cbindgen.toml`;
//! - `nopoll_bool`, `noPollPtr`, the opaque handles, the enums and
//!   `NOPOLL_SOCKET` are written by the prelude (cbindgen excludes them, see
//!   `cbindgen.toml`), because C needs shapes cbindgen cannot print:
//!   `typedef struct _noPollConn noPollConn;`, a conditional enum, a macro.
//!
//! # Enums are plain `c_int` on the Rust side (soundness choice)
//!
//! A C caller may pass any integer where an enum is expected
//! (`nopoll_conn_send_frame (conn, 1, 1, 42, ...)` compiles in C). A Rust
//! `#[repr(C)] enum` parameter receiving 42 would be undefined behaviour, so
//! every enum type is a `c_int` alias here (`pub type noPollOpCode = c_int;`)
//! with one `pub const` per C enumerator. The header still shows a real
//! `typedef enum { ... } noPollOpCode;` from the prelude, and signatures print
//! the alias name. This is ABI-compatible: every value of these enums fits in
//! `int`, C passes and returns enums as `int`-sized integers (also with
//! `-fshort-enums`, arguments are promoted to a full register), and no API
//! passes an enum by pointer or inside a struct. Rust code must treat every
//! value as untrusted: match on the constants and handle the `_` case.
//!
//! The constants below are *not* emitted by cbindgen (`cbindgen.toml` turns
//! constants off): the C names come from the prelude, whose numeric values a
//! test checks against these.
#![allow(non_camel_case_types, non_upper_case_globals)]

#[allow(unused_imports)]
use crate::prelude::*;

use core::ffi::{c_char, c_int, c_void};
use core::marker::{PhantomData, PhantomPinned};

// ---------------------------------------------------------------------------
// Core scalar types (`nopoll_decl.h`).
// ---------------------------------------------------------------------------

/// `typedef int nopoll_bool;`: any non-zero value is true.
pub type nopoll_bool = c_int;
/// `#define nopoll_true ((int)1)`.
pub const nopoll_true: nopoll_bool = 1;
/// `#define nopoll_false ((int)0)`.
pub const nopoll_false: nopoll_bool = 0;

/// `typedef void * noPollPtr;`.
pub type noPollPtr = *mut c_void;

/// `NOPOLL_SOCKET`: in C a *macro* expanding to `int` (not a typedef), so
/// `#ifdef NOPOLL_SOCKET` works in user code. cbindgen prints the name only.
pub type NOPOLL_SOCKET = c_int;
/// `#define NOPOLL_INVALID_SOCKET -1`.
pub const NOPOLL_INVALID_SOCKET: NOPOLL_SOCKET = -1;
/// `#define NOPOLL_SOCKET_ERROR -1`.
pub const NOPOLL_SOCKET_ERROR: c_int = -1;

/// `#define NOPOLL_HANDSHAKE_BUFFER_SIZE 8192`.
pub const NOPOLL_HANDSHAKE_BUFFER_SIZE: c_int = 8192;
/// `#define NOPOLL_MAX_FRAME_SIZE_DEFAULT (16777216)`.
pub const NOPOLL_MAX_FRAME_SIZE_DEFAULT: core::ffi::c_long = 16_777_216;
/// `#define NOPOLL_MAX_FRAME_SIZE_LIMIT (2147483646)`.
pub const NOPOLL_MAX_FRAME_SIZE_LIMIT: core::ffi::c_long = 2_147_483_646;

// ---------------------------------------------------------------------------
// Opaque handles. C sees `typedef struct _noPollX noPollX;` (prelude); Rust
// only ever handles pointers to them. Zero-sized, `!Send`, `!Sync`, `!Unpin`
// markers (the Rustonomicon's recipe for opaque FFI types).
// ---------------------------------------------------------------------------

macro_rules! opaque_handle {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque_handle! {
    /// `typedef struct _noPollCtx noPollCtx;`: a library context.
    noPollCtx,
    /// `typedef struct _noPollConn noPollConn;`: a client, listener or accepted connection.
    noPollConn,
    /// `typedef struct _noPollConnOpts noPollConnOpts;`: connection options.
    noPollConnOpts,
    /// `typedef struct _noPollIoEngine noPollIoEngine;`: an I/O wait engine.
    noPollIoEngine,
    /// `typedef struct _noPollMsg noPollMsg;`: a received message.
    noPollMsg,
    /// `typedef struct _noPollHandshake noPollHandShake;` (note the spelling).
    noPollHandShake,
}

// ---------------------------------------------------------------------------
// Enums (`nopoll_decl.h`), as `c_int` aliases: see the module docs.
// ---------------------------------------------------------------------------

/// `noPollDebugLevel`.
pub type noPollDebugLevel = c_int;
/// Debug level.
pub const NOPOLL_LEVEL_DEBUG: noPollDebugLevel = 0;
/// Warning level.
pub const NOPOLL_LEVEL_WARNING: noPollDebugLevel = 1;
/// Critical level.
pub const NOPOLL_LEVEL_CRITICAL: noPollDebugLevel = 2;

/// `noPollRole`.
pub type noPollRole = c_int;
/// Unknown role (NULL connection).
pub const NOPOLL_ROLE_UNKNOWN: noPollRole = 0;
/// Client connection.
pub const NOPOLL_ROLE_CLIENT: noPollRole = 1;
/// Connection accepted by a listener.
pub const NOPOLL_ROLE_LISTENER: noPollRole = 2;
/// Listening socket.
pub const NOPOLL_ROLE_MAIN_LISTENER: noPollRole = 3;

/// `noPollIoEngineType`.
pub type noPollIoEngineType = c_int;
/// Default (best) engine.
pub const NOPOLL_IO_ENGINE_DEFAULT: noPollIoEngineType = 0;
/// select(2).
pub const NOPOLL_IO_ENGINE_SELECT: noPollIoEngineType = 1;
/// poll(2).
pub const NOPOLL_IO_ENGINE_POLL: noPollIoEngineType = 2;
/// epoll(7).
pub const NOPOLL_IO_ENGINE_EPOLL: noPollIoEngineType = 3;

/// `noPollOpCode`.
pub type noPollOpCode = c_int;
/// Unknown opcode (NULL message).
pub const NOPOLL_UNKNOWN_OP_CODE: noPollOpCode = -1;
/// Continuation frame.
pub const NOPOLL_CONTINUATION_FRAME: noPollOpCode = 0;
/// Text frame.
pub const NOPOLL_TEXT_FRAME: noPollOpCode = 1;
/// Binary frame.
pub const NOPOLL_BINARY_FRAME: noPollOpCode = 2;
/// Close frame.
pub const NOPOLL_CLOSE_FRAME: noPollOpCode = 8;
/// Ping frame.
pub const NOPOLL_PING_FRAME: noPollOpCode = 9;
/// Pong frame.
pub const NOPOLL_PONG_FRAME: noPollOpCode = 10;

/// `noPollSslProtocol`. The header defines `NOPOLL_HAVE_TLSv10_ENABLED`,
/// `..._TLSv11_...`, `..._TLSv12_...` and `..._TLS_FLEXIBLE_...` but not the
/// SSLv23/SSLv3 ones (as upstream built against OpenSSL 3), so C sees only
/// the members 4..7. Upstream's 2 (SSLv23) and 3 (SSLv3) can still arrive as
/// plain integers and must be rejected.
pub type noPollSslProtocol = c_int;
/// TLS 1.0 only.
pub const NOPOLL_METHOD_TLSV1: noPollSslProtocol = 4;
/// TLS 1.1 only.
pub const NOPOLL_METHOD_TLSV1_1: noPollSslProtocol = 5;
/// TLS 1.2 only.
pub const NOPOLL_METHOD_TLSV1_2: noPollSslProtocol = 6;
/// Highest version both ends support (the default).
pub const NOPOLL_METHOD_TLS_FLEXIBLE: noPollSslProtocol = 7;

/// `noPollTransport` (declared by upstream; no public function takes it).
pub type noPollTransport = c_int;
/// IPv4.
pub const NOPOLL_TRANSPORT_IPV4: noPollTransport = 1;
/// IPv6.
pub const NOPOLL_TRANSPORT_IPV6: noPollTransport = 2;

// ---------------------------------------------------------------------------
// Handler typedefs (`nopoll_handlers.h`). `None` is a NULL function pointer.
// ---------------------------------------------------------------------------

/// on_accept / on_open / on_ready handler; returning `nopoll_false` rejects
/// or closes the connection.
pub type noPollActionHandler = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        user_data: noPollPtr,
    ) -> nopoll_bool,
>;

/// Message handler; `msg` is only valid during the call.
pub type noPollOnMessageHandler = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        msg: *mut noPollMsg,
        user_data: noPollPtr,
    ),
>;

/// Called once when a connection is closed.
pub type noPollOnCloseHandler =
    Option<unsafe extern "C" fn(ctx: *mut noPollCtx, conn: *mut noPollConn, user_data: noPollPtr)>;

/// `nopoll_ctx_foreach_conn` handler; `nopoll_true` stops the walk.
pub type noPollForeachConn = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        user_data: noPollPtr,
    ) -> nopoll_bool,
>;

/// Creates a mutex (`nopoll_thread_handlers`).
pub type noPollMutexCreate = Option<unsafe extern "C" fn() -> noPollPtr>;
/// Destroys a mutex.
pub type noPollMutexDestroy = Option<unsafe extern "C" fn(mutex: noPollPtr)>;
/// Locks a mutex.
pub type noPollMutexLock = Option<unsafe extern "C" fn(mutex: noPollPtr)>;
/// Unlocks a mutex.
pub type noPollMutexUnlock = Option<unsafe extern "C" fn(mutex: noPollPtr)>;

/// Extension: monotonic clock in milliseconds (`nopoll_install_clock`); any
/// origin, may wrap around (a 32-bit tick counter is fine).
pub type noPollClockHook = Option<unsafe extern "C" fn() -> core::ffi::c_ulong>;
/// Extension: fills `size` bytes at `buffer` with unpredictable data
/// (`nopoll_install_random`): masking keys and handshake nonces.
pub type noPollRandomHook =
    Option<unsafe extern "C" fn(buffer: *mut core::ffi::c_uchar, size: usize)>;

/// Receives every log line of a context (`nopoll_log_set_handler`).
pub type noPollLogHandler = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        level: noPollDebugLevel,
        log_msg: *const c_char,
        user_data: noPollPtr,
    ),
>;

/// Must return an OpenSSL `SSL_CTX *` for a TLS connection.
pub type noPollSslContextCreator = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        opts: *mut noPollConnOpts,
        is_client: nopoll_bool,
        user_data: noPollPtr,
    ) -> noPollPtr,
>;

/// Post-handshake TLS check with the `SSL_CTX *` and `SSL *` (upstream names
/// those parameters `SSL_CTX` and `SSL`; only the types are ABI).
pub type noPollSslPostCheck = Option<
    unsafe extern "C" fn(
        ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        ssl_ctx: noPollPtr,
        ssl: noPollPtr,
        user_data: noPollPtr,
    ) -> nopoll_bool,
>;

/// Connection I/O hook (`conn->receive` / `conn->send`).
pub type noPollRead = Option<
    unsafe extern "C" fn(conn: *mut noPollConn, buffer: *mut c_char, buffer_size: c_int) -> c_int,
>;

/// I/O engine vtable: create.
pub type noPollIoMechCreate = Option<unsafe extern "C" fn(ctx: *mut noPollCtx) -> noPollPtr>;
/// I/O engine vtable: destroy.
pub type noPollIoMechDestroy =
    Option<unsafe extern "C" fn(ctx: *mut noPollCtx, io_object: noPollPtr)>;
/// I/O engine vtable: clear.
pub type noPollIoMechClear =
    Option<unsafe extern "C" fn(ctx: *mut noPollCtx, io_object: noPollPtr)>;
/// I/O engine vtable: wait.
pub type noPollIoMechWait =
    Option<unsafe extern "C" fn(ctx: *mut noPollCtx, io_object: noPollPtr) -> c_int>;
/// I/O engine vtable: add a socket to the wait set.
pub type noPollIoMechAddTo = Option<
    unsafe extern "C" fn(
        fds: c_int,
        ctx: *mut noPollCtx,
        conn: *mut noPollConn,
        io_object: noPollPtr,
    ) -> nopoll_bool,
>;
/// I/O engine vtable: is the socket ready.
pub type noPollIoMechIsSet = Option<
    unsafe extern "C" fn(ctx: *mut noPollCtx, fds: c_int, io_object: noPollPtr) -> nopoll_bool,
>;
