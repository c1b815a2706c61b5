/*
 * Compile-only check of the C API surface (tests/header.rs builds it with
 * `cc -ansi -Wall -Werror -Wstrict-prototypes`, again with -DSHOW_DEBUG_LOG
 * and -DSHOW_FORMAT_BUGS, and with `c++ -x c++ -Wall -Werror`).
 *
 * It includes every installed header, uses every macro, enum value and
 * typedef of the contract (../shared/NOPOLL-API.md sections 2-5), asserts
 * numeric values at compile time, checks each handler typedef against a
 * function of the exact upstream signature, and redeclares every function
 * of sections 6-7 with its upstream prototype: a generated prototype that
 * differs (e.g. `char *` for `const char *`) is a "conflicting types" error.
 */
#include <nopoll.h>
#include <nopoll_ctx.h>
#include <nopoll_conn.h>
#include <nopoll_conn_opts.h>
#include <nopoll_listener.h>
#include <nopoll_msg.h>
#include <nopoll_loop.h>
#include <nopoll_io.h>
#include <nopoll_log.h>
#include <nopoll_decl.h>
#include <nopoll_handlers.h>
#include <nopoll_config.h>
#include <nopoll_private.h>
/* Including twice is harmless. */
#include <nopoll.h>

/* C89 compile-time assertion. */
#define CHECK(name, cond) typedef char check_##name[(cond) ? 1 : -1]

/* ---- Configuration macros (section 2) ---- */
#if !defined(NOPOLL_OS_UNIX) || NOPOLL_OS_UNIX != 1
#error "NOPOLL_OS_UNIX must be (1)"
#endif
#if defined(NOPOLL_OS_WIN32) || defined(NOPOLL_PLATFORM_WIN32)
#error "not a Windows build"
#endif
#if defined(__LP64__) && (!defined(NOPOLL_64BIT_PLATFORM) || NOPOLL_64BIT_PLATFORM != 1)
#error "NOPOLL_64BIT_PLATFORM must be (1) on LP64"
#endif
#if !defined(NOPOLL_HAVE_VASPRINTF) || NOPOLL_HAVE_VASPRINTF != 1
#error "NOPOLL_HAVE_VASPRINTF"
#endif
#if !defined(NOPOLL_HAVE_TLSv10_ENABLED) || !defined(NOPOLL_HAVE_TLSv11_ENABLED) || \
    !defined(NOPOLL_HAVE_TLSv12_ENABLED) || !defined(NOPOLL_HAVE_TLS_FLEXIBLE_ENABLED)
#error "the four TLS method macros must be defined"
#endif
#if NOPOLL_HAVE_TLSv10_ENABLED != 1 || NOPOLL_HAVE_TLSv11_ENABLED != 1 || \
    NOPOLL_HAVE_TLSv12_ENABLED != 1 || NOPOLL_HAVE_TLS_FLEXIBLE_ENABLED != 1
#error "TLS method macros must be (1)"
#endif
#if defined(NOPOLL_HAVE_SSLv23_ENABLED) || defined(NOPOLL_HAVE_SSLv3_ENABLED)
#error "SSLv23/SSLv3 must not be available"
#endif
#if !defined(INT_TO_PTR) || !defined(PTR_TO_INT)
#error "INT_TO_PTR / PTR_TO_INT"
#endif
#if !defined(FD_SETSIZE)
#error "FD_SETSIZE"
#endif
#if defined(__GNUC__) && !defined(_GNU_SOURCE)
#error "_GNU_SOURCE must be defined under GCC"
#endif

/* ---- Core macros (sections 2 and 5) ---- */
#if !defined(NOPOLL_SOCKET)
#error "NOPOLL_SOCKET must be a macro"
#endif
#if !defined(BEGIN_C_DECLS) || !defined(END_C_DECLS)
#error "BEGIN_C_DECLS / END_C_DECLS"
#endif
#if !defined(nopoll_log) || !defined(nopoll_new) || !defined(nopoll_close_socket) || \
    !defined(nopoll_is_disconnected) || !defined(nopoll_return_if_fail) || \
    !defined(nopoll_return_val_if_fail)
