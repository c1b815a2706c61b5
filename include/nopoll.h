/*
 * nopoll.h: C API of nopoll-rs, a memory-safe drop-in replacement for the
 * nopoll WebSocket library (RFC 6455). Licensed MIT OR Apache-2.0.
 *
 * GENERATED FILE, do not edit. build.rs writes it with cbindgen from the
 * Rust sources (src/ffi/), between include/nopoll_prelude.h.in (macros,
 * typedefs and enums cbindgen cannot produce) and include/nopoll_trailer.h.in.
 * Refresh the committed copy with `make header`.
 *
 * Valid C89: builds with -ansi -Wall -Werror -Wstrict-prototypes, and as C++.
 */
#ifndef __NOPOLL_H__
#define __NOPOLL_H__

/* --------------------------------------------------------------------
 * Configuration (upstream nopoll_config.h, Linux + OpenSSL 3 values).
 * ------------------------------------------------------------------ */

/* Only effective when nopoll.h comes before any libc header. */
#ifndef FD_SETSIZE
#define FD_SETSIZE 4096
#endif

#define NOPOLL_OS_UNIX (1)

#if defined(__LP64__) || defined(_LP64) || (defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8)
#define NOPOLL_64BIT_PLATFORM (1)
#endif

#define NOPOLL_HAVE_VASPRINTF (1)

/* TLS methods available (SSLv23 and SSLv3 are not, as with OpenSSL 3). */
#define NOPOLL_HAVE_TLSv10_ENABLED (1)
#define NOPOLL_HAVE_TLSv11_ENABLED (1)
#define NOPOLL_HAVE_TLSv12_ENABLED (1)
#define NOPOLL_HAVE_TLS_FLEXIBLE_ENABLED (1)

#ifndef INT_TO_PTR
#define INT_TO_PTR(integer)   ((noPollPtr) (long) ((int)integer))
#endif
#ifndef PTR_TO_INT
#define PTR_TO_INT(ptr) ((int) (long) (ptr))
#endif

/* --------------------------------------------------------------------
 * Compiler helpers (upstream nopoll_decl.h and nopoll_log.h).
 * ------------------------------------------------------------------ */

#if defined(__GNUC__)
#  ifndef _GNU_SOURCE
#  define _GNU_SOURCE
#  endif
#  define __NOPOLL_PRETTY_FUNCTION__ __PRETTY_FUNCTION__
#  define __NOPOLL_LINE__            __LINE__
#  define __NOPOLL_FILE__            __FILE__
#  define __function_name__          __PRETTY_FUNCTION__
#  define __line__                   __LINE__
#  define __file__                   __FILE__
#elif defined(_MSC_VER)
#  define __NOPOLL_PRETTY_FUNCTION__ __FUNCDNAME__
#  define __NOPOLL_LINE__            __LINE__
#  define __NOPOLL_FILE__            __FILE__
#  define __function_name__          __FUNCDNAME__
#  define __line__                   __LINE__
#  define __file__                   __FILE__
#else
/* unknown compiler */
#  define __NOPOLL_PRETTY_FUNCTION__ ""
#  define __NOPOLL_LINE__            0
#  define __NOPOLL_FILE__            ""
#  define __function_name__          ""
#  define __line__                   0
#  define __file__                   ""
#endif

/* --------------------------------------------------------------------
 * System headers: call sites use send, errno, gettimeofday, ... without
 * including them themselves.
 *
 * Firmware (no <sys/socket.h>, <netinet/in.h> or <poll.h>, as with
 * arm-none-eabi-gcc and newlib) takes one of two ways:
 * - define NOPOLL_SOCKET_HEADER to a header that declares the socket
 *   types, e.g. -DNOPOLL_SOCKET_HEADER='"lwip/sockets.h"': nopoll.h
 *   includes it and takes socklen_t and nfds_t from it;
 * - define nothing: on a compiler that is not a Unix one (no __unix__),
 *   nopoll.h includes only ISO C headers and <sys/types.h>, and declares
 *   the socket structures it mentions (pointers only) itself.
 * Either way nopoll.h defines no socklen_t or nfds_t of its own (that
 * would clash with lwIP's): the socket table uses noPollSocklen and
 * noPollNfds. The numbers the library passes through the table are
 * Linux's on every target (src/sys.rs, c-examples/lwip/nopoll_lwip.c).
 * ------------------------------------------------------------------ */

#if defined(NOPOLL_SOCKET_HEADER) || !(defined(__unix__) || defined(__unix) || defined(__APPLE__))
#define NOPOLL_FIRMWARE_HEADERS (1)
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <errno.h>
#include <sys/types.h>
#if defined(NOPOLL_SOCKET_HEADER)
#include NOPOLL_SOCKET_HEADER
typedef socklen_t noPollSocklen;
typedef nfds_t noPollNfds;
#else
typedef unsigned int noPollSocklen;
typedef unsigned long noPollNfds;
#endif
/* Pointers only; harmless where NOPOLL_SOCKET_HEADER defined them. */
struct sockaddr;
struct msghdr;
struct addrinfo;
struct pollfd;
struct timeval;
#else
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <ctype.h>
#include <netdb.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/select.h>
#include <poll.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <time.h>
#include <errno.h>
typedef socklen_t noPollSocklen;
typedef nfds_t noPollNfds;
#endif

/* --------------------------------------------------------------------
 * Portable socket definitions.
 * ------------------------------------------------------------------ */

#define NOPOLL_EINTR           EINTR
#define NOPOLL_EWOULDBLOCK     EWOULDBLOCK
#define NOPOLL_EINPROGRESS     EINPROGRESS

/* noPollTlsOps (nopoll_install_tls_ops): the layout version, and the
 * "the socket must become readable / writable first" results of its
 * entries and bio callbacks. */
#define NOPOLL_TLS_OPS_VERSION 1
#define NOPOLL_TLS_WANT_READ   (-2)
#define NOPOLL_TLS_WANT_WRITE  (-3)
#define NOPOLL_ENOTCONN        ENOTCONN
#define NOPOLL_EAGAIN          EAGAIN
/* A macro, not a typedef (user code may test it with #ifdef). */
#define NOPOLL_SOCKET          int
#define NOPOLL_INVALID_SOCKET  -1
#define NOPOLL_SOCKET_ERROR    -1
#define nopoll_close_socket(s) do {if ( s >= 0) {close (s);}} while (0)
#define nopoll_is_disconnected (errno == EPIPE)

/* --------------------------------------------------------------------
 * Core types.
 * ------------------------------------------------------------------ */

#define nopoll_false ((int)0)
#define nopoll_true  ((int)1)

typedef int nopoll_bool;

typedef void * noPollPtr;

/* Opaque handles: the library never exposes their layout. */
typedef struct _noPollCtx noPollCtx;
typedef struct _noPollConn noPollConn;
typedef struct _noPollConnOpts noPollConnOpts;
typedef struct _noPollIoEngine noPollIoEngine;
typedef struct _noPollMsg noPollMsg;
typedef struct _noPollHandshake noPollHandShake;

typedef enum {
	NOPOLL_LEVEL_DEBUG    = 0,
	NOPOLL_LEVEL_WARNING  = 1,
	NOPOLL_LEVEL_CRITICAL = 2
} noPollDebugLevel;

typedef enum {
	NOPOLL_ROLE_UNKNOWN       = 0,
	NOPOLL_ROLE_CLIENT        = 1,
	NOPOLL_ROLE_LISTENER      = 2,
	NOPOLL_ROLE_MAIN_LISTENER = 3
} noPollRole;

typedef enum {
	NOPOLL_IO_ENGINE_DEFAULT = 0,
	NOPOLL_IO_ENGINE_SELECT  = 1,
	NOPOLL_IO_ENGINE_POLL    = 2,
	NOPOLL_IO_ENGINE_EPOLL   = 3
} noPollIoEngineType;

typedef enum {
	NOPOLL_UNKNOWN_OP_CODE    = -1,
	NOPOLL_CONTINUATION_FRAME = 0,
	NOPOLL_TEXT_FRAME         = 1,
	NOPOLL_BINARY_FRAME       = 2,
	NOPOLL_CLOSE_FRAME        = 8,
	NOPOLL_PING_FRAME         = 9,
	NOPOLL_PONG_FRAME         = 10
} noPollOpCode;

/* Each member exists only when its NOPOLL_HAVE_* macro is defined, with
 * upstream's comma placement (valid for the macro set defined above). */
typedef enum {
#if defined(NOPOLL_HAVE_SSLv23_ENABLED)
	NOPOLL_METHOD_SSLV23       = 2,
#endif
#if defined(NOPOLL_HAVE_SSLv3_ENABLED)
	NOPOLL_METHOD_SSLV3        = 3,
#endif
#if defined(NOPOLL_HAVE_TLSv10_ENABLED)
	NOPOLL_METHOD_TLSV1        = 4,
#endif
#if defined(NOPOLL_HAVE_TLSv11_ENABLED)
	NOPOLL_METHOD_TLSV1_1      = 5
#endif
#if defined(NOPOLL_HAVE_TLSv12_ENABLED)
	,
	NOPOLL_METHOD_TLSV1_2      = 6
#endif
#if defined(NOPOLL_HAVE_TLS_FLEXIBLE_ENABLED)
	,
	NOPOLL_METHOD_TLS_FLEXIBLE = 7
#endif
} noPollSslProtocol;