#error "function-like macros"
#endif
#if !defined(__function_name__) || !defined(__line__) || !defined(__file__) || \
    !defined(__NOPOLL_PRETTY_FUNCTION__) || !defined(__NOPOLL_LINE__) || !defined(__NOPOLL_FILE__)
#error "location macros"
#endif
#if NOPOLL_INVALID_SOCKET != -1 || NOPOLL_SOCKET_ERROR != -1
#error "NOPOLL_INVALID_SOCKET / NOPOLL_SOCKET_ERROR"
#endif
#if NOPOLL_EINTR != EINTR || NOPOLL_EWOULDBLOCK != EWOULDBLOCK || NOPOLL_EINPROGRESS != EINPROGRESS \
    || NOPOLL_ENOTCONN != ENOTCONN || NOPOLL_EAGAIN != EAGAIN
#error "NOPOLL_E* errno names"
#endif
#if NOPOLL_HANDSHAKE_BUFFER_SIZE != 8192
#error "NOPOLL_HANDSHAKE_BUFFER_SIZE"
#endif
#if NOPOLL_MAX_FRAME_SIZE_DEFAULT != 16777216 || NOPOLL_MAX_FRAME_SIZE_LIMIT != 2147483646
#error "NOPOLL_MAX_FRAME_SIZE_*"
#endif

CHECK(nopoll_true_is_1, nopoll_true == 1 && sizeof (nopoll_true) == sizeof (int));
CHECK(nopoll_false_is_0, nopoll_false == 0 && sizeof (nopoll_false) == sizeof (int));

/* NOPOLL_SOCKET is exactly int, nopoll_bool is int, noPollPtr is void *. */
CHECK(socket_is_int, sizeof (NOPOLL_SOCKET) == sizeof (int));
extern int          socket_probe;
extern NOPOLL_SOCKET socket_probe;
extern int          bool_probe;
extern nopoll_bool  bool_probe;
extern void *       ptr_probe;
extern noPollPtr    ptr_probe;

/* ---- Enums (section 3) ---- */
CHECK(level_debug,    NOPOLL_LEVEL_DEBUG == 0);
CHECK(level_warning,  NOPOLL_LEVEL_WARNING == 1);
CHECK(level_critical, NOPOLL_LEVEL_CRITICAL == 2);

CHECK(role_unknown,       NOPOLL_ROLE_UNKNOWN == 0);
CHECK(role_client,        NOPOLL_ROLE_CLIENT == 1);
CHECK(role_listener,      NOPOLL_ROLE_LISTENER == 2);
CHECK(role_main_listener, NOPOLL_ROLE_MAIN_LISTENER == 3);

CHECK(engine_default, NOPOLL_IO_ENGINE_DEFAULT == 0);
CHECK(engine_select,  NOPOLL_IO_ENGINE_SELECT == 1);
CHECK(engine_poll,    NOPOLL_IO_ENGINE_POLL == 2);
CHECK(engine_epoll,   NOPOLL_IO_ENGINE_EPOLL == 3);

CHECK(op_unknown,      NOPOLL_UNKNOWN_OP_CODE == -1);
CHECK(op_continuation, NOPOLL_CONTINUATION_FRAME == 0);
CHECK(op_text,         NOPOLL_TEXT_FRAME == 1);
CHECK(op_binary,       NOPOLL_BINARY_FRAME == 2);
CHECK(op_close,        NOPOLL_CLOSE_FRAME == 8);
CHECK(op_ping,         NOPOLL_PING_FRAME == 9);
CHECK(op_pong,         NOPOLL_PONG_FRAME == 10);

CHECK(tls1,         NOPOLL_METHOD_TLSV1 == 4);
CHECK(tls1_1,       NOPOLL_METHOD_TLSV1_1 == 5);
CHECK(tls1_2,       NOPOLL_METHOD_TLSV1_2 == 6);
CHECK(tls_flexible, NOPOLL_METHOD_TLS_FLEXIBLE == 7);

CHECK(transport_ipv4, NOPOLL_TRANSPORT_IPV4 == 1);
CHECK(transport_ipv6, NOPOLL_TRANSPORT_IPV6 == 2);

/* The Rust side passes these as int: they must be int-sized. */
CHECK(sizeof_level,     sizeof (noPollDebugLevel) == sizeof (int));
CHECK(sizeof_role,      sizeof (noPollRole) == sizeof (int));
CHECK(sizeof_engine,    sizeof (noPollIoEngineType) == sizeof (int));
CHECK(sizeof_opcode,    sizeof (noPollOpCode) == sizeof (int));
CHECK(sizeof_ssl,       sizeof (noPollSslProtocol) == sizeof (int));
CHECK(sizeof_transport, sizeof (noPollTransport) == sizeof (int));

/* ---- Opaque handles (section 2): the upstream struct tags ---- */
struct _noPollCtx       * tag_ctx;
struct _noPollConn      * tag_conn;
struct _noPollConnOpts  * tag_opts;
struct _noPollIoEngine  * tag_engine;
struct _noPollMsg       * tag_msg;
struct _noPollHandshake * tag_handshake;
noPollCtx       ** alias_ctx       = &tag_ctx;
noPollConn      ** alias_conn      = &tag_conn;
noPollConnOpts  ** alias_opts      = &tag_opts;
noPollIoEngine  ** alias_engine    = &tag_engine;
noPollMsg       ** alias_msg       = &tag_msg;
noPollHandShake ** alias_handshake = &tag_handshake;

/* ---- Handler typedefs (section 4), against exact upstream signatures ---- */
nopoll_bool my_action (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data);
void my_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data);
void my_on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data);
nopoll_bool my_foreach (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data);
noPollPtr my_mutex_create (void);
void my_mutex_op (noPollPtr mutex);
void my_log (noPollCtx * ctx, noPollDebugLevel level, const char * log_msg, noPollPtr user_data);
noPollPtr my_ssl_ctx (noPollCtx * ctx, noPollConn * conn, noPollConnOpts * opts, nopoll_bool is_client, noPollPtr user_data);
nopoll_bool my_post_check (noPollCtx * ctx, noPollConn * conn, noPollPtr SSL_CTX, noPollPtr SSL, noPollPtr user_data);
int my_read (noPollConn * conn, char * buffer, int buffer_size);
noPollPtr my_io_create (noPollCtx * ctx);
void my_io_destroy (noPollCtx * ctx, noPollPtr io_object);
int my_io_wait (noPollCtx * ctx, noPollPtr io_object);
nopoll_bool my_io_add_to (int fds, noPollCtx * ctx, noPollConn * conn, noPollPtr io_object);
nopoll_bool my_io_is_set (noPollCtx * ctx, int fds, noPollPtr io_object);

noPollActionHandler     handler_action     = my_action;
noPollOnMessageHandler  handler_on_msg     = my_on_msg;
noPollOnCloseHandler    handler_on_close   = my_on_close;
noPollForeachConn       handler_foreach    = my_foreach;
noPollMutexCreate       handler_mcreate    = my_mutex_create;
noPollMutexDestroy      handler_mdestroy   = my_mutex_op;
noPollMutexLock         handler_mlock      = my_mutex_op;
noPollMutexUnlock       handler_munlock    = my_mutex_op;
noPollLogHandler        handler_log        = my_log;
noPollSslContextCreator handler_ssl_ctx    = my_ssl_ctx;
noPollSslPostCheck      handler_post_check = my_post_check;
noPollRead              handler_read       = my_read;
noPollIoMechCreate      handler_io_create  = my_io_create;
noPollIoMechDestroy     handler_io_destroy = my_io_destroy;
noPollIoMechClear       handler_io_clear   = my_io_destroy;
noPollIoMechWait        handler_io_wait    = my_io_wait;
noPollIoMechAddTo       handler_io_add_to  = my_io_add_to;
noPollIoMechIsSet       handler_io_is_set  = my_io_is_set;