typedef enum {
	NOPOLL_TRANSPORT_IPV4 = 1,
	NOPOLL_TRANSPORT_IPV6 = 2
} noPollTransport;

/* --------------------------------------------------------------------
 * Limits.
 * ------------------------------------------------------------------ */

#define NOPOLL_HANDSHAKE_BUFFER_SIZE 8192
#define NOPOLL_MAX_FRAME_SIZE_DEFAULT (16777216)
#define NOPOLL_MAX_FRAME_SIZE_LIMIT (2147483646)

/* --------------------------------------------------------------------
 * Helper macros.
 * ------------------------------------------------------------------ */

#define nopoll_new(type, count) (type *) nopoll_calloc (count, sizeof (type))

#define nopoll_return_if_fail(ctx, expr)					\
	if (!(expr)) {__nopoll_log (ctx, __function_name__, __file__, __line__, NOPOLL_LEVEL_CRITICAL, "Expresion '%s' have failed at %s (%s:%d)", #expr, __NOPOLL_PRETTY_FUNCTION__, __NOPOLL_FILE__, __NOPOLL_LINE__); return;}

#define nopoll_return_val_if_fail(ctx, expr, val)			\
	if (!(expr)) { __nopoll_log (ctx, __function_name__, __file__, __line__, NOPOLL_LEVEL_CRITICAL, "Expresion '%s' have failed, returning: %s at %s (%s:%d)", #expr, #val, __NOPOLL_PRETTY_FUNCTION__, __NOPOLL_FILE__, __NOPOLL_LINE__); return val;}

/* nopoll_log: the GNU/C99 variadic macro form upstream uses. gcc and clang
 * accept it in -ansi mode (only -pedantic warns). Without SHOW_DEBUG_LOG it
 * expands to nothing, as upstream. */
#if defined(SHOW_DEBUG_LOG)
# define nopoll_log(ctx,level,message, ...) do{__nopoll_log(ctx, __function_name__, __file__, __line__, level, message, ##__VA_ARGS__);}while(0)
#else
# define nopoll_log(ctx, level, message, ...) /* nothing */
#endif

#if defined(SHOW_FORMAT_BUGS)
# undef  nopoll_log
# define nopoll_log(ctx,level,message, ...) do{printf (message, ##__VA_ARGS__);}while(0)
#endif

/* C++ support. */
#undef BEGIN_C_DECLS
#undef END_C_DECLS
#ifdef __cplusplus
# define BEGIN_C_DECLS extern "C" {
# define END_C_DECLS }
#else
# define BEGIN_C_DECLS /* empty */
# define END_C_DECLS /* empty */
#endif

BEGIN_C_DECLS

/* --------------------------------------------------------------------
 * Generated from the Rust sources: handler typedefs and functions.
 * ------------------------------------------------------------------ */

/**
 * Called once when a connection is closed.
 */
typedef void (*noPollOnCloseHandler)(noPollCtx *ctx, noPollConn *conn, noPollPtr user_data);

/**
 * Message handler; `msg` is only valid during the call.
 */
typedef void (*noPollOnMessageHandler)(noPollCtx *ctx, noPollConn *conn, noPollMsg *msg, noPollPtr user_data);

/**
 * on_accept / on_open / on_ready handler; returning `nopoll_false` rejects
 * or closes the connection.
 */
typedef nopoll_bool (*noPollActionHandler)(noPollCtx *ctx, noPollConn *conn, noPollPtr user_data);

/**
 * `nopoll_ctx_foreach_conn` handler; `nopoll_true` stops the walk.
 */
typedef nopoll_bool (*noPollForeachConn)(noPollCtx *ctx, noPollConn *conn, noPollPtr user_data);

/**
 * Called for a request on a listener that is not a WebSocket upgrade
 * (a browser fetching a page). It may answer with
 * `nopoll_conn_send_http_response`; the connection is closed when it
 * returns. `method` and `url` are valid during the call.
 */
typedef void (*noPollHttpRequestHandler)(noPollCtx *ctx, noPollConn *conn, const char *method, const char *url, noPollPtr user_data);

/**
 * Post-handshake TLS check with the `SSL_CTX *` and `SSL *` (upstream names
 * those parameters `SSL_CTX` and `SSL`; only the types are ABI).
 */
typedef nopoll_bool (*noPollSslPostCheck)(noPollCtx *ctx, noPollConn *conn, noPollPtr ssl_ctx, noPollPtr ssl, noPollPtr user_data);

/**
 * Must return an OpenSSL `SSL_CTX *` for a TLS connection.
 */
typedef noPollPtr (*noPollSslContextCreator)(noPollCtx *ctx, noPollConn *conn, noPollConnOpts *opts, nopoll_bool is_client, noPollPtr user_data);

/**
 * A table of BSD-style socket functions. All of `net` calls sockets only
 * through the table returned by [`ops`].
 *
 * Contract of each entry (the libc table meets it; a firmware table must):
 * functions return what their POSIX namesake returns (`-1` and the error in
 * [`get_errno`](SocketOps::get_errno) on failure) unless noted otherwise.
 */
typedef struct {
    /**
     * Non-zero: sockets are kernel file descriptors that epoll, eventfd and
     * pipes can be mixed with (1 for the libc table, 0 for firmware stacks).
     * The build without std makes no kernel descriptor whatever this says:
     * it polls through the table and its waker is a UDP socket of the table.
     * A C `int`, not `bool`, so the struct is C89.
     */
    int kernel_fds;
    /**
     * `socket(domain, type, protocol)`; the new socket must be close-on-exec
     * (where that exists) and must not raise SIGPIPE on send.
     */
    int (*socket)(int, int, int);
    /**
     * `bind(fd, addr, len)`.
     */
    int (*bind)(int, const struct sockaddr*, noPollSocklen);
    /**
     * `listen(fd, backlog)`.
     */
    int (*listen)(int, int);
    /**
     * `accept(fd, addr, len)`; the new socket must be non-blocking and
     * close-on-exec (the libc table uses `accept4` where available).
     */
    int (*accept)(int, struct sockaddr*, noPollSocklen*);
    /**
     * `connect(fd, addr, len)`.
     */
    int (*connect)(int, const struct sockaddr*, noPollSocklen);
    /**
     * `recv(fd, buf, len, flags)`.
     */
    ssize_t (*recv)(int, void*, size_t, int);
    /**
     * `send(fd, buf, len, flags)`; must never raise SIGPIPE.
     */
    ssize_t (*send)(int, const void*, size_t, int);
    /**
     * `sendmsg(fd, msg, flags)` (only `msg_iov`/`msg_iovlen` are used); must
     * never raise SIGPIPE. `None` (NULL in C): vectored sends use `send`.
     */
    ssize_t (*sendmsg)(int, const struct msghdr*, int);
    /**
     * `close(fd)`.
     */
    int (*close)(int);
    /**
     * `shutdown(fd, how)` with `SHUT_RD`/`SHUT_WR`/`SHUT_RDWR`.
     */
    int (*shutdown)(int, int);
    /**
     * `set_nonblocking(fd, on)`: 0 on success, -1 on failure.
     */
    int (*set_nonblocking)(int, int);
    /**
     * `get_nonblocking(fd)`: 1 non-blocking, 0 blocking, -1 on failure.
     */
    int (*get_nonblocking)(int);
    /**
     * `setsockopt(fd, level, name, value, len)`.
     */
    int (*setsockopt)(int, int, int, const void*, noPollSocklen);
    /**
     * `getsockopt(fd, level, name, value, len)`.
     */
    int (*getsockopt)(int, int, int, void*, noPollSocklen*);
    /**
     * `getpeername(fd, addr, len)`.
     */
    int (*getpeername)(int, struct sockaddr*, noPollSocklen*);
    /**
     * `getsockname(fd, addr, len)`.
     */
    int (*getsockname)(int, struct sockaddr*, noPollSocklen*);
    /**
     * `getaddrinfo(node, service, hints, res)`: 0 or an `EAI_*` code.
     */
    int (*getaddrinfo)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
    /**
     * `freeaddrinfo(res)` for lists returned by `getaddrinfo`.
     */
    void (*freeaddrinfo)(struct addrinfo*);
    /**
     * `poll(fds, nfds, timeout_ms)`.
     */
    int (*poll)(struct pollfd*, noPollNfds, int);
    /**
     * The error of the last failed call on this thread (not named `errno`:
     * that is a macro in C).
     */
    int (*get_errno)(void);
    /**
     * Sets the calling thread's `errno` (the C API reports some failures
     * to its caller through `errno`, as upstream does). `None` (NULL in
     * C): those calls leave `errno` alone.
     */
    void (*set_errno)(int);
} noPollSocketOps;

/**
 * Extension: monotonic clock in milliseconds (`nopoll_install_clock`); any
 * origin, may wrap around (a 32-bit tick counter is fine).
 */
typedef unsigned long (*noPollClockHook)(void);

/**
 * Extension: fills `size` bytes at `buffer` with unpredictable data
 * (`nopoll_install_random`): masking keys and handshake nonces.
 */
typedef void (*noPollRandomHook)(unsigned char *buffer, size_t size);

/**
 * What a new session is for (strings NUL-terminated, valid during the
 * `session_new` call only; NULL when not given).
 */
typedef struct {
    /**
     * 1 for a server (accepted) session, 0 for a client.
     */
    int is_server;
    /**
     * Client: the name for SNI and certificate verification; NULL for an
     * IP literal's SNI (the name to verify is then `verify_ip`).
     */
    const char *host_name;
    /**
     * Client: an IP literal the certificate must carry (or NULL).
     */
    const char *verify_ip;
    /**
     * Verify the peer (client: chain and name; server: require a client
     * certificate).
     */
    int verify;
    /**
     * Lowest TLS version as a `noPollSslProtocol` (TLS 1.2 unless
     * NOPOLL_METHOD_TLSV1_1 / TLSV1).
     */
    int min_version;
    /**
     * Own certificate, key, chain files; CA file (client: in addition to
     * the backend's trust store if it has one).
     */
    const char *certificate;
    const char *private_key;
    const char *chain_certificate;
    const char *ca_certificate;
} noPollTlsParams;

/**
 * Reads ciphertext: n > 0 bytes, 0 at the end of the stream,
 * NOPOLL_TLS_WANT_READ, or -1.
 */
typedef int (*noPollTlsBioRecv)(void *bio, unsigned char *buf, size_t len);

/**
 * Writes ciphertext: n > 0 bytes taken, NOPOLL_TLS_WANT_WRITE, or -1.
 */
typedef int (*noPollTlsBioSend)(void *bio, const unsigned char *buf, size_t len);

/**
 * A TLS implementation as a table of C functions. Every entry is
 * mandatory. Return conventions: n >= 0 as documented, NOPOLL_TLS_WANT_READ
 * / NOPOLL_TLS_WANT_WRITE when the socket must become readable / writable
 * first, -1 on failure.
 */
typedef struct {
    /**
     * NOPOLL_TLS_OPS_VERSION.
     */
    int version;
    /**
     * A new session over `bio` (pass it to `recv`/`send`); NULL on
     * failure, with a NUL-terminated reason in `err` (`err_size` bytes).
     */
    void *(*session_new)(const noPollTlsParams *params, void *bio, noPollTlsBioRecv recv, noPollTlsBioSend send, char *err, int err_size);
    /**
     * One handshake step: 0 when established, WANT_*, -1.
     */
    int (*handshake)(void *s);
    /**
     * Plaintext: n > 0, 0 at the end (close_notify), WANT_*, -1.
     */
    int (*read)(void *s, unsigned char *buf, int len);
    /**
     * Plaintext out: n > 0 taken (partial writes allowed), WANT_*, -1.
     */
    int (*write)(void *s, const unsigned char *buf, int len);
    /**
     * Decrypted bytes held inside (the loop serves them without waiting).
     */
    int (*pending)(void *s);
    /**
     * Sends close_notify (best effort, never waits).
     */
    void (*close_notify)(void *s);
    /**
     * Frees the session (exactly once, also after a failure).
     */
    void (*session_free)(void *s);
    /**
     * 0 when the peer verified (or verification is off), else the
     * backend's verification flags.
     */
    long (*verify_result)(void *s);
    /**
     * The backend's session object (handed to the post-TLS check as its
     * `SSL` argument, with NULL as `SSL_CTX`).
     */
    void *(*native)(void *s);
} noPollTlsOps;

/**
 * Receives every log line of a context (`nopoll_log_set_handler`).
 */
typedef void (*noPollLogHandler)(noPollCtx *ctx, noPollDebugLevel level, const char *log_msg, noPollPtr user_data);

/**
 * Extension: called by `nopoll_loop_wait` when a socket watched with
 * `nopoll_loop_watch_fd` is ready (a hang-up or error reports as
 * readable), on the loop's thread.
 */
typedef void (*noPollFdHandler)(noPollCtx *ctx, NOPOLL_SOCKET fd, nopoll_bool readable, nopoll_bool writable, noPollPtr user_data);

/**
 * Creates a mutex (`nopoll_thread_handlers`).
 */
typedef noPollPtr (*noPollMutexCreate)(void);

/**
 * Destroys a mutex.
 */
typedef void (*noPollMutexDestroy)(noPollPtr mutex);

/**
 * Locks a mutex.
 */
typedef void (*noPollMutexLock)(noPollPtr mutex);

/**
 * Unlocks a mutex.
 */
typedef void (*noPollMutexUnlock)(noPollPtr mutex);

/**
 * Connection I/O hook (`conn->receive` / `conn->send`).
 */
typedef int (*noPollRead)(noPollConn *conn, char *buffer, int buffer_size);

/**
 * I/O engine vtable: create.
 */
typedef noPollPtr (*noPollIoMechCreate)(noPollCtx *ctx);

/**
 * I/O engine vtable: destroy.
 */
typedef void (*noPollIoMechDestroy)(noPollCtx *ctx, noPollPtr io_object);

/**
 * I/O engine vtable: clear.
 */
typedef void (*noPollIoMechClear)(noPollCtx *ctx, noPollPtr io_object);

/**
 * I/O engine vtable: wait.
 */
typedef int (*noPollIoMechWait)(noPollCtx *ctx, noPollPtr io_object);

/**
 * I/O engine vtable: add a socket to the wait set.
 */
typedef nopoll_bool (*noPollIoMechAddTo)(int fds, noPollCtx *ctx, noPollConn *conn, noPollPtr io_object);

/**
 * I/O engine vtable: is the socket ready.
 */
typedef nopoll_bool (*noPollIoMechIsSet)(noPollCtx *ctx, int fds, noPollPtr io_object);

/**
 * Releases options unless they are flagged for reuse.
 */
void __nopoll_conn_opts_release_if_needed(noPollConnOpts *options);

/**
 * Owner references (transient ones are never visible here); -1 for NULL.
 */
int __nopoll_conn_owner_ref_count(noPollConn *conn);

/**
 * Internal but exported: a data frame of `frame_type` with masking by role
 * (`length == -1` allowed for text), continuing a fragmented message
 * automatically (a frame after one without FIN goes out as a
 * continuation), pausing `sleep_in_header` µs between header and payload.
 * A continuation `frame_type` with no fragmented message in progress is
 * sent as binary. Other opcodes go out as `nopoll_conn_send_frame` would.
 *
 * # Safety
 * `content` is valid for `length` bytes (NUL-terminated for -1).
 */
int __nopoll_conn_send_common(noPollConn *conn, const char *content, long length, nopoll_bool has_fin, long sleep_in_header, noPollOpCode frame_type);

/**
 * INTERNAL: copies the frame limit of `options` into the connection.
 */
void __nopoll_conn_set_max_frame_size(noPollConn *conn, noPollConnOpts *options);

/**
 * A library-held temporary reference.
 */
nopoll_bool __nopoll_conn_transient_ref(noPollConn *conn);

/**
 * Drops a temporary reference.
 */
void __nopoll_conn_transient_unref(noPollConn *conn);

/**
 * Whether `conn` is in `ctx`'s registry.
 */
nopoll_bool __nopoll_ctx_conn_is_registered(noPollCtx *ctx, noPollConn *conn);

/**
 * Decodes base64 into `output` (capacity in `*output_size`), NUL-terminated.
 *
 * # Safety
 * `content` valid for `length` bytes; `output` writable for `*output_size` bytes.
 */
nopoll_bool nopoll_base64_decode(const char *content, int length, char *output, int *output_size);

/**
 * Base64 of `length` bytes into `output` (capacity in `*output_size`,
 * NUL-terminated); `*output_size` receives the length (or the size needed).
 *
 * # Safety
 * `content` valid for `length` bytes; `output` writable for `*output_size` bytes.
 */
nopoll_bool nopoll_base64_encode(const char *content, int length, char *output, int *output_size);

/**
 * calloc wrapper (the allocator of everything crossing the boundary).
 */
noPollPtr nopoll_calloc(size_t count, size_t size);

/**
 * Optional end-of-process cleanup (nothing global to release without TLS).
 */
void nopoll_cleanup_library(void);

/**
 * String equality; both NULL = true, one NULL = false.
 *
 * # Safety
 * Each string is NULL or NUL-terminated.
 */
nopoll_bool nopoll_cmp(const char *string1, const char *string2);

/**
 * Accepts one connection (waits for it).
 */
noPollConn *nopoll_conn_accept(noPollCtx *ctx, noPollConn *listener);

/**
 * Finishes setting up an accepted connection: records `listener` (its
 * frame limit applies; NULL is allowed) and runs `on_accept`. False, with
 * the connection shut down and removed from the context, when that
 * refuses it, when `session` is not the connection's socket, or when TLS
 * is requested (not implemented yet).
 */
nopoll_bool nopoll_conn_accept_complete(noPollCtx *ctx, noPollConn *listener, noPollConn *conn, NOPOLL_SOCKET session, nopoll_bool tls_on);

/**
 * Wraps a socket the caller accepted from `listener`: a server connection
 * registered in the context (the context owns it, as for
 * `nopoll_conn_accept`), after `on_accept` agreed. NULL for a socket that
 * is not connected, or when `on_accept` refused it (then it is closed).
 */
noPollConn *nopoll_conn_accept_socket(noPollCtx *ctx, noPollConn *listener, NOPOLL_SOCKET session);

/**
 * `nopoll_conn_close_ext (conn, 0, NULL, 0)`.
 */
void nopoll_conn_close(noPollConn *conn);

/**
 * Sends a close frame with `status` (0 = none) and `reason`, closes the
 * socket and releases the caller's reference.
 *
 * # Safety
 * `reason` is NULL or valid for `reason_size` bytes.
 */
void nopoll_conn_close_ext(noPollConn *conn, int status, const char *reason, int reason_size);

/**
 * Advances the handshake without blocking.
 */
void nopoll_conn_complete_handshake(noPollConn *conn);

/**
 * Writes pending bytes without blocking; payload bytes written, 0 if
 * nothing pending, -1 on error.
 */
int nopoll_conn_complete_pending_write(noPollConn *conn);

/**
 * Context-wide TCP connect timeout in µs (values <= 0 restore 20 s;
 * `LONG_MAX` is never: deadlines saturate, they never overflow).
 */
void nopoll_conn_connect_timeout(noPollCtx *ctx, long microseconds_to_wait);

/**
 * Owning context (borrowed); NULL for NULL.
 */
noPollCtx *nopoll_conn_ctx(noPollConn *conn);

/**
 * Plain recv() I/O callback of non-TLS connections.
 *
 * # Safety
 * `buffer` writable for `buffer_size` bytes.
 */
int nopoll_conn_default_receive(noPollConn *conn, char *buffer, int buffer_size);

/**
 * Plain send() I/O callback of non-TLS connections.
 *
 * # Safety
 * `buffer` readable for `buffer_size` bytes.
 */
int nopoll_conn_default_send(noPollConn *conn, char *buffer, int buffer_size);

/**
 * Flushes pending writes for up to `timeout` µs; returns bytes written
 * plus `previous_result` when positive.
 */
int nopoll_conn_flush_writes(noPollConn *conn, long timeout, int previous_result);

/**
 * Agreed subprotocol; NULL if none.
 */
const char *nopoll_conn_get_accepted_protocol(noPollConn *conn);

/**
 * Peer's close reason; NULL if none.
 */
const char *nopoll_conn_get_close_reason(noPollConn *conn);

/**
 * Peer's close status: 1005 without code, 1006 without close frame; 0 for NULL.
 */
int nopoll_conn_get_close_status(noPollConn *conn);

/**
 * Current connect timeout in µs; 0 for NULL.
 */
long nopoll_conn_get_connect_timeout(noPollCtx *ctx);

/**
 * Cookie header; NULL if none.
 */
const char *nopoll_conn_get_cookie(noPollConn *conn);

/**
 * The user pointer (NULL if unset).
 */
noPollPtr nopoll_conn_get_hook(noPollConn *conn);

/**
 * Host header; NULL if none.
 */
const char *nopoll_conn_get_host_header(noPollConn *conn);

/**
 * Context-unique id; -1 for NULL.
 */
int nopoll_conn_get_id(noPollConn *conn);

/**
 * For an accepted connection: its listener; NULL otherwise.
 */
noPollConn *nopoll_conn_get_listener(noPollConn *conn);

/**
 * Effective incoming frame limit (the default for NULL).
 */
long nopoll_conn_get_max_frame_size(noPollConn *conn);

/**
 * Reads at most one message; NULL when nothing is complete or on error.
 */
noPollMsg *nopoll_conn_get_msg(noPollConn *conn);

/**
 * Origin received (server) or sent (client); NULL if none.
 */
const char *nopoll_conn_get_origin(noPollConn *conn);

/**
 * Subprotocols the client requested (raw list); NULL if none.
 */
const char *nopoll_conn_get_requested_protocol(noPollConn *conn);

/**
 * GET url of the handshake ("/" if unknown); NULL only for NULL.
 */
const char *nopoll_conn_get_requested_url(noPollConn *conn);

/**
 * X-Real-IP header; NULL if none.
 */
const char *nopoll_conn_get_x_real_ip_header(noPollConn *conn);

/**
 * Peer (or bind) host text; behind a trusted proxy that told it (PROXY
 * header, `X-Forwarded-For`, `X-Real-IP`) the client's, see
 * `nopoll_conn_proxy_host`. NULL for NULL.
 */
const char *nopoll_conn_host(noPollConn *conn);

/**
 * True while the socket is usable.
 */
nopoll_bool nopoll_conn_is_ok(noPollConn *conn);

/**
 * Extension: true when permessage-deflate (RFC 7692) was negotiated on
 * this connection (false for NULL, before the handshake, or declined).
 */
nopoll_bool nopoll_conn_is_permessage_deflate(noPollConn *conn);

/**
 * True once the handshake is complete (tries to advance it).
 */
nopoll_bool nopoll_conn_is_ready(noPollConn *conn);

/**
 * True when the connection runs TLS (a listener: accepts TLS).
 */
nopoll_bool nopoll_conn_is_tls_on(noPollConn *conn);

/**
 * XORs `payload_size` bytes with the 4-byte `mask` starting at `desp`.
 *
 * # Safety
 * `payload` writable for `payload_size` bytes; `mask` readable for 4 bytes.
 */
void nopoll_conn_mask_content(noPollCtx *ctx, char *payload, int payload_size, char *mask, int desp);

/**
 * ws:// client over IPv4: connects and sends the upgrade request.
 *
 * # Safety
 * Every string is NULL or NUL-terminated.
 */
noPollConn *nopoll_conn_new(noPollCtx *ctx, const char *host_ip, const char *host_port, const char *host_name, const char *get_url, const char *protocols, const char *origin);

/**
 * ws:// client over IPv6.
 *
 * # Safety
 * Every string is NULL or NUL-terminated.
 */
noPollConn *nopoll_conn_new6(noPollCtx *ctx, const char *host_ip, const char *host_port, const char *host_name, const char *get_url, const char *protocols, const char *origin);

/**
 * ws:// client with options (consumed unless reuse is set).
 *
 * # Safety
 * Every string is NULL or NUL-terminated.
 */
noPollConn *nopoll_conn_new_opts(noPollCtx *ctx, noPollConnOpts *opts, const char *host_ip, const char *host_port, const char *host_name, const char *get_url, const char *protocols, const char *origin);

/**
 * Client handshake over a socket the caller already connected.
 *
 * # Safety
 * Every string is NULL or NUL-terminated.
 */
noPollConn *nopoll_conn_new_with_socket(noPollCtx *ctx, noPollConnOpts *opts, int socket, const char *host_ip, const char *host_port, const char *host_name, const char *get_url, const char *protocols, const char *origin);

/**
 * Client: whether to send an Origin header (default true).
 */
void nopoll_conn_opts_add_origin_header(noPollConnOpts *opts, nopoll_bool add);

/**
 * Same as `nopoll_conn_opts_unref`.
 */
void nopoll_conn_opts_free(noPollConnOpts *opts);

/**
 * New options, one reference owned by the caller (or by the first API
 * that receives them, unless `reuse` is set).
 */
noPollConnOpts *nopoll_conn_opts_new(void);

/**
 * +1 reference; false for NULL.
 */
nopoll_bool nopoll_conn_opts_ref(noPollConnOpts *opts);

/**
 * Cookie header for the client handshake (copied; NULL unsets).
 *
 * # Safety
 * `cookie_content` is NULL or a NUL-terminated string.
 */
void nopoll_conn_opts_set_cookie(noPollConnOpts *opts, const char *cookie_content);

/**
 * Extra header text ("\r\nName: value"...) for the client handshake.
 *
 * # Safety
 * `extra_headers` is NULL or a NUL-terminated string.
 */
void nopoll_conn_opts_set_extra_headers(noPollConnOpts *opts, const char *extra_headers);

/**
 * Local address to bind client sockets to (NULL = default).
 *
 * # Safety
 * `_interface` is NULL or a NUL-terminated string.
 */
void nopoll_conn_opts_set_interface(noPollConnOpts *opts, const char *_interface);

/**
 * Incoming frame limit overriding the context's; invalid values ignored.
 */
void nopoll_conn_opts_set_max_frame_size(noPollConnOpts *opts, long max_frame_size);

/**
 * Extension: the client offers permessage-deflate (RFC 7692; default
 * off). `no_context_takeover` asks the server for no context takeover in
 * both directions (no compressor memory between messages); a server that
 * does not grant it fails the connection. Compression level 1.
 */
void nopoll_conn_opts_set_permessage_deflate(noPollConnOpts *opts, nopoll_bool enable, nopoll_bool no_context_takeover);

/**
 * reuse = true: receiving APIs do not consume the options.
 */
void nopoll_conn_opts_set_reuse(noPollConnOpts *opts, nopoll_bool reuse);

/**
 * Stores certificate paths in the options; true only if the files given
 * are readable (read when a TLS connection or listener uses the options).
 *
 * # Safety
 * Each string is NULL or NUL-terminated.
 */
nopoll_bool nopoll_conn_opts_set_ssl_certs(noPollConnOpts *opts, const char *certificate, const char *private_key, const char *chain_certificate, const char *ca_certificate);

/**
 * Selects the TLS method for these options (stored).
 */
void nopoll_conn_opts_set_ssl_protocol(noPollConnOpts *opts, noPollSslProtocol ssl_protocol);

/**
 * Server: accept handshakes without Origin (already the default here).
 */
void nopoll_conn_opts_skip_origin_check(noPollConnOpts *opts, nopoll_bool skip_check);

/**
 * Peer verification on/off (stored).
 */
void nopoll_conn_opts_ssl_peer_verify(noPollConnOpts *opts, nopoll_bool verify);

/**
 * -1 reference; frees at zero.
 */
void nopoll_conn_opts_unref(noPollConnOpts *opts);

/**
 * Bytes queued from short writes; 0 for NULL.
 */
int nopoll_conn_pending_write_bytes(noPollConn *conn);

/**
 * Peer (or bind) port text; NULL for NULL.
 */
const char *nopoll_conn_port(noPollConn *conn);

/**
 * Extension: the address of the proxy `conn` came through (its TCP
 * peer), when a trusted proxy told the client's address; NULL otherwise
 * (and for NULL). Valid as long as the connection.
 */
const char *nopoll_conn_proxy_host(noPollConn *conn);

/**
 * Stream read across message boundaries.
 *
 * # Safety
 * `buffer` is valid for writing `bytes` bytes.
 */
int nopoll_conn_read(noPollConn *conn, char *buffer, int bytes, nopoll_bool block, long timeout);

/**
 * Bytes already received and buffered inside the connection.
 */
int nopoll_conn_read_pending(noPollConn *conn);

/**
 * +1 reference; false for NULL or a dead connection.
 */
nopoll_bool nopoll_conn_ref(noPollConn *conn);

/**
 * References: the caller's plus one while registered; -1 for NULL.
 */
int nopoll_conn_ref_count(noPollConn *conn);

/**
 * Role; NOPOLL_ROLE_UNKNOWN for NULL.
 */
noPollRole nopoll_conn_role(noPollConn *conn);

/**
 * One binary frame (FIN set).
 *
 * # Safety
 * `content` is valid for `length` bytes.
 */
int nopoll_conn_send_binary(noPollConn *conn, const char *content, long length);

/**
 * A binary frame without FIN.
 *
 * # Safety
 * `content` is valid for `length` bytes.
 */
int nopoll_conn_send_binary_fragment(noPollConn *conn, const char *content, long length);

/**
 * Low level: one frame exactly as described, pausing `sleep_in_header` µs
 * between header and payload. Payload bytes written, -2 would block, -1 error.
 *
 * # Safety
 * `content` is valid for `length` bytes.
 */
int nopoll_conn_send_frame(noPollConn *conn, nopoll_bool fin, nopoll_bool masked, noPollOpCode op_code, long length, noPollPtr content, long sleep_in_header);

/**
 * From an HTTP request handler: sends `status` with `body` (`body_size`
 * bytes, -1 for strlen) and `Content-Type: content_type`. False outside an
 * HTTP request or for bad arguments.
 *
 * # Safety
 * `content_type` is NULL or NUL-terminated; `body` is NULL or valid for
 * `body_size` bytes (NUL-terminated when -1).
 */
nopoll_bool nopoll_conn_send_http_response(noPollConn *conn, int status, const char *content_type, const char *body, long body_size);

/**
 * An empty ping; true when written without error.
 */
nopoll_bool nopoll_conn_send_ping(noPollConn *conn);

/**
 * A pong with the given payload (at most 125 bytes).
 *
 * # Safety
 * `content` is valid for `length` bytes.
 */
nopoll_bool nopoll_conn_send_pong(noPollConn *conn, long length, noPollPtr content);

/**
 * One text frame (FIN set); `length == -1` means strlen.
 *
 * # Safety
 * `content` is valid for `length` bytes (NUL-terminated for -1).
 */
int nopoll_conn_send_text(noPollConn *conn, const char *content, long length);

/**
 * A text frame without FIN; the next send continues the message.
 *
 * # Safety
 * As `nopoll_conn_send_text`.
 */
int nopoll_conn_send_text_fragment(noPollConn *conn, const char *content, long length);

/**
 * Server side, in on_open: the subprotocol for the 101 answer (copied).
 *
 * # Safety
 * `protocol` is NULL or a NUL-terminated string.
 */
void nopoll_conn_set_accepted_protocol(noPollConn *conn, const char *protocol);

/**
 * Stores a user pointer.
 */
void nopoll_conn_set_hook(noPollConn *conn, noPollPtr ptr);

/**
 * Handler called once when the connection closes.
 */
void nopoll_conn_set_on_close(noPollConn *conn, noPollOnCloseHandler on_close, noPollPtr user_data);

/**
 * Per-connection message handler.
 */
void nopoll_conn_set_on_msg(noPollConn *conn, noPollOnMessageHandler on_msg, noPollPtr user_data);

/**
 * Per-connection handshake-complete handler.
 */
void nopoll_conn_set_on_ready(noPollConn *conn, noPollActionHandler on_ready, noPollPtr user_data);

/**
 * fcntl helper: enable = true makes the socket blocking.
 */
nopoll_bool nopoll_conn_set_sock_block(NOPOLL_SOCKET socket, nopoll_bool enable);

/**
 * Replaces the socket value (the old one is not closed).
 */
void nopoll_conn_set_socket(noPollConn *conn, NOPOLL_SOCKET _socket);

/**
 * Closes the socket without a close frame and fires on_close.
 */
void nopoll_conn_shutdown(noPollConn *conn);

/**
 * The socket; -1 for NULL.
 */
NOPOLL_SOCKET nopoll_conn_socket(noPollConn *conn);

/**
 * wss:// client over IPv4: TCP connect, then the TLS handshake (bounded
 * by the connect timeout), then the upgrade request. NULL for argument or
 * TCP failures; a connection that is not ok when TLS fails (why is
 * logged). NULL `options`: the peer is verified (chain and host name).
 *
 * # Safety
 * Every string is NULL or NUL-terminated.
 */
noPollConn *nopoll_conn_tls_new(noPollCtx *ctx, noPollConnOpts *options, const char *host_ip, const char *host_port, const char *host_name, const char *get_url, const char *protocols, const char *origin);

/**
 * wss:// client over IPv6 (see `nopoll_conn_tls_new`).
 *
 * # Safety
 * Every string is NULL or NUL-terminated.
 */
noPollConn *nopoll_conn_tls_new6(noPollCtx *ctx, noPollConnOpts *options, const char *host_ip, const char *host_port, const char *host_name, const char *get_url, const char *protocols, const char *origin);

/**
 * wss:// client over a socket the caller connected (see
 * `nopoll_conn_tls_new`).
 *
 * # Safety
 * Every string is NULL or NUL-terminated.
 */
noPollConn *nopoll_conn_tls_new_with_socket(noPollCtx *ctx, noPollConnOpts *options, int socket, const char *host_ip, const char *host_port, const char *host_name, const char *get_url, const char *protocols, const char *origin);

/**
 * -1 reference; the connection is freed when nothing references it.
 */
void nopoll_conn_unref(noPollConn *conn);

/**
 * Waits up to `timeout` seconds for the handshake.
 */
nopoll_bool nopoll_conn_wait_until_connection_ready(noPollConn *conn, int timeout);

/**
 * Number of registered connections; -1 for NULL.
 */
int nopoll_ctx_conns(noPollCtx *ctx);

/**
 * Extension: graceful drain for a restart. Marks the context draining,
 * closes its listeners, sends every open connection a close frame
 * (`status`, 0 for 1001 Going Away, and `reason`, NULL for none), serves
 * the connections until their close handshakes completed or `timeout_ms`
 * passed, then closes the rest (`on_close` runs for each). Call it from
 * outside `nopoll_loop_wait` (e.g. after it returned, or from another
 * thread while it runs). Returns the number of connections closed
 * without a close handshake, or -1 (NULL ctx, negative timeout, a status
 * or reason a close frame cannot carry, called from a loop handler).
 */
int nopoll_ctx_drain(noPollCtx *ctx, int status, const char *reason, long timeout_ms);

/**
 * Looks up the certificate store: the entry for `serverName`; with NULL,
 * the entry stored without a serverName, else the first one. Each
 * out-parameter is optional and receives a string owned by the context
 * (valid as long as the context; NULL for a chain that was not given).
 * False when nothing matches (out-parameters untouched).
 *
 * # Safety
 * `serverName` is NULL or NUL-terminated; each out-parameter is NULL or
 * writable.
 */
nopoll_bool nopoll_ctx_find_certificate(noPollCtx *ctx, const char *serverName, const char **certificateFile, const char **privateKey, const char **optionalChainFile);

/**
 * Calls `foreach` for each registered connection; returns the first one
 * for which it returns true.
 */
noPollConn *nopoll_ctx_foreach_conn(noPollCtx *ctx, noPollForeachConn foreach, noPollPtr user_data);

/**
 * Incoming frame limit (the default for NULL).
 */
long nopoll_ctx_get_max_frame_size(noPollCtx *ctx);

/**
 * Extension: bytes the connections of `ctx` hold now against its memory
 * budget (-1 for a NULL context).
 */
long nopoll_ctx_get_memory_in_use(noPollCtx *ctx);

/**
 * Extension: whether the context is draining; false for NULL.
 */
nopoll_bool nopoll_ctx_is_draining(noPollCtx *ctx);

/**
 * A new context, one reference owned by the caller (`nopoll_ctx_unref`).
 */
noPollCtx *nopoll_ctx_new(void);

/**
 * +1 reference; false for NULL.
 */
nopoll_bool nopoll_ctx_ref(noPollCtx *ctx);

/**
 * References: the caller's plus one per registered connection; -1 for NULL.
 */
int nopoll_ctx_ref_count(noPollCtx *ctx);

/**
 * Adds a connection to the context's registry.
 */
nopoll_bool nopoll_ctx_register_conn(noPollCtx *ctx, noPollConn *conn);

/**
 * Stores (copies of) certificate, key and chain *paths* for TLS
 * listeners of the context, under `serverName` (NULL: the default entry).
 * The files are not opened here. An entry already stored for the same
 * serverName is kept (as upstream). False if ctx, certificateFile or
 * privateKey is NULL (or a string is not UTF-8).
 *
 * # Safety
 * Each string is NULL or NUL-terminated.
 */
nopoll_bool nopoll_ctx_set_certificate(noPollCtx *ctx, const char *serverName, const char *certificateFile, const char *privateKey, const char *optionalChainFile);

/**
 * Extension: marks the context as draining (or not). The library only
 * records it: an `on_http` health check answers 503 while
 * `nopoll_ctx_is_draining` is true, so the balancer sends no new
 * connections. `nopoll_ctx_drain` sets it too.
 */
void nopoll_ctx_set_draining(noPollCtx *ctx, nopoll_bool draining);

/**
 * Extension: hand out frames and partial frames as they arrive
 * (`nopoll_msg_is_fragment` / `nopoll_msg_is_final` tell the pieces apart)
 * instead of whole messages (the default). Affects connections opened or
 * accepted afterwards.
 */
void nopoll_ctx_set_fragment_delivery(noPollCtx *ctx, nopoll_bool enable);

/**
 * Extension: an opening handshake not completed within `microseconds` is
 * dropped (values <= 0 restore the default of 10 s; `LONG_MAX` is about
 * 292,000 years: never; deadlines saturate, they never overflow).
 */
void nopoll_ctx_set_handshake_timeout(noPollCtx *ctx, long microseconds);

/**
 * Extension: a connection from which nothing arrives for `timeout_ms` is
 * closed with 1001 (its on_close runs). <= 0: off (the default). Driven
 * by nopoll_loop_wait.
 */
void nopoll_ctx_set_idle_timeout(noPollCtx *ctx, long timeout_ms);

/**
 * Extension: keepalive. A connection from which nothing arrived for
 * `ping_interval_ms` gets a ping; when nothing arrives within
 * `pong_timeout_ms` after it (<= 0: the interval), the connection is
 * closed without a close frame: its on_close runs and
 * nopoll_conn_get_close_status reports 1006. `ping_interval_ms` <= 0
 * turns the pings off (the default). Driven by nopoll_loop_wait.
 */
void nopoll_ctx_set_keepalive(noPollCtx *ctx, long ping_interval_ms, long pong_timeout_ms);

/**
 * Extension: for fleets running upstream nopoll peers, which send every
 * fragment of a message with the message's opcode: a text or binary frame
 * arriving inside an unfinished fragmented message is taken as its
 * continuation instead of failing the connection with 1002 (RFC 6455, the
 * default). Affects connections opened or accepted afterwards.
 */
void nopoll_ctx_set_legacy_fragments(noPollCtx *ctx, nopoll_bool enable);

/**
 * Extension: listen backlog of listeners created afterwards (default 1024;
 * values <= 0 ignored; the system caps large ones, e.g. Linux's
 * `net.core.somaxconn`).
 */
void nopoll_ctx_set_listen_backlog(noPollCtx *ctx, int backlog);

/**
 * Incoming frame limit; values <= 0 or above the limit are ignored.
 */
void nopoll_ctx_set_max_frame_size(noPollCtx *ctx, long max_frame_size);

/**
 * Extension: buffer memory (reassembly and output) a connection keeps
 * between messages; above it the buffers are released once the connection
 * has read all there was (default 1 MiB + 16 bytes; 4 KiB in no_std
 * builds; values < 0 ignored; 0 releases them after every message; any
 * positive value is taken: a threshold, nothing is allocated from it).
 */
void nopoll_ctx_set_max_idle_buffers(noPollCtx *ctx, long bytes);

/**
 * Extension: largest incoming message after reassembly (default 64 MiB,
 * never below the frame limit; values <= 0 ignored; any positive value is
 * taken). Beyond it: close 1009. Reassembly memory is reserved fallibly:
 * a message within the limit that the heap cannot hold also closes the
 * connection with 1009.
 */
void nopoll_ctx_set_max_message_size(noPollCtx *ctx, long max_message_size);

/**
 * Extension: output a connection may queue (the peer reading slower than
 * we send) before sends fail with `NOPOLL_EWOULDBLOCK` semantics (-1 /
 * errno EWOULDBLOCK, nothing queued); beyond it the loop also stops
 * reading the connection until its output drains (read backpressure):
 * default 16 MiB; 256 KiB in no_std builds; values <= 0 ignored. Any
 * positive value is taken (up to `LONG_MAX`: no limit): it is a threshold,
 * nothing is allocated from it.
 */
void nopoll_ctx_set_max_pending_output(noPollCtx *ctx, long bytes);

/**
 * Extension: memory all connections of `ctx` may hold together for
 * message reassembly and pending output (default 256 MiB; 4 MiB in
 * no_std builds). A connection whose buffers would take the context over
 * it is closed: 1009 while receiving, 1013 (try again later) while
 * sending; the others are not touched. Values below 64 KiB are raised to
 * 64 KiB; values <= 0 are ignored.
 */
void nopoll_ctx_set_memory_budget(noPollCtx *ctx, long bytes);

/**
 * Handler run when a TCP connection is accepted.
 */
void nopoll_ctx_set_on_accept(noPollCtx *ctx, noPollActionHandler on_accept, noPollPtr user_data);

/**
 * Installs (or, with NULL, removes) the handler for plain HTTP requests.
 * Without one, such requests get `400 Bad Request`.
 */
void nopoll_ctx_set_on_http_request(noPollCtx *ctx, noPollHttpRequestHandler handler, noPollPtr user_data);

/**
 * Default message handler of the context's connections.
 */
void nopoll_ctx_set_on_msg(noPollCtx *ctx, noPollOnMessageHandler on_msg, noPollPtr user_data);

/**
 * Handler run after the upgrade request, before the 101 answer.
 */
void nopoll_ctx_set_on_open(noPollCtx *ctx, noPollActionHandler on_open, noPollPtr user_data);

/**
 * Handler run when a handshake completes.
 */
void nopoll_ctx_set_on_ready(noPollCtx *ctx, noPollActionHandler on_ready, noPollPtr user_data);

/**
 * Extension: listeners of this context accept permessage-deflate
 * (RFC 7692) offers (default off, as upstream nopoll, which has no
 * compression). Connections accepted afterwards are affected. Turning it
 * off forgets the settings below.
 */
void nopoll_ctx_set_permessage_deflate(noPollCtx *ctx, nopoll_bool enable);

/**
 * Extension: compression level of what listeners send under
 * permessage-deflate, 1 (fastest) to 9 (smallest), default 1; 0 sends
 * every message uncompressed (inflate only: no compressor memory, for
 * small heaps). Other values are ignored. Does not turn the extension on.
 */
void nopoll_ctx_set_permessage_deflate_level(noPollCtx *ctx, int level);

/**
 * Extension: listeners insist on no context takeover in both directions
 * (default false): neither end keeps compressor state between messages,
 * so an idle connection holds no compressor memory. True also turns
 * permessage-deflate on.
 */
void nopoll_ctx_set_permessage_deflate_no_context_takeover(noPollCtx *ctx, nopoll_bool enable);

/**
 * Called after every TLS handshake (both roles) with the `SSL_CTX*` and
 * the `SSL*` (with a C TLS table: NULL and the table's native session);
 * returning false closes the connection. NULL uninstalls.
 */
void nopoll_ctx_set_post_ssl_check(noPollCtx *ctx, noPollSslPostCheck post_ssl_check, noPollPtr user_data);

/**
 * `Sec-WebSocket-Version` sent by clients and required by listeners.
 */
void nopoll_ctx_set_protocol_version(noPollCtx *ctx, int version);

/**
 * Extension: size of the receive buffer: one per event loop, shared by
 * all its connections, and one per thread reading outside a loop
 * (default 256 KiB; 4 KiB in no_std builds). Clamped to 256 bytes ..
 * 16 MiB (64 KiB in no_std builds); values
 * <= 0 ignored. Takes effect at the next `nopoll_loop_wait`; a size the
 * heap refuses is halved until it fits (logged), never an abort.
 */
void nopoll_ctx_set_recv_buffer_size(noPollCtx *ctx, long bytes);

/**
 * Installs the `SSL_CTX*` creator: called for every TLS connection (both
 * roles); the context it returns is adopted (freed with the connection,
 * as upstream). The options argument it receives is NULL (ours are
 * consumed by then). NULL uninstalls.
 */
void nopoll_ctx_set_ssl_context_creator(noPollCtx *ctx, noPollSslContextCreator context_creator, noPollPtr user_data);

/**
 * Extension: the proxies trusted to tell a client's address (PROXY header,
 * `X-Forwarded-For`, `X-Real-IP`): addresses or CIDR ranges separated by
 * commas or spaces ("127.0.0.1, 10.0.0.0/8, ::1"); NULL or "" clears the
 * list. Without a list, `X-Forwarded-For` / `X-Real-IP` are ignored and a
 * PROXY header is accepted from any peer of a listener that requires one.
 * Returns the number of entries set, or -1 (NULL ctx, a malformed entry:
 * the list is then unchanged).
 */
int nopoll_ctx_set_trusted_proxies(noPollCtx *ctx, const char *list);

/**
 * -1 reference. Registered connections keep the context alive.
 */
void nopoll_ctx_unref(noPollCtx *ctx);

/**
 * Removes a connection from the registry (no-op if absent).
 */
void nopoll_ctx_unregister_conn(noPollCtx *ctx, noPollConn *conn);

/**
 * The default table (libc with the library's POSIX policy: close-on-exec,
 * no SIGPIPE, no fds 0..2), so a wrapper table can call through to it.
 * Never NULL; owned by the library. Without std (no libc sockets) it is
 * a table whose every call fails with `ENOSYS`.
 */
const noPollSocketOps *nopoll_default_socket_ops(void);

/**
 * free() if non-NULL.
 *
 * # Safety
 * `ref_` is NULL or memory from this allocator, not freed before.
 */
void nopoll_free(noPollPtr ref_);

/**
 * Big-endian unsigned 16-bit read.
 *
 * # Safety
 * `buffer` is NULL or readable for 2 bytes.
 */
int nopoll_get_16bit(const char *buffer);

/**
 * Big-endian 32-bit read.
 *
 * # Safety
 * `buffer` is NULL or readable for 4 bytes.
 */
int nopoll_get_32bit(const char *buffer);

/**
 * `buffer[0]` as 0..255.
 *
 * # Safety
 * `buffer` is NULL or readable for 1 byte.
 */
int nopoll_get_8bit(const char *buffer);

/**
 * Bit `position` (0 = LSB) of `byte`.
 */
int nopoll_get_bit(char byte, int position);

/**
 * Extension: makes `hook` the library's clock (monotonic milliseconds)
 * instead of the built-in one (`std::time::Instant`; C `gettimeofday` in
 * no_std builds). NULL restores the built-in clock. Handshake, connect and
 * loop timeouts all read it. Install it before creating a context.
 */
void nopoll_install_clock(noPollClockHook hook);

/**
 * Extension: makes `hook` the source of masking keys and handshake nonces
 * instead of the built-in one (the OS's `getrandom`; C `rand()` in no_std
 * builds, which firmware should replace with its hardware RNG). NULL
 * restores the built-in source.
 */
void nopoll_install_random(noPollRandomHook hook);

/**
 * Installs `ops` as the table every socket call of the library goes
 * through (copied: `ops` may be freed afterwards). Call it once, before any
 * other nopoll call that may touch a socket.
 *
 * Returns `nopoll_false` when `ops` is NULL, when an entry other than
 * `sendmsg` and `set_errno` is NULL, when a table was installed before, or when the library
 * already used sockets (the libc table is then in place for good).
 *
 * # Safety
 * `ops` is NULL or points to a readable `noPollSocketOps` whose non-NULL
 * entries meet the contract documented on each field.
 */
nopoll_bool nopoll_install_socket_ops(const noPollSocketOps *ops);

/**
 * Installs a table of TLS functions (mbedTLS, wolfSSL, esp-tls...) for the
 * whole process, used instead of OpenSSL from then on; in every build
 * (firmware builds have no other TLS). The table is copied. False if
 * `ops` is NULL, has another version or a NULL entry, or a table is
 * already installed.
 *
 * # Safety
 * `ops` is NULL or points to a readable `noPollTlsOps` whose entries meet
 * the contract documented on each field.
 */
nopoll_bool nopoll_install_tls_ops(const noPollTlsOps *ops);

/**
 * Writes the binary form of `a` into `buffer` (bounded); returns `buffer`.
 *
 * # Safety
 * `buffer` is NULL or writable for `buf_size` bytes.
 */
char *nopoll_int2bin(int a, char *buffer, int buf_size);

/**
 * Logs the binary form of `value`.
 */
void nopoll_int2bin_print(noPollCtx *ctx, int value);

/**
 * Creates an I/O engine of the requested type: epoll (the default on
 * Linux) or poll; SELECT gives poll, which has no FD_SETSIZE cap. An
 * unknown type gives the default engine (upstream answers every type with
 * its one engine). NULL for a NULL context or when the engine's
 * descriptors cannot be created.
 */
noPollIoEngine *nopoll_io_get_engine(noPollCtx *ctx, noPollIoEngineType engine_type);

/**
 * Destroys an engine from `nopoll_io_get_engine`.
 */
void nopoll_io_release_engine(noPollIoEngine *engine);

/**
 * Plain accept() on a listening socket; the new socket or -1.
 */
NOPOLL_SOCKET nopoll_listener_accept(NOPOLL_SOCKET server_socket);

/**
 * Wraps an accepted, connected socket as a server connection (port
 * sharing), registered in the context; the loop serves it once
 * `nopoll_conn_accept_complete` accepted it. Given the application's
 * *listening* socket (as upstream's port-sharing sample does, to get the
 * `listener` argument of `nopoll_conn_accept_complete`), it returns a
 * listener object the loop never accepts on. NULL for anything else.
 */
noPollConn *nopoll_listener_from_socket(noPollCtx *ctx, NOPOLL_SOCKET session);

/**
 * ws:// listener on host:port (IPv4).
 *
 * # Safety
 * `host` and `port` are NULL or NUL-terminated.
 */
noPollConn *nopoll_listener_new(noPollCtx *ctx, const char *host, const char *port);

/**
 * ws:// listener on host:port (IPv6).
 *
 * # Safety
 * `host` and `port` are NULL or NUL-terminated.
 */
noPollConn *nopoll_listener_new6(noPollCtx *ctx, const char *host, const char *port);

/**
 * Listener with options (consumed unless reuse is set).
 *
 * # Safety
 * `host` and `port` are NULL or NUL-terminated.
 */
noPollConn *nopoll_listener_new_opts(noPollCtx *ctx, noPollConnOpts *opts, const char *host, const char *port);

/**
 * IPv6 listener with options.
 *
 * # Safety
 * `host` and `port` are NULL or NUL-terminated.
 */
noPollConn *nopoll_listener_new_opts6(noPollCtx *ctx, noPollConnOpts *opts, const char *host, const char *port);

/**
 * Certificate, key and optional chain files of a TLS listener (used from
 * the next accepted connection on). False if the listener is not a TLS
 * listener, certificate or key is NULL, or a file cannot be read.
 *
 * # Safety
 * Each string is NULL or NUL-terminated.
 */
nopoll_bool nopoll_listener_set_certificate(noPollConn *listener, const char *certificate, const char *private_key, const char *chain_file);

/**
 * Extension: `listener` requires (true) or stops requiring (false) a
 * PROXY protocol header (v1 or v2) at the start of each connection it
 * accepts from now on. A connection with a missing or malformed header,
 * or from a peer outside the trusted proxies, is closed with a log line.
 * Then `nopoll_conn_host` / `nopoll_conn_port` give the client's address
 * and `nopoll_conn_proxy_host` the balancer's. False for NULL or a
 * connection that is not a listener.
 */
nopoll_bool nopoll_listener_set_proxy_protocol(noPollConn *listener, nopoll_bool enable);

/**
 * socket + bind + listen on host:port (IPv4); the socket (blocking, as
 * upstream's: accept(2) on it waits), -1 on failure, -2 for bad
 * parameters.
 *
 * # Safety
 * `host` and `port` are NULL or NUL-terminated.
 */
NOPOLL_SOCKET nopoll_listener_sock_listen(noPollCtx *ctx, const char *host, const char *port);

/**
 * wss:// listener (IPv4): TLS runs on each accepted connection, driven by
 * the loop, after `on_accept`.
 */
noPollConn *nopoll_listener_tls_new(noPollCtx *ctx, const char *host, const char *port);

/**
 * wss:// listener (IPv6).
 */
noPollConn *nopoll_listener_tls_new6(noPollCtx *ctx, const char *host, const char *port);

/**
 * wss:// listener with options (certificate, CA, client verification,
 * version; consumed unless reuse is set).
 */
noPollConn *nopoll_listener_tls_new_opts(noPollCtx *ctx, noPollConnOpts *opts, const char *host, const char *port);

/**
 * IPv6 wss:// listener with options.
 */
noPollConn *nopoll_listener_tls_new_opts6(noPollCtx *ctx, noPollConnOpts *opts, const char *host, const char *port);

/**
 * ANSI colours on/off.
 */
void nopoll_log_color_enable(noPollCtx *ctx, nopoll_bool value);

/**
 * Whether colours are on.
 */
nopoll_bool nopoll_log_color_is_enabled(noPollCtx *ctx);

/**
 * Console logging on/off for the context.
 */
void nopoll_log_enable(noPollCtx *ctx, nopoll_bool value);

/**
 * Whether console logging is on (false for NULL).
 */
nopoll_bool nopoll_log_is_enabled(noPollCtx *ctx);

/**
 * Routes every log line of the context to `handler` (NULL removes it).
 */
void nopoll_log_set_handler(noPollCtx *ctx, noPollLogHandler handler, noPollPtr user_data);

/**
 * Makes a running `nopoll_loop_wait` return. Safe from a callback, another
 * thread or a signal handler: it takes no lock and allocates nothing (an
 * atomic store and a write(2) on the loop's wake-up socket).
 */
void nopoll_loop_stop(noPollCtx *ctx);

/**
 * Extension: stops watching a socket watched with `nopoll_loop_watch_fd`
 * (not closed); false if it was not watched or for NULL.
 */
nopoll_bool nopoll_loop_unwatch_fd(noPollCtx *ctx, NOPOLL_SOCKET fd);

/**
 * Runs the loop: `timeout` µs (0 = until `nopoll_loop_stop`; negative:
 * -2; `LONG_MAX` saturates, it never overflows). Returns 0 when stopped,
 * -2 for bad arguments, -3 on timeout, -4 on engine failure.
 */
int nopoll_loop_wait(noPollCtx *ctx, long timeout);

/**
 * Extension: watches a socket the application owns (a Redis client's,
 * a database driver's) in the context's `nopoll_loop_wait`, next to its
 * connections: `handler` runs on the loop's thread when `fd` is readable
 * (`read`) or writable (`write`), so the work never blocks WebSocket
 * traffic and needs no second thread. Calling it again for the same
 * socket changes the interest, handler and user data; both false stops
 * watching. The loop never reads, writes or closes `fd`; unwatch it
 * before closing it. Changes take effect before the loop's next wait
 * (from a handler too). False for NULL ctx, a negative socket or a NULL
 * handler while watching.
 */
nopoll_bool nopoll_loop_watch_fd(noPollCtx *ctx, NOPOLL_SOCKET fd, nopoll_bool read, nopoll_bool write, noPollFdHandler handler, noPollPtr user_data);

/**
 * The payload, followed by a NUL byte; NULL for NULL or an empty payload.
 */
const unsigned char *nopoll_msg_get_payload(noPollMsg *msg);

/**
 * Payload size; -1 for NULL.
 */
long nopoll_msg_get_payload_size(noPollMsg *msg);

/**
 * FIN bit.
 */
nopoll_bool nopoll_msg_is_final(noPollMsg *msg);

/**
 * True for a piece of a message.
 */
nopoll_bool nopoll_msg_is_fragment(noPollMsg *msg);

/**
 * A new message with `msg`'s header and both payloads (inputs untouched).
 */
noPollMsg *nopoll_msg_join(noPollMsg *msg, noPollMsg *msg2);

/**
 * Empty message holder with one reference (freed by `nopoll_msg_unref`).
 */
noPollMsg *nopoll_msg_new(void);

/**
 * Frame opcode; NOPOLL_UNKNOWN_OP_CODE for NULL. A holder from
 * `nopoll_msg_new` has all fields zero, as upstream: opcode 0.
 */
noPollOpCode nopoll_msg_opcode(noPollMsg *msg);

/**
 * +1 reference; false for NULL.
 */
nopoll_bool nopoll_msg_ref(noPollMsg *msg);

/**
 * Reference count; -1 for NULL.
 */
int nopoll_msg_ref_count(noPollMsg *msg);

/**
 * -1 reference; frees at zero.
 */
void nopoll_msg_unref(noPollMsg *msg);

/**
 * Creates a mutex through the installed callback; NULL without one.
 */
noPollPtr nopoll_mutex_create(void);

/**
 * Destroys a mutex through the callback.
 */
void nopoll_mutex_destroy(noPollPtr mutex);

/**
 * Locks a mutex through the callback.
 */
void nopoll_mutex_lock(noPollPtr mutex);

/**
 * Unlocks a mutex through the callback.
 */
void nopoll_mutex_unlock(noPollPtr mutex);

/**
 * Compares the first `bytes` characters; both strings must have them.
 *
 * # Safety
 * Each string is NULL or NUL-terminated.
 */
nopoll_bool nopoll_ncmp(const char *string1, const char *string2, int bytes);

/**
 * Fills `nonce_size` bytes with random data.
 *
 * # Safety
 * `buffer` is NULL or writable for `nonce_size` bytes.
 */
nopoll_bool nopoll_nonce(char *buffer, int nonce_size);

/**
 * realloc wrapper.
 *
 * # Safety
 * `ref_` is NULL or memory from this allocator.
 */
noPollPtr nopoll_realloc(noPollPtr ref_, size_t size);

/**
 * Big-endian 16-bit write.
 *
 * # Safety
 * `buffer` is NULL or writable for 2 bytes.
 */
void nopoll_set_16bit(int value, char *buffer);

/**
 * Big-endian 32-bit write.
 *
 * # Safety
 * `buffer` is NULL or writable for 4 bytes.
 */
void nopoll_set_32bit(int value, char *buffer);

/**
 * Sets bit `position` of `buffer[0]`.
 *
 * # Safety
 * `buffer` is NULL or writable for 1 byte.
 */
void nopoll_set_bit(char *buffer, int position);

/**
 * Logs the 8 bits of `byte`.
 *
 * # Safety
 * `label` is NULL or NUL-terminated.
 */
void nopoll_show_byte(noPollCtx *ctx, char byte, const char *label);

/**
 * Sleeps `microseconds` µs.
 */
void nopoll_sleep(long microseconds);

/**
 * True for a usable socket descriptor (>= 0).
 */
nopoll_bool nopoll_socket_is_valid(NOPOLL_SOCKET socket);

/**
 * strdup returning NULL for NULL (free with `nopoll_free`).
 *
 * # Safety
 * `buffer` is NULL or NUL-terminated.
 */
char *nopoll_strdup(const char *buffer);

/**
 * Installs the process-wide mutex callbacks (all four; any NULL
 * uninstalls). Without std the library's own locks are made with them
 * (install them before creating a context); std builds lock with std
 * mutexes and use the hooks only for `nopoll_mutex_*`.
 */
void nopoll_thread_handlers(noPollMutexCreate mutex_create, noPollMutexDestroy mutex_destroy, noPollMutexLock mutex_lock, noPollMutexUnlock mutex_unlock);

/**
 * `result = a - b` (normalised: `0 <= tv_usec < 1000000`); 1 if
 * negative, else 0.
 *
 * # Safety
 * Each pointer is NULL or valid.
 */
int nopoll_timeval_substract(struct timeval *a, struct timeval *b, struct timeval *result);

/**
 * Strips leading and trailing whitespace in place; `trimmed` receives the
 * number of characters removed.
 *
 * # Safety
 * `chunk` is NULL or a writable NUL-terminated string; `trimmed` is NULL or writable.
 */
void nopoll_trim(char *chunk, int *trimmed);


/* --------------------------------------------------------------------
 * Implemented in C (src/ffi/shim.c): variadic and va_list functions,
 * which stable Rust cannot define.
 * ------------------------------------------------------------------ */

char      * nopoll_strdup_printf   (const char * chunk, ...);

char      * nopoll_strdup_printfv  (const char * chunk, va_list args);

void __nopoll_log (noPollCtx * ctx, const char * function_name, const char * file, int line, noPollDebugLevel level, const char * message, ...);

/* --------------------------------------------------------------------
 * Declared by upstream but defined nowhere (calling it fails to link);
 * kept so that code mentioning it still compiles.
 * ------------------------------------------------------------------ */

void nopoll_ctx_free (noPollCtx * ctx);

END_C_DECLS

#endif /* __NOPOLL_H__ */