/* ---- Every function of sections 6 and 7, with its upstream prototype ---- */
BEGIN_C_DECLS

int nopoll_ctx_conns (noPollCtx * ctx);
noPollConn * nopoll_ctx_foreach_conn (noPollCtx * ctx, noPollForeachConn foreach, noPollPtr user_data);
void nopoll_ctx_free (noPollCtx * ctx);
long int nopoll_ctx_get_max_frame_size (noPollCtx * ctx);
noPollCtx * nopoll_ctx_new (void);
nopoll_bool nopoll_ctx_ref (noPollCtx * ctx);
int nopoll_ctx_ref_count (noPollCtx * ctx);
nopoll_bool nopoll_ctx_register_conn (noPollCtx * ctx, noPollConn * conn);
void nopoll_ctx_set_max_frame_size (noPollCtx * ctx, long int max_frame_size);
void nopoll_ctx_set_on_accept (noPollCtx * ctx, noPollActionHandler on_accept, noPollPtr user_data);
void nopoll_ctx_set_on_msg (noPollCtx * ctx, noPollOnMessageHandler on_msg, noPollPtr user_data);
void nopoll_ctx_set_on_open (noPollCtx * ctx, noPollActionHandler on_open, noPollPtr user_data);
void nopoll_ctx_set_on_ready (noPollCtx * ctx, noPollActionHandler on_ready, noPollPtr user_data);
void nopoll_ctx_set_protocol_version (noPollCtx * ctx, int version);
void nopoll_ctx_unref (noPollCtx * ctx);
void nopoll_ctx_unregister_conn (noPollCtx * ctx, noPollConn * conn);
nopoll_bool __nopoll_ctx_conn_is_registered (noPollCtx * ctx, noPollConn * conn);
noPollConn * nopoll_conn_accept (noPollCtx * ctx, noPollConn * listener);
nopoll_bool nopoll_conn_accept_complete (noPollCtx * ctx, noPollConn * listener, noPollConn * conn, NOPOLL_SOCKET session, nopoll_bool tls_on);
noPollConn * nopoll_conn_accept_socket (noPollCtx * ctx, noPollConn * listener, NOPOLL_SOCKET session);
void nopoll_conn_close (noPollConn * conn);
void nopoll_conn_close_ext (noPollConn * conn, int status, const char * reason, int reason_size);
void nopoll_conn_complete_handshake (noPollConn * conn);
int nopoll_conn_complete_pending_write (noPollConn * conn);
void nopoll_conn_connect_timeout (noPollCtx * ctx, long microseconds_to_wait);
noPollCtx * nopoll_conn_ctx (noPollConn * conn);
int nopoll_conn_default_receive (noPollConn * conn, char * buffer, int buffer_size);
int nopoll_conn_default_send (noPollConn * conn, char * buffer, int buffer_size);
int nopoll_conn_flush_writes (noPollConn * conn, long timeout, int previous_result);
const char * nopoll_conn_get_accepted_protocol (noPollConn * conn);
const char * nopoll_conn_get_close_reason (noPollConn * conn);
int nopoll_conn_get_close_status (noPollConn * conn);
long nopoll_conn_get_connect_timeout (noPollCtx * ctx);
const char * nopoll_conn_get_cookie (noPollConn * conn);
noPollPtr nopoll_conn_get_hook (noPollConn * conn);
const char * nopoll_conn_get_host_header (noPollConn * conn);
int nopoll_conn_get_id (noPollConn * conn);
noPollConn * nopoll_conn_get_listener (noPollConn * conn);
long int nopoll_conn_get_max_frame_size (noPollConn * conn);
noPollMsg * nopoll_conn_get_msg (noPollConn * conn);
const char * nopoll_conn_get_origin (noPollConn * conn);
const char * nopoll_conn_get_requested_protocol (noPollConn * conn);
const char * nopoll_conn_get_requested_url (noPollConn * conn);
const char * nopoll_conn_get_x_real_ip_header (noPollConn * conn);
const char * nopoll_conn_host (noPollConn * conn);
nopoll_bool nopoll_conn_is_ok (noPollConn * conn);
nopoll_bool nopoll_conn_is_ready (noPollConn * conn);
void nopoll_conn_mask_content (noPollCtx * ctx, char * payload, int payload_size, char * mask, int desp);
noPollConn * nopoll_conn_new (noPollCtx * ctx, const char * host_ip, const char * host_port, const char * host_name, const char * get_url, const char * protocols, const char * origin);
noPollConn * nopoll_conn_new6 (noPollCtx * ctx, const char * host_ip, const char * host_port, const char * host_name, const char * get_url, const char * protocols, const char * origin);
noPollConn * nopoll_conn_new_opts (noPollCtx * ctx, noPollConnOpts * opts, const char * host_ip, const char * host_port, const char * host_name, const char * get_url, const char * protocols, const char * origin);
noPollConn * nopoll_conn_new_with_socket (noPollCtx * ctx, noPollConnOpts * opts, int socket, const char * host_ip, const char * host_port, const char * host_name, const char * get_url, const char * protocols, const char * origin);
int nopoll_conn_pending_write_bytes (noPollConn * conn);
const char * nopoll_conn_port (noPollConn * conn);
char * nopoll_conn_produce_accept_key (noPollCtx * ctx, const char * websocket_key);
int nopoll_conn_read (noPollConn * conn, char * buffer, int bytes, nopoll_bool block, long int timeout);
int nopoll_conn_read_pending (noPollConn * conn);
nopoll_bool nopoll_conn_ref (noPollConn * conn);
int nopoll_conn_ref_count (noPollConn * conn);
noPollRole nopoll_conn_role (noPollConn * conn);
int nopoll_conn_send_binary (noPollConn * conn, const char * content, long length);
int nopoll_conn_send_binary_fragment (noPollConn * conn, const char * content, long length);
int nopoll_conn_send_frame (noPollConn * conn, nopoll_bool fin, nopoll_bool masked, noPollOpCode op_code, long length, noPollPtr content, long sleep_in_header);
nopoll_bool nopoll_conn_send_ping (noPollConn * conn);
nopoll_bool nopoll_conn_send_pong (noPollConn * conn, long length, noPollPtr content);
int nopoll_conn_send_text (noPollConn * conn, const char * content, long length);
int nopoll_conn_send_text_fragment (noPollConn * conn, const char * content, long length);
void nopoll_conn_set_accepted_protocol (noPollConn * conn, const char * protocol);
void nopoll_conn_set_hook (noPollConn * conn, noPollPtr ptr);
void nopoll_conn_set_on_close (noPollConn * conn, noPollOnCloseHandler on_close, noPollPtr user_data);
void nopoll_conn_set_on_msg (noPollConn * conn, noPollOnMessageHandler on_msg, noPollPtr user_data);
void nopoll_conn_set_on_ready (noPollConn * conn, noPollActionHandler on_ready, noPollPtr user_data);
nopoll_bool nopoll_conn_set_sock_block (NOPOLL_SOCKET socket, nopoll_bool enable);
void nopoll_conn_set_socket (noPollConn * conn, NOPOLL_SOCKET _socket);
void nopoll_conn_shutdown (noPollConn * conn);
NOPOLL_SOCKET nopoll_conn_socket (noPollConn * conn);
void nopoll_conn_unref (noPollConn * conn);
nopoll_bool nopoll_conn_wait_until_connection_ready (noPollConn * conn, int timeout);
int __nopoll_conn_owner_ref_count (noPollConn * conn);
int __nopoll_conn_send_common (noPollConn * conn, const char * content, long length, nopoll_bool has_fin, long sleep_in_header, noPollOpCode frame_type);
void __nopoll_conn_set_max_frame_size (noPollConn * conn, noPollConnOpts * options);
nopoll_bool __nopoll_conn_transient_ref (noPollConn * conn);
void __nopoll_conn_transient_unref (noPollConn * conn);
void nopoll_conn_opts_add_origin_header (noPollConnOpts * opts, nopoll_bool add);
void nopoll_conn_opts_free (noPollConnOpts * opts);
noPollConnOpts * nopoll_conn_opts_new (void);
nopoll_bool nopoll_conn_opts_ref (noPollConnOpts * opts);
void nopoll_conn_opts_set_cookie (noPollConnOpts * opts, const char * cookie_content);
void nopoll_conn_opts_set_extra_headers (noPollConnOpts * opts, const char * extra_headers);
void nopoll_conn_opts_set_interface (noPollConnOpts * opts, const char * _interface);
void nopoll_conn_opts_set_max_frame_size (noPollConnOpts * opts, long int max_frame_size);
void nopoll_conn_opts_set_reuse (noPollConnOpts * opts, nopoll_bool reuse);
void nopoll_conn_opts_skip_origin_check (noPollConnOpts * opts, nopoll_bool skip_check);
void nopoll_conn_opts_unref (noPollConnOpts * opts);
void __nopoll_conn_opts_release_if_needed (noPollConnOpts * options);
NOPOLL_SOCKET nopoll_listener_accept (NOPOLL_SOCKET server_socket);
noPollConn * nopoll_listener_from_socket (noPollCtx * ctx, NOPOLL_SOCKET session);
noPollConn * nopoll_listener_new (noPollCtx * ctx, const char * host, const char * port);
noPollConn * nopoll_listener_new6 (noPollCtx * ctx, const char * host, const char * port);
noPollConn * nopoll_listener_new_opts (noPollCtx * ctx, noPollConnOpts * opts, const char * host, const char * port);
noPollConn * nopoll_listener_new_opts6 (noPollCtx * ctx, noPollConnOpts * opts, const char * host, const char * port);
NOPOLL_SOCKET nopoll_listener_sock_listen (noPollCtx * ctx, const char * host, const char * port);
const unsigned char * nopoll_msg_get_payload (noPollMsg * msg);
long int nopoll_msg_get_payload_size (noPollMsg * msg);
nopoll_bool nopoll_msg_is_final (noPollMsg * msg);
nopoll_bool nopoll_msg_is_fragment (noPollMsg * msg);
noPollMsg * nopoll_msg_join (noPollMsg * msg, noPollMsg * msg2);
noPollMsg * nopoll_msg_new (void);
noPollOpCode nopoll_msg_opcode (noPollMsg * msg);
nopoll_bool nopoll_msg_ref (noPollMsg * msg);
int nopoll_msg_ref_count (noPollMsg * msg);
void nopoll_msg_unref (noPollMsg * msg);
void nopoll_loop_stop (noPollCtx * ctx);
int nopoll_loop_wait (noPollCtx * ctx, long timeout);
noPollIoEngine * nopoll_io_get_engine (noPollCtx * ctx, noPollIoEngineType engine_type);
void nopoll_io_release_engine (noPollIoEngine * engine);
noPollPtr nopoll_mutex_create (void);
void nopoll_mutex_destroy (noPollPtr mutex);
void nopoll_mutex_lock (noPollPtr mutex);
void nopoll_mutex_unlock (noPollPtr mutex);
void nopoll_thread_handlers (noPollMutexCreate mutex_create, noPollMutexDestroy mutex_destroy, noPollMutexLock mutex_lock, noPollMutexUnlock mutex_unlock);
void nopoll_log_color_enable (noPollCtx * ctx, nopoll_bool value);
nopoll_bool nopoll_log_color_is_enabled (noPollCtx * ctx);
void nopoll_log_enable (noPollCtx * ctx, nopoll_bool value);
nopoll_bool nopoll_log_is_enabled (noPollCtx * ctx);
void nopoll_log_set_handler (noPollCtx * ctx, noPollLogHandler handler, noPollPtr user_data);
void __nopoll_log (noPollCtx * ctx, const char * function_name, const char * file, int line, noPollDebugLevel level, const char * message, ...);
nopoll_bool nopoll_base64_decode (const char * content, int length, char * output, int * output_size);
nopoll_bool nopoll_base64_encode (const char * content, int length, char * output, int * output_size);
noPollPtr nopoll_calloc (size_t count, size_t size);
void nopoll_cleanup_library (void);
nopoll_bool nopoll_cmp (const char * string1, const char * string2);
void nopoll_free (noPollPtr ref);
int nopoll_get_16bit (const char * buffer);
int nopoll_get_32bit (const char * buffer);
int nopoll_get_8bit (const char * buffer);
int nopoll_get_bit (char byte, int position);
char * nopoll_int2bin (int a, char * buffer, int buf_size);
void nopoll_int2bin_print (noPollCtx * ctx, int value);
nopoll_bool nopoll_ncmp (const char * string1, const char * string2, int bytes);
nopoll_bool nopoll_nonce (char * buffer, int nonce_size);
noPollPtr nopoll_realloc (noPollPtr ref, size_t size);
void nopoll_set_16bit (int value, char * buffer);
void nopoll_set_32bit (int value, char * buffer);
void nopoll_set_bit (char * buffer, int position);
void nopoll_show_byte (noPollCtx * ctx, char byte, const char * label);
void nopoll_sleep (long microseconds);
nopoll_bool nopoll_socket_is_valid (NOPOLL_SOCKET socket);
char * nopoll_strdup (const char * buffer);
char * nopoll_strdup_printf (const char * chunk, ...);
char * nopoll_strdup_printfv (const char * chunk, va_list args);
int nopoll_timeval_substract (struct timeval * a, struct timeval * b, struct timeval * result);
void nopoll_trim (char * chunk, int * trimmed);
nopoll_bool nopoll_conn_is_tls_on (noPollConn * conn);
nopoll_bool nopoll_conn_opts_set_ssl_certs (noPollConnOpts * opts, const char * certificate, const char * private_key, const char * chain_certificate, const char * ca_certificate);
void nopoll_conn_opts_set_ssl_protocol (noPollConnOpts * opts, noPollSslProtocol ssl_protocol);
void nopoll_conn_opts_ssl_peer_verify (noPollConnOpts * opts, nopoll_bool verify);
noPollConn * nopoll_conn_tls_new (noPollCtx * ctx, noPollConnOpts * options, const char * host_ip, const char * host_port, const char * host_name, const char * get_url, const char * protocols, const char * origin);
noPollConn * nopoll_conn_tls_new6 (noPollCtx * ctx, noPollConnOpts * options, const char * host_ip, const char * host_port, const char * host_name, const char * get_url, const char * protocols, const char * origin);
noPollConn * nopoll_conn_tls_new_with_socket (noPollCtx * ctx, noPollConnOpts * options, int socket, const char * host_ip, const char * host_port, const char * host_name, const char * get_url, const char * protocols, const char * origin);
nopoll_bool nopoll_ctx_find_certificate (noPollCtx * ctx, const char * serverName, const char ** certificateFile, const char ** privateKey, const char ** optionalChainFile);
nopoll_bool nopoll_ctx_set_certificate (noPollCtx * ctx, const char * serverName, const char * certificateFile, const char * privateKey, const char * optionalChainFile);
void nopoll_ctx_set_post_ssl_check (noPollCtx * ctx, noPollSslPostCheck post_ssl_check, noPollPtr user_data);
void nopoll_ctx_set_ssl_context_creator (noPollCtx * ctx, noPollSslContextCreator context_creator, noPollPtr user_data);
nopoll_bool nopoll_listener_set_certificate (noPollConn * listener, const char * certificate, const char * private_key, const char * chain_file);
noPollConn * nopoll_listener_tls_new (noPollCtx * ctx, const char * host, const char * port);
noPollConn * nopoll_listener_tls_new6 (noPollCtx * ctx, const char * host, const char * port);
noPollConn * nopoll_listener_tls_new_opts (noPollCtx * ctx, noPollConnOpts * opts, const char * host, const char * port);
noPollConn * nopoll_listener_tls_new_opts6 (noPollCtx * ctx, noPollConnOpts * opts, const char * host, const char * port);

END_C_DECLS

/* ---- Function-like macros and the system headers nopoll.h pulls in ---- */
void use_return_if_fail (noPollCtx * ctx, int value);
void use_return_if_fail (noPollCtx * ctx, int value)
{
	nopoll_return_if_fail (ctx, value > 0);
	nopoll_log (ctx, NOPOLL_LEVEL_DEBUG, "no arguments");
	nopoll_log (ctx, NOPOLL_LEVEL_WARNING, "value=%d in %s at %s:%d", value, __function_name__, __file__, __line__);
	nopoll_log (ctx, NOPOLL_LEVEL_CRITICAL, "%s %s %d", __NOPOLL_PRETTY_FUNCTION__, __NOPOLL_FILE__, __NOPOLL_LINE__);
}

int use_return_val_if_fail (noPollCtx * ctx, int value);
int use_return_val_if_fail (noPollCtx * ctx, int value)
{
	nopoll_return_val_if_fail (ctx, value > 0, -1);
	return value;
}

int use_macros (void);
int use_macros (void)
{
	NOPOLL_SOCKET      s = NOPOLL_INVALID_SOCKET;
	nopoll_bool        b = nopoll_true;
	noPollPtr          p = INT_TO_PTR (7);
	int              * ints = nopoll_new (int, 4);
	noPollOpCode       op = NOPOLL_TEXT_FRAME;
	noPollRole         role = NOPOLL_ROLE_CLIENT;
	noPollDebugLevel   level = NOPOLL_LEVEL_DEBUG;
	noPollIoEngineType engine = NOPOLL_IO_ENGINE_DEFAULT;
	noPollSslProtocol  proto = NOPOLL_METHOD_TLS_FLEXIBLE;
	noPollTransport    transport = NOPOLL_TRANSPORT_IPV6;
	long               frame = NOPOLL_MAX_FRAME_SIZE_DEFAULT;
	char               buffer[NOPOLL_HANDSHAKE_BUFFER_SIZE];
	struct timeval     tv;
	struct addrinfo    hints;
	struct sockaddr_in sin;
	struct stat        st;
	struct rlimit      rl;
	fd_set             fds;
	va_list          * ap = NULL;
	char             * dup;

	/* <sys/socket.h>, <netdb.h>, <netinet/in.h>, <arpa/inet.h>, <sys/select.h> */
	memset (&hints, 0, sizeof (hints));
	hints.ai_socktype = SOCK_STREAM;
	sin.sin_port = htons (80);
	if (inet_pton (AF_INET, "127.0.0.1", &sin.sin_addr) != 1)
		return -1;
	if (send (s, "x", 1, 0) == NOPOLL_SOCKET_ERROR && (errno == NOPOLL_EWOULDBLOCK || errno == NOPOLL_EAGAIN || errno == NOPOLL_EINTR))
		b = nopoll_false;
	if (errno == NOPOLL_EINPROGRESS || errno == NOPOLL_ENOTCONN || nopoll_is_disconnected)
		b = nopoll_false;
	FD_ZERO (&fds);
	/* <sys/time.h>, <time.h>, <sys/resource.h>, <sys/stat.h>, <fcntl.h>, <unistd.h>, <ctype.h> */
	gettimeofday (&tv, NULL);
	getrlimit (RLIMIT_NOFILE, &rl);
	stat (".", &st);
	fcntl (0, F_GETFL);
	sprintf (buffer, "%ld %d %d %d %d %d %d %d %ld", (long) time (NULL), isspace (' '), (int) getpid (),
		 (int) op, (int) role, (int) level, (int) engine, (int) proto + (int) transport, frame);
	/* the C shim functions */
	dup = nopoll_strdup_printf ("%d", PTR_TO_INT (p));
	if (ap != NULL)
		dup = nopoll_strdup_printfv ("%d", *ap);
	__nopoll_log (NULL, __function_name__, __file__, __line__, NOPOLL_LEVEL_DEBUG, "%s", buffer);
	nopoll_free (dup);
	nopoll_free (ints);
	nopoll_close_socket (s);
	return b + FD_SETSIZE;
}
