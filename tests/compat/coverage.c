/*
 * coverage.c: API coverage of the nopoll contract (docs/NOPOLL-API.md).
 *
 * Calls every function of the contract at least once (tests/compat.rs
 * checks that each name appears as a call here), with NULL arguments and
 * boundary values (negative sizes, sizes near LONG_MAX, empty strings),
 * and asserts the documented results. Servers and clients talk over
 * 127.0.0.1 (and ::1 when available) on OS-chosen ports.
 *
 * Built as C89 (-ansi -Wall -Werror -Wstrict-prototypes), run by cargo
 * test against libnopoll.a and libnopoll.so, and by tests/compat/sanitize.sh
 * under AddressSanitizer and valgrind. Last line: "N passed, M failed".
 */
#include "compat.h"

/* ================================================================ logging */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];
static int  log_lines = 0;
static int  log_last_level = -1;

static void log_handler (noPollCtx * ctx, noPollDebugLevel level, const char * line, noPollPtr user_data)
{
	size_t used, add;
	(void) ctx;
	(void) user_data;
	pthread_mutex_lock (&log_lock);
	log_lines++;
	log_last_level = (int) level;
	used = strlen (log_text);
	add = strlen (line);
	if (used + add + 2 >= sizeof (log_text)) {
		/* keep the newest lines */
		log_text[0] = '\0';
		used = 0;
	}
	if (add + 2 < sizeof (log_text)) {
		memcpy (log_text + used, line, add);
		log_text[used + add] = '\n';
		log_text[used + add + 1] = '\0';
	}
	pthread_mutex_unlock (&log_lock);
}

static void log_reset (void)
{
	pthread_mutex_lock (&log_lock);
	log_text[0] = '\0';
	log_lines = 0;
	log_last_level = -1;
	pthread_mutex_unlock (&log_lock);
}

/* Whether a log line containing `needle` arrived since log_reset. */
static int log_has (const char * needle)
{
	int found;
	pthread_mutex_lock (&log_lock);
	found = strstr (log_text, needle) != NULL;
	pthread_mutex_unlock (&log_lock);
	return found;
}

/* ================================================================ utilities */

static char * printfv_wrapper (const char * format, ...)
{
	va_list args;
	char * result;
	va_start (args, format);
	result = nopoll_strdup_printfv (format, args);
	va_end (args);
	return result;
}

static void memory_and_strings (void)
{
	char * p;
	char * s;
	char chunk[64];
	int trimmed;
	noPollPtr q;

	section ("memory and strings");
	p = (char *) nopoll_calloc (4, 8);
	CHECK (p != NULL);
	CHECK (p != NULL && p[0] == 0 && p[31] == 0);
	p = (char *) nopoll_realloc (p, 128);
	CHECK (p != NULL);
	if (p != NULL)
		p[127] = 'x';
	nopoll_free (p);
	nopoll_free (NULL);
	/* calloc overflow is refused */
	CHECK (nopoll_calloc ((size_t) -1, 16) == NULL);
	q = nopoll_realloc (NULL, 16);
	CHECK (q != NULL);
	nopoll_free (q);
	p = nopoll_new (char, 3);
	CHECK (p != NULL);
	nopoll_free (p);

	CHECK (nopoll_strdup (NULL) == NULL);
	s = nopoll_strdup ("");
	CHECK_STR (s, "");
	nopoll_free (s);
	s = nopoll_strdup ("copy me");
	CHECK_STR (s, "copy me");
	nopoll_free (s);

	s = nopoll_strdup_printf ("%d-%s-%c-%ld", 42, "x", 'c', LONG_MAX);
	CHECK (s != NULL && strncmp (s, "42-x-c-", 7) == 0);
	CHECK (s != NULL && atol (s + 7) == LONG_MAX);
	nopoll_free (s);
	s = nopoll_strdup_printf ("%s", "");
	CHECK_STR (s, "");
	nopoll_free (s);
	CHECK (nopoll_strdup_printf (NULL) == NULL);
	s = printfv_wrapper ("%s=%d", "v", -7);
	CHECK_STR (s, "v=-7");
	nopoll_free (s);
	CHECK (printfv_wrapper (NULL) == NULL);

	CHECK (nopoll_cmp (NULL, NULL));
	CHECK (! nopoll_cmp ("a", NULL));
	CHECK (! nopoll_cmp (NULL, "a"));
	CHECK (nopoll_cmp ("", ""));
	CHECK (nopoll_cmp ("abc", "abc"));
	CHECK (! nopoll_cmp ("abc", "abd"));
	CHECK (! nopoll_cmp ("abc", "ab"));

	CHECK (nopoll_ncmp ("abc", "abd", 2));
	CHECK (! nopoll_ncmp ("abc", "abd", 3));
	CHECK (! nopoll_ncmp ("ab", "abc", 3));
	CHECK (! nopoll_ncmp ("abc", "abc", 0));
	CHECK (! nopoll_ncmp ("abc", "abc", -1));
	CHECK (! nopoll_ncmp ("abc", "abc", INT_MAX));
	CHECK (! nopoll_ncmp ("abc", NULL, 1));
	CHECK (nopoll_ncmp (NULL, NULL, 1));
	CHECK (nopoll_ncmp ("abc", "abc", 3));

	strcpy (chunk, " \t hello world \r\n ");
	trimmed = -1;
	nopoll_trim (chunk, &trimmed);
	CHECK_STR (chunk, "hello world");
	CHECK_INT (trimmed, 7);
	strcpy (chunk, "   ");
	nopoll_trim (chunk, &trimmed);
	CHECK_STR (chunk, "");
	CHECK_INT (trimmed, 3);
	strcpy (chunk, "");
	nopoll_trim (chunk, &trimmed);
	CHECK_STR (chunk, "");
	CHECK_INT (trimmed, 0);
	strcpy (chunk, "x");
	nopoll_trim (chunk, NULL);
	CHECK_STR (chunk, "x");
	trimmed = 99;
	nopoll_trim (NULL, &trimmed);
	CHECK_INT (trimmed, 99);
}

static void base64 (void)
{
	char out[64];
	char guarded[80];
	int size;

	section ("base64");
	size = sizeof (out);
	CHECK (nopoll_base64_encode ("hello", 5, out, &size));
	CHECK_STR (out, "aGVsbG8=");
	CHECK_INT (size, 8);
	/* binary input, NULs included */
	size = sizeof (out);
	CHECK (nopoll_base64_encode ("\0\1\2\377", 4, out, &size));
	CHECK_STR (out, "AAEC/w==");
	/* too small: false, *output_size tells the size needed */
	size = 8;
	CHECK (! nopoll_base64_encode ("hello", 5, out, &size));
	CHECK (size >= 9);
	size = sizeof (out);
	CHECK (! nopoll_base64_encode (NULL, 5, out, &size));
	CHECK (! nopoll_base64_encode ("hello", 5, NULL, &size));
	CHECK (! nopoll_base64_encode ("hello", 5, out, NULL));
	CHECK (! nopoll_base64_encode ("hello", -1, out, &size));
	size = -5;
	CHECK (! nopoll_base64_encode ("hello", 5, out, &size));

	size = sizeof (out);
	CHECK (nopoll_base64_decode ("aGVsbG8=", 8, out, &size));
	CHECK_INT (size, 5);
	CHECK_STR (out, "hello");
	size = sizeof (out);
	CHECK (nopoll_base64_decode (RAW_KEY, (int) strlen (RAW_KEY), out, &size));
	CHECK_INT (size, 16);
	CHECK (memcmp (out, "the sample nonce", 16) == 0);
	/* invalid input: false, nothing written before the output */
	memset (guarded, 'G', sizeof (guarded));
	size = 40;
	CHECK (! nopoll_base64_decode ("@@@@", 4, guarded + 16, &size));
	CHECK (guarded[15] == 'G');
	size = 5;
	CHECK (! nopoll_base64_decode ("aGVsbG8=", 8, out, &size));
	size = sizeof (out);
	CHECK (! nopoll_base64_decode (NULL, 8, out, &size));
	CHECK (! nopoll_base64_decode ("aGVsbG8=", 8, NULL, &size));
	CHECK (! nopoll_base64_decode ("aGVsbG8=", 8, out, NULL));
	CHECK (! nopoll_base64_decode ("aGVsbG8=", -8, out, &size));
	size = INT_MIN;
	CHECK (! nopoll_base64_decode ("aGVsbG8=", 8, out, &size));
}

static void bits_and_time (void)
{
	char buf[8];
	char bin[40];
	char * r;
	struct timeval a, b, res;
	double t0;

	section ("bits and time");
	CHECK_INT (nopoll_get_8bit ("\377"), 255);
	CHECK_INT (nopoll_get_16bit ("\377\376"), 0xfffe);
	CHECK_INT (nopoll_get_16bit ("\001\002"), 0x0102);
	CHECK (nopoll_get_32bit ("\200\000\000\001") == (int) 0x80000001UL);
	CHECK_INT (nopoll_get_32bit ("\001\002\003\004"), 0x01020304);
	memset (buf, 0, sizeof (buf));
	nopoll_set_16bit (0x1234, buf);
	CHECK ((unsigned char) buf[0] == 0x12 && (unsigned char) buf[1] == 0x34);
	nopoll_set_32bit ((int) 0xdeadbeefUL, buf);
	CHECK ((unsigned char) buf[0] == 0xde && (unsigned char) buf[3] == 0xef);
	CHECK (nopoll_get_32bit (buf) == (int) 0xdeadbeefUL);
	CHECK_INT (nopoll_get_bit (5, 0), 1);
	CHECK_INT (nopoll_get_bit (5, 1), 0);
	CHECK_INT (nopoll_get_bit (5, 2), 1);
	CHECK_INT (nopoll_get_bit ((char) 0x80, 7), 1);
	CHECK_INT (nopoll_get_bit ((char) 0xff, 8), 0);
	CHECK_INT (nopoll_get_bit ((char) 0xff, -1), 0);
	buf[0] = 0;
	nopoll_set_bit (buf, 3);
	CHECK_INT (buf[0], 8);
	nopoll_set_bit (buf, 7);
	CHECK ((unsigned char) buf[0] == 0x88);
	nopoll_set_bit (buf, 8);
	nopoll_set_bit (buf, -1);
	CHECK ((unsigned char) buf[0] == 0x88);

	memset (bin, 'Z', sizeof (bin));
	r = nopoll_int2bin (5, bin, 33);
	CHECK (r == bin);
	CHECK_INT (strlen (bin), 32);
	CHECK (strcmp (bin + 29, "101") == 0 && bin[0] == '0');
	r = nopoll_int2bin (-1, bin, 33);
	CHECK (strspn (bin, "1") == 32);
	/* bounded by buf_size */
	memset (bin, 'Z', sizeof (bin));
	nopoll_int2bin (5, bin, 4);
	CHECK_INT (strlen (bin), 3);
	CHECK (bin[5] == 'Z');
	memset (bin, 'Z', sizeof (bin));
	CHECK (nopoll_int2bin (5, bin, 0) == bin);
	CHECK (nopoll_int2bin (5, bin, -1) == bin);
	CHECK (bin[0] == 'Z');
	CHECK (nopoll_int2bin (5, NULL, 10) == NULL);

	a.tv_sec = 5;
	a.tv_usec = 100;
	b.tv_sec = 3;
	b.tv_usec = 200;
	CHECK_INT (nopoll_timeval_substract (&a, &b, &res), 0);
	CHECK_INT (res.tv_sec, 1);
	CHECK_INT (res.tv_usec, 999900);
	/* negative: normalised like timersub (0 <= tv_usec < 1000000) */
	a.tv_sec = 1;
	a.tv_usec = 0;
	b.tv_sec = 2;
	b.tv_usec = 500000;
	CHECK_INT (nopoll_timeval_substract (&a, &b, &res), 1);
	CHECK_INT (res.tv_sec, -2);
	CHECK_INT (res.tv_usec, 500000);
	a.tv_sec = 7;
	a.tv_usec = 7;
	CHECK_INT (nopoll_timeval_substract (&a, &a, &res), 0);
	CHECK (res.tv_sec == 0 && res.tv_usec == 0);
	CHECK_INT (nopoll_timeval_substract (NULL, &b, &res), 0);
	CHECK_INT (nopoll_timeval_substract (&a, NULL, &res), 0);
	CHECK_INT (nopoll_timeval_substract (&a, &b, NULL), 0);

	t0 = now_ms ();
	nopoll_sleep (20000);
	CHECK (now_ms () - t0 >= 19.0);
	t0 = now_ms ();
	nopoll_sleep (0);
	nopoll_sleep (-1);
	nopoll_sleep (LONG_MIN);
	CHECK (now_ms () - t0 < 1000.0);
}

static void nonce_mask_key (void)
{
	char n1[33];
	char n2[33];
	char payload[32];
	char copy[32];
	char mask[4];
	char * key;
	int i, same;

	section ("nonce, masking, accept key");
	memset (n1, 0, sizeof (n1));
	memset (n2, 0, sizeof (n2));
	CHECK (nopoll_nonce (n1, 32));
	CHECK (nopoll_nonce (n2, 32));
	CHECK (memcmp (n1, n2, 32) != 0);
	CHECK (n1[32] == 0);
	CHECK (! nopoll_nonce (NULL, 4));
	CHECK (! nopoll_nonce (n1, 0));
	CHECK (! nopoll_nonce (n1, -1));
	CHECK (! nopoll_nonce (n1, INT_MIN));

	strcpy (payload, "mask this payload, please");
	memcpy (copy, payload, sizeof (payload));
	mask[0] = 0x37;
	mask[1] = (char) 0xfa;
	mask[2] = 0x21;
	mask[3] = 0x3d;
	nopoll_conn_mask_content (NULL, payload, 25, mask, 0);
	same = 1;
	for (i = 0; i < 25; i++)
		if (payload[i] != (char) (copy[i] ^ mask[i % 4]))
			same = 0;
	CHECK (same);
	nopoll_conn_mask_content (NULL, payload, 25, mask, 0);
	CHECK (memcmp (payload, copy, 25) == 0);
	/* desp: start at mask position desp % 4 */
	nopoll_conn_mask_content (NULL, payload, 25, mask, 3);
	same = 1;
	for (i = 0; i < 25; i++)
		if (payload[i] != (char) (copy[i] ^ mask[(i + 3) % 4]))
			same = 0;
	CHECK (same);
	nopoll_conn_mask_content (NULL, payload, 25, mask, 7);
	CHECK (memcmp (payload, copy, 25) == 0);
	/* bad arguments change nothing */
	nopoll_conn_mask_content (NULL, payload, -1, mask, 0);
	nopoll_conn_mask_content (NULL, payload, 0, mask, 0);
	nopoll_conn_mask_content (NULL, payload, 25, NULL, 0);
	nopoll_conn_mask_content (NULL, payload, 25, mask, -1);
	nopoll_conn_mask_content (NULL, NULL, 25, mask, 0);
	CHECK (memcmp (payload, copy, 25) == 0);

	key = nopoll_conn_produce_accept_key (NULL, RAW_KEY);
	CHECK_STR (key, RAW_ACCEPT);
	nopoll_free (key);
	CHECK (nopoll_conn_produce_accept_key (NULL, NULL) == NULL);
	key = nopoll_conn_produce_accept_key (NULL, "");
	CHECK (key != NULL && strlen (key) == 28);
	nopoll_free (key);
}

static int mutex_calls[4];

static noPollPtr mutex_create_cb (void)
{
	pthread_mutex_t * m = (pthread_mutex_t *) malloc (sizeof (pthread_mutex_t));
	if (m != NULL)
		pthread_mutex_init (m, NULL);
	shared_add (&mutex_calls[0], 1);
	return m;
}

static void mutex_destroy_cb (noPollPtr p)
{
	pthread_mutex_destroy ((pthread_mutex_t *) p);
	free (p);
	shared_add (&mutex_calls[1], 1);
}

static void mutex_lock_cb (noPollPtr p)
{
	pthread_mutex_lock ((pthread_mutex_t *) p);
	shared_add (&mutex_calls[2], 1);
}

static void mutex_unlock_cb (noPollPtr p)
{
	pthread_mutex_unlock ((pthread_mutex_t *) p);
	shared_add (&mutex_calls[3], 1);
}

static void mutexes (void)
{
	noPollPtr m;

	section ("mutex hooks");
	nopoll_thread_handlers (NULL, NULL, NULL, NULL);
	CHECK (nopoll_mutex_create () == NULL);
	nopoll_mutex_lock (NULL);
	nopoll_mutex_unlock (NULL);
	nopoll_mutex_destroy (NULL);

	nopoll_thread_handlers (mutex_create_cb, mutex_destroy_cb, mutex_lock_cb, mutex_unlock_cb);
	m = nopoll_mutex_create ();
	CHECK (m != NULL);
	nopoll_mutex_lock (m);
	nopoll_mutex_unlock (m);
	nopoll_mutex_lock (NULL);
	nopoll_mutex_destroy (m);
	CHECK (shared_get (&mutex_calls[0]) >= 1);
	CHECK (shared_get (&mutex_calls[1]) >= 1);
	CHECK (shared_get (&mutex_calls[2]) >= 1);
	CHECK (shared_get (&mutex_calls[3]) >= 1);
	nopoll_thread_handlers (NULL, NULL, NULL, NULL);
	CHECK (nopoll_mutex_create () == NULL);

	CHECK (nopoll_socket_is_valid (0));
	CHECK (nopoll_socket_is_valid (3));
	CHECK (! nopoll_socket_is_valid (-1));
	CHECK (! nopoll_socket_is_valid (NOPOLL_INVALID_SOCKET));
	nopoll_cleanup_library ();
	/* usable after a cleanup */
	CHECK (nopoll_nonce ((char *) mutex_calls, 4));
	memset (mutex_calls, 0, sizeof (mutex_calls));
}

/* ================================================================ contexts */

static int foreach_count (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) conn;
	(*(int *) user_data)++;
	return nopoll_false;
}

static int foreach_find_role (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	return nopoll_conn_role (conn) == *(noPollRole *) user_data;
}

static noPollPtr creator_cb (noPollCtx * ctx, noPollConn * conn, noPollConnOpts * opts, nopoll_bool is_client, noPollPtr user_data)
{
	(void) ctx; (void) conn; (void) opts; (void) is_client; (void) user_data;
	return NULL;
}

static nopoll_bool post_check_cb (noPollCtx * ctx, noPollConn * conn, noPollPtr ssl_ctx, noPollPtr ssl, noPollPtr user_data)
{
	(void) ctx; (void) conn; (void) ssl_ctx; (void) ssl; (void) user_data;
	return nopoll_false;
}

static void contexts (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollCtx * other = nopoll_ctx_new ();
	noPollIoEngine * engine;
	int n = 0;

	section ("contexts");
	CHECK (ctx != NULL && other != NULL && ctx != other);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);
	CHECK (nopoll_ctx_ref (ctx));
	CHECK_INT (nopoll_ctx_ref_count (ctx), 2);
	nopoll_ctx_unref (ctx);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
	CHECK (nopoll_ctx_foreach_conn (ctx, foreach_count, &n) == NULL);
	CHECK_INT (n, 0);
	CHECK (nopoll_ctx_foreach_conn (ctx, NULL, &n) == NULL);

	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), NOPOLL_MAX_FRAME_SIZE_DEFAULT);
	nopoll_ctx_set_max_frame_size (ctx, 0);
	nopoll_ctx_set_max_frame_size (ctx, -1);
	nopoll_ctx_set_max_frame_size (ctx, LONG_MAX);
	nopoll_ctx_set_max_frame_size (ctx, LONG_MIN);
	nopoll_ctx_set_max_frame_size (ctx, (long) NOPOLL_MAX_FRAME_SIZE_LIMIT + 1);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), NOPOLL_MAX_FRAME_SIZE_DEFAULT);
	nopoll_ctx_set_max_frame_size (ctx, NOPOLL_MAX_FRAME_SIZE_LIMIT);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), NOPOLL_MAX_FRAME_SIZE_LIMIT);
	nopoll_ctx_set_max_frame_size (ctx, 1);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), 1);
	nopoll_ctx_set_max_frame_size (ctx, 4096);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), 4096);

	nopoll_ctx_set_protocol_version (ctx, 13);
	nopoll_ctx_set_protocol_version (ctx, -1);
	nopoll_ctx_set_protocol_version (ctx, INT_MAX);

	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 20000000L);
	nopoll_conn_connect_timeout (ctx, 1500000L);
	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 1500000L);
	nopoll_conn_connect_timeout (ctx, LONG_MAX);
	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), LONG_MAX);
	nopoll_conn_connect_timeout (ctx, 0);
	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 20000000L);

	/* logging */
	CHECK (! nopoll_log_is_enabled (ctx));
	nopoll_log_enable (ctx, nopoll_true);
	CHECK (nopoll_log_is_enabled (ctx));
	nopoll_log_enable (ctx, nopoll_false);
	CHECK (! nopoll_log_is_enabled (ctx));
	CHECK (! nopoll_log_color_is_enabled (ctx));
	nopoll_log_color_enable (ctx, nopoll_true);
	CHECK (nopoll_log_color_is_enabled (ctx));
	nopoll_log_color_enable (ctx, nopoll_false);
	CHECK (! nopoll_log_color_is_enabled (ctx));

	log_reset ();
	nopoll_log_set_handler (ctx, log_handler, NULL);
	__nopoll_log (ctx, "contexts", __FILE__, __LINE__, NOPOLL_LEVEL_WARNING, "user line %d %s", 77, "ok");
	CHECK (log_has ("user line 77 ok"));
	CHECK_INT (log_last_level, NOPOLL_LEVEL_WARNING);
	nopoll_int2bin_print (ctx, 5);
	CHECK (log_has ("00000000000000000000000000000101"));
	nopoll_show_byte (ctx, (char) 0xa5, "label-x");
	CHECK (log_has ("label-x"));
	CHECK (log_has ("10100101"));
	/* NULL arguments: nothing happens (and nothing crashes) */
	__nopoll_log (ctx, NULL, NULL, 0, NOPOLL_LEVEL_DEBUG, NULL);
	__nopoll_log (NULL, "f", "file", 1, NOPOLL_LEVEL_CRITICAL, "no context %d", 1);
	nopoll_int2bin_print (NULL, 5);
	nopoll_show_byte (NULL, 1, NULL);
	nopoll_show_byte (ctx, 1, NULL);
	nopoll_log_set_handler (ctx, NULL, NULL);
	log_reset ();
	__nopoll_log (ctx, "contexts", __FILE__, __LINE__, NOPOLL_LEVEL_CRITICAL, "after removal");
	CHECK (! log_has ("after removal"));

	/* I/O engines: every type gives one; unknown types the default */
	engine = nopoll_io_get_engine (ctx, NOPOLL_IO_ENGINE_DEFAULT);
	CHECK (engine != NULL);
	nopoll_io_release_engine (engine);
	engine = nopoll_io_get_engine (ctx, NOPOLL_IO_ENGINE_SELECT);
	CHECK (engine != NULL);
	nopoll_io_release_engine (engine);
	engine = nopoll_io_get_engine (ctx, NOPOLL_IO_ENGINE_POLL);
	CHECK (engine != NULL);
	nopoll_io_release_engine (engine);
	engine = nopoll_io_get_engine (ctx, NOPOLL_IO_ENGINE_EPOLL);
	CHECK (engine != NULL);
	nopoll_io_release_engine (engine);
	/* released twice: harmless */
	nopoll_io_release_engine (engine);
	engine = nopoll_io_get_engine (ctx, (noPollIoEngineType) 42);
	CHECK (engine != NULL);
	nopoll_io_release_engine (engine);
	CHECK (nopoll_io_get_engine (NULL, NOPOLL_IO_ENGINE_DEFAULT) == NULL);
	nopoll_io_release_engine (NULL);

	/* loop: bad arguments and timeouts */
	CHECK_INT (nopoll_loop_wait (NULL, 0), -2);
	CHECK_INT (nopoll_loop_wait (ctx, -1), -2);
	CHECK_INT (nopoll_loop_wait (ctx, LONG_MIN), -2);
	CHECK_INT (nopoll_loop_wait (ctx, 1000), -3);
	nopoll_loop_stop (NULL);

	/* TLS hooks of the context: installed and removed (tests/c/tls.c runs them) */
	nopoll_ctx_set_ssl_context_creator (ctx, creator_cb, NULL);
	nopoll_ctx_set_ssl_context_creator (ctx, NULL, NULL);
	nopoll_ctx_set_post_ssl_check (ctx, post_check_cb, NULL);
	nopoll_ctx_set_post_ssl_check (NULL, NULL, NULL);
	nopoll_ctx_set_ssl_context_creator (NULL, creator_cb, NULL);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);

	/* declared by upstream, defined nowhere: the prototype exists (this
	 * compiles) but calling it would not link; sizeof does not evaluate. */
	CHECK (sizeof (nopoll_ctx_free (ctx), 1) == sizeof (int));

	nopoll_ctx_unref (other);
	CHECK_INT (nopoll_ctx_ref_count (other), -1);
	nopoll_ctx_unref (ctx);
	CHECK_INT (nopoll_ctx_ref_count (ctx), -1);
	/* stale handles are refused */
	CHECK (! nopoll_ctx_ref (ctx));
	CHECK_INT (nopoll_ctx_conns (ctx), -1);
	nopoll_ctx_unref (ctx);
}

static void certificate_store (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	const char * cert = "sentinel";
	const char * key = "sentinel";
	const char * chain = "sentinel";
	const char * kept = "sentinel";
	char name[32];
	int i;

	section ("certificate store");
	/* empty store */
	CHECK (! nopoll_ctx_find_certificate (ctx, NULL, &cert, &key, &chain));
	CHECK (! nopoll_ctx_find_certificate (ctx, "a.example", &cert, &key, &chain));
	CHECK_STR (cert, "sentinel");
	/* required arguments */
	CHECK (! nopoll_ctx_set_certificate (NULL, NULL, "c", "k", NULL));
	CHECK (! nopoll_ctx_set_certificate (ctx, NULL, NULL, "k", NULL));
	CHECK (! nopoll_ctx_set_certificate (ctx, NULL, "c", NULL, NULL));
	CHECK (! nopoll_ctx_find_certificate (ctx, NULL, &cert, &key, &chain));

	/* files are not opened: any path is stored */
	CHECK (nopoll_ctx_set_certificate (ctx, "a.example", "/nonexistent/a.crt", "/nonexistent/a.key", NULL));
	/* NULL serverName and nothing stored without one: the first entry */
	CHECK (nopoll_ctx_find_certificate (ctx, NULL, &cert, &key, &chain));
	CHECK_STR (cert, "/nonexistent/a.crt");
	CHECK_STR (key, "/nonexistent/a.key");
	CHECK (chain == NULL);
	CHECK (nopoll_ctx_set_certificate (ctx, NULL, "d.crt", "d.key", "d.chain"));
	CHECK (nopoll_ctx_set_certificate (ctx, "", "empty.crt", "empty.key", NULL));
	/* NULL serverName: the entry stored without one */
	CHECK (nopoll_ctx_find_certificate (ctx, NULL, &cert, &key, &chain));
	CHECK_STR (cert, "d.crt");
	CHECK_STR (key, "d.key");
	CHECK_STR (chain, "d.chain");
	CHECK (nopoll_ctx_find_certificate (ctx, "a.example", &cert, NULL, NULL));
	CHECK_STR (cert, "/nonexistent/a.crt");
	CHECK (nopoll_ctx_find_certificate (ctx, "", &cert, NULL, &chain));
	CHECK_STR (cert, "empty.crt");
	CHECK (chain == NULL);
	cert = "sentinel";
	CHECK (! nopoll_ctx_find_certificate (ctx, "b.example", &cert, &key, &chain));
	CHECK_STR (cert, "sentinel");
	/* out-parameters are optional */
	CHECK (nopoll_ctx_find_certificate (ctx, "a.example", NULL, NULL, NULL));
	/* an entry for the same serverName is kept (as upstream) */
	CHECK (nopoll_ctx_set_certificate (ctx, "a.example", "other.crt", "other.key", NULL));
	CHECK (nopoll_ctx_find_certificate (ctx, "a.example", &kept, NULL, NULL));
	CHECK_STR (kept, "/nonexistent/a.crt");
	/* returned strings stay valid while the store grows */
	for (i = 0; i < 40; i++) {
		sprintf (name, "host%d.example", i);
		CHECK (nopoll_ctx_set_certificate (ctx, name, name, "k", NULL));
	}
	CHECK_STR (kept, "/nonexistent/a.crt");
	CHECK (nopoll_ctx_find_certificate (ctx, "host39.example", &cert, &key, NULL));
	CHECK_STR (cert, "host39.example");
	CHECK_STR (key, "k");
	CHECK (! nopoll_ctx_find_certificate (NULL, NULL, &cert, &key, &chain));
	nopoll_ctx_unref (ctx);
	CHECK (! nopoll_ctx_find_certificate (ctx, "a.example", &cert, &key, &chain));
	CHECK (! nopoll_ctx_set_certificate (ctx, NULL, "c", "k", NULL));
}

/* ================================================================ server */

/* What the server (a context served by a loop thread) saw. */
typedef struct {
	int  accepted;
	int  opened;
	int  ready;
	int  msgs;
	int  own_msgs;
	int  closed;
	int  close_status;
	int  refuse_accept;
	int  accepted_at_ready;
	long max_frame;
	int  listener_matches;
	char origin[256];
	char cookie[256];
	char host[256];
	char url[256];
	char protocol[256];
	char real_ip[256];
	char close_reason[256];
} Server;

static Server srv;
static noPollConn * srv_expected_listener = NULL;

static nopoll_bool srv_on_accept (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	shared_add (&srv.accepted, 1);
	if (shared_get (&srv.refuse_accept))
		return nopoll_false;
	return nopoll_conn_role (conn) == NOPOLL_ROLE_LISTENER;
}

/* on_open: records the request; refuses one Origin; picks "chat" when
 * the client offers it. */
static nopoll_bool srv_on_open (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	const char * origin = nopoll_conn_get_origin (conn);
	const char * protocols = nopoll_conn_get_requested_protocol (conn);
	(void) ctx;
	(void) user_data;
	shared_add (&srv.opened, 1);
	shared_str_set (srv.origin, sizeof (srv.origin), origin);
	shared_str_set (srv.cookie, sizeof (srv.cookie), nopoll_conn_get_cookie (conn));
	shared_str_set (srv.host, sizeof (srv.host), nopoll_conn_get_host_header (conn));
	shared_str_set (srv.url, sizeof (srv.url), nopoll_conn_get_requested_url (conn));
	shared_str_set (srv.protocol, sizeof (srv.protocol), protocols);
	shared_str_set (srv.real_ip, sizeof (srv.real_ip), nopoll_conn_get_x_real_ip_header (conn));
	if (nopoll_cmp (origin, "http://evil.example"))
		return nopoll_false;
	if (protocols != NULL && strstr (protocols, "chat") != NULL)
		nopoll_conn_set_accepted_protocol (conn, "chat");
	return nopoll_true;
}

static void srv_on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	pthread_mutex_lock (&shared_lock);
	srv.close_status = nopoll_conn_get_close_status (conn);
	pthread_mutex_unlock (&shared_lock);
	shared_str_set (srv.close_reason, sizeof (srv.close_reason), nopoll_conn_get_close_reason (conn));
	shared_add (&srv.closed, 1);
}

/* Per-connection handler: answers "own:" + the text. */
static void srv_own_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	char reply[300];
	(void) ctx;
	(void) user_data;
	shared_add (&srv.own_msgs, 1);
	sprintf (reply, "own:%.200s", (const char *) nopoll_msg_get_payload (msg));
	nopoll_conn_send_text (conn, reply, -1);
}

static nopoll_bool srv_on_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	pthread_mutex_lock (&shared_lock);
	srv.accepted_at_ready = srv.accepted;
	srv.max_frame = nopoll_conn_get_max_frame_size (conn);
	srv.listener_matches = srv_expected_listener != NULL && nopoll_conn_get_listener (conn) == srv_expected_listener;
	pthread_mutex_unlock (&shared_lock);
	nopoll_conn_set_on_close (conn, srv_on_close, NULL);
	if (nopoll_cmp (nopoll_conn_get_requested_url (conn), "/own"))
		nopoll_conn_set_on_msg (conn, srv_own_msg, NULL);
	shared_add (&srv.ready, 1);
	return nopoll_true;
}

/* The context's handler: echoes with the same opcode; "close-me" makes
 * the server close with 4001 "server bye". */
static void srv_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * payload = (const char *) nopoll_msg_get_payload (msg);
	long size = nopoll_msg_get_payload_size (msg);
	(void) ctx;
	(void) user_data;
	shared_add (&srv.msgs, 1);
	if (size == 8 && memcmp (payload, "close-me", 8) == 0) {
		nopoll_conn_close_ext (conn, 4001, "server bye", 10);
		return;
	}
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, payload, size);
	else
		nopoll_conn_send_text (conn, size > 0 ? payload : "", size);
}

static void server_reset (void)
{
	pthread_mutex_lock (&shared_lock);
	memset (&srv, 0, sizeof (srv));
	pthread_mutex_unlock (&shared_lock);
}

static noPollCtx * server_ctx (void)
{
	noPollCtx * sctx = nopoll_ctx_new ();
	nopoll_ctx_set_on_accept (sctx, srv_on_accept, NULL);
	nopoll_ctx_set_on_open (sctx, srv_on_open, NULL);
	nopoll_ctx_set_on_ready (sctx, srv_on_ready, NULL);
	nopoll_ctx_set_on_msg (sctx, srv_on_msg, NULL);
	if (getenv ("COMPAT_LOG") != NULL)
		nopoll_log_enable (sctx, nopoll_true);
	return sctx;
}

/* Receives one message on a client connection and checks it. */
static void expect_msg (noPollConn * conn, noPollOpCode op, const char * payload, long size)
{
	noPollMsg * msg = wait_msg (conn, 5000);
	CHECK (msg != NULL);
	if (msg == NULL)
		return;
	CHECK_INT (nopoll_msg_opcode (msg), op);
	CHECK_INT (nopoll_msg_get_payload_size (msg), size);
	CHECK (size == 0 || memcmp (nopoll_msg_get_payload (msg), payload, (size_t) size) == 0);
	CHECK (size == 0 || nopoll_msg_get_payload (msg)[size] == '\0');
	CHECK (nopoll_msg_is_final (msg));
	CHECK (! nopoll_msg_is_fragment (msg));
	nopoll_msg_unref (msg);
}

static int cli_ready = 0;
static int cli_closed = 0;

static nopoll_bool cli_on_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	shared_add (&cli_ready, nopoll_conn_role (conn) == NOPOLL_ROLE_CLIENT ? 1 : 100);
	return nopoll_true;
}

static void cli_on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) conn;
	shared_add ((int *) user_data, 1);
}

/* A client connection on the main listener, used by most checks. */
static void client_basics (noPollCtx * cctx, noPollConn * listener, const char * port)
{
	noPollConn * conn;
	noPollMsg * msg;
	char host_header[64];
	char buf[64];
	char big[300];
	int hook_target = 0;
	double t0;
	int n;

	section ("client: connect and handshake");
	conn = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, "/chat?room=1", "chat, superchat", "http://good.example");
	CHECK (conn != NULL);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_role (conn), NOPOLL_ROLE_CLIENT);
	/* refcount 2: the caller and the context registry */
	CHECK_INT (nopoll_conn_ref_count (conn), 2);
	CHECK_INT (__nopoll_conn_owner_ref_count (conn), 2);
	CHECK (__nopoll_ctx_conn_is_registered (cctx, conn));
	nopoll_conn_set_on_ready (conn, cli_on_ready, NULL);
	nopoll_conn_set_on_close (conn, cli_on_close, &cli_closed);
	CHECK (nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK (nopoll_conn_is_ready (conn));
	CHECK_INT (shared_get (&cli_ready), 1);
	CHECK (wait_for (&srv.ready, 1, 5000));
	CHECK_STR (nopoll_conn_get_accepted_protocol (conn), "chat");
	CHECK_STR (nopoll_conn_get_requested_protocol (conn), "chat, superchat");
	CHECK_STR (nopoll_conn_get_origin (conn), "http://good.example");
	CHECK_STR (nopoll_conn_get_requested_url (conn), "/chat?room=1");
	sprintf (host_header, "127.0.0.1:%s", port);
	CHECK_STR (nopoll_conn_get_host_header (conn), host_header);
	CHECK_STR (nopoll_conn_host (conn), "127.0.0.1");
	CHECK_STR (nopoll_conn_port (conn), port);
	CHECK (nopoll_conn_ctx (conn) == cctx);
	CHECK (nopoll_conn_get_id (conn) > 0);
	CHECK (nopoll_conn_get_listener (conn) == NULL);
	CHECK (nopoll_conn_socket (conn) >= 0);
	CHECK (! nopoll_conn_is_tls_on (conn));
	CHECK_INT (nopoll_conn_get_max_frame_size (conn), NOPOLL_MAX_FRAME_SIZE_DEFAULT);
	CHECK_INT (nopoll_conn_get_close_status (conn), 1006);
	CHECK (nopoll_conn_get_close_reason (conn) == NULL);
	/* the server's view */
	pthread_mutex_lock (&shared_lock);
	CHECK_STR (srv.origin, "http://good.example");
	CHECK_STR (srv.url, "/chat?room=1");
	CHECK_STR (srv.protocol, "chat, superchat");
	CHECK_STR (srv.host, host_header);
	CHECK_STR (srv.cookie, "(null)");
	CHECK_STR (srv.real_ip, "(null)");
	CHECK_INT (srv.max_frame, NOPOLL_MAX_FRAME_SIZE_DEFAULT);
	pthread_mutex_unlock (&shared_lock);
	CHECK (shared_get (&srv.accepted) >= 1);
	(void) listener;

	section ("client: references and hooks");
	CHECK (nopoll_conn_ref (conn));
	CHECK_INT (nopoll_conn_ref_count (conn), 3);
	nopoll_conn_unref (conn);
	CHECK_INT (nopoll_conn_ref_count (conn), 2);
	CHECK (__nopoll_conn_transient_ref (conn));
	CHECK_INT (nopoll_conn_ref_count (conn), 3);
	__nopoll_conn_transient_unref (conn);
	CHECK_INT (nopoll_conn_ref_count (conn), 2);
	CHECK (nopoll_conn_get_hook (conn) == NULL);
	nopoll_conn_set_hook (conn, &hook_target);
	CHECK (nopoll_conn_get_hook (conn) == &hook_target);
	nopoll_conn_set_hook (conn, NULL);
	CHECK (nopoll_conn_get_hook (conn) == NULL);

	section ("client: send and receive");
	CHECK_INT (nopoll_conn_send_text (conn, "hello", -1), 5);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "hello", 5);
	CHECK_INT (nopoll_conn_send_text (conn, "hello world", 5), 5);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "hello", 5);
	CHECK_INT (nopoll_conn_send_binary (conn, "\0\1\2\377", 4), 4);
	expect_msg (conn, NOPOLL_BINARY_FRAME, "\0\1\2\377", 4);
	/* empty messages */
	CHECK_INT (nopoll_conn_send_text (conn, "", 0), 0);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "", 0);
	CHECK_INT (nopoll_conn_send_binary (conn, NULL, 0), 0);
	expect_msg (conn, NOPOLL_BINARY_FRAME, "", 0);
	/* fragments: the next send continues the message */
	CHECK_INT (nopoll_conn_send_text_fragment (conn, "frag", 4), 4);
	CHECK_INT (nopoll_conn_send_text (conn, "ment", 4), 4);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "fragment", 8);
	CHECK_INT (nopoll_conn_send_binary_fragment (conn, "ab", 2), 2);
	CHECK_INT (nopoll_conn_send_binary_fragment (conn, "cd", 2), 2);
	CHECK_INT (nopoll_conn_send_binary (conn, "ef", 2), 2);
	expect_msg (conn, NOPOLL_BINARY_FRAME, "abcdef", 6);
	/* a message bigger than one read */
	memset (big, 'z', sizeof (big));
	CHECK_INT (nopoll_conn_send_binary (conn, big, sizeof (big)), (long) sizeof (big));
	expect_msg (conn, NOPOLL_BINARY_FRAME, big, sizeof (big));

	section ("client: low level sends");
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, NOPOLL_TEXT_FRAME, 3, "raw", 0), 3);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "raw", 3);
	t0 = now_ms ();
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, NOPOLL_BINARY_FRAME, 4, "slow", 30000), 4);
	CHECK (now_ms () - t0 >= 29.0);
	expect_msg (conn, NOPOLL_BINARY_FRAME, "slow", 4);
	CHECK_INT (__nopoll_conn_send_common (conn, "common", -1, nopoll_true, 0, NOPOLL_TEXT_FRAME), 6);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "common", 6);
	/* the pause between header and payload, and fragments continued */
	t0 = now_ms ();
	CHECK_INT (__nopoll_conn_send_common (conn, "ab", 2, nopoll_false, 20000, NOPOLL_TEXT_FRAME), 2);
	CHECK_INT (__nopoll_conn_send_common (conn, "cd", 2, nopoll_true, 20000, NOPOLL_TEXT_FRAME), 2);
	CHECK (now_ms () - t0 >= 39.0);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "abcd", 4);
	CHECK_INT (__nopoll_conn_send_common (conn, "bin", 3, nopoll_true, 1000, NOPOLL_BINARY_FRAME), 3);
	expect_msg (conn, NOPOLL_BINARY_FRAME, "bin", 3);
	CHECK_INT (__nopoll_conn_send_common (conn, "abc", -1, nopoll_true, 0, NOPOLL_BINARY_FRAME), -1);
	CHECK_INT (__nopoll_conn_send_common (conn, NULL, 3, nopoll_true, 0, NOPOLL_TEXT_FRAME), -1);
	CHECK_INT (__nopoll_conn_send_common (NULL, "abc", 3, nopoll_true, 0, NOPOLL_TEXT_FRAME), -1);
	/* pings are answered and pongs swallowed: the next message is the echo */
	CHECK (nopoll_conn_send_ping (conn));
	CHECK (nopoll_conn_send_pong (conn, 4, "pong"));
	CHECK (! nopoll_conn_send_pong (conn, 126, big));
	CHECK (! nopoll_conn_send_pong (conn, -1, big));
	CHECK_INT (nopoll_conn_send_text (conn, "after ping", -1), 10);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "after ping", 10);

	section ("client: boundaries");
	CHECK_INT (nopoll_conn_send_text (conn, "x", LONG_MAX), -1);
	CHECK_INT (nopoll_conn_send_text (conn, "x", (long) NOPOLL_MAX_FRAME_SIZE_LIMIT + 1), -1);
	CHECK_INT (nopoll_conn_send_binary (conn, "x", LONG_MAX), -1);
	CHECK_INT (nopoll_conn_send_binary (conn, "x", -1), -1);
	CHECK_INT (nopoll_conn_send_binary (conn, "x", LONG_MIN), -1);
	CHECK_INT (nopoll_conn_send_text (conn, "x", -2), -1);
	CHECK_INT (nopoll_conn_send_text (conn, NULL, 5), -1);
	CHECK_INT (nopoll_conn_send_text (conn, NULL, -1), -1);
	CHECK_INT (nopoll_conn_send_text_fragment (conn, "x", LONG_MAX), -1);
	CHECK_INT (nopoll_conn_send_binary_fragment (conn, "x", -7), -1);
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, NOPOLL_TEXT_FRAME, LONG_MAX, "x", 0), -1);
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, NOPOLL_TEXT_FRAME, -1, "x", 0), -1);
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, (noPollOpCode) 16, 1, "x", 0), -1);
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, NOPOLL_UNKNOWN_OP_CODE, 1, "x", 0), -1);
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, NOPOLL_TEXT_FRAME, 1, NULL, 0), -1);
	CHECK_INT (__nopoll_conn_send_common (conn, "x", LONG_MAX, nopoll_true, 0, NOPOLL_TEXT_FRAME), -1);
	/* invalid UTF-8 text is refused (deviation: upstream sends it) */
	CHECK_INT (nopoll_conn_send_text (conn, "\377\376", 2), -1);
	/* still usable after all that */
	CHECK (nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_send_text (conn, "still ok", -1), 8);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "still ok", 8);

	section ("client: stream reads");
	CHECK_INT (nopoll_conn_send_text (conn, "stream-data", -1), 11);
	memset (buf, 0, sizeof (buf));
	CHECK_INT (nopoll_conn_read (conn, buf, 6, nopoll_true, ms (5000)), 6);
	CHECK (memcmp (buf, "stream", 6) == 0);
	CHECK_INT (nopoll_conn_read_pending (conn), 5);
	memset (buf, 0, sizeof (buf));
	CHECK_INT (nopoll_conn_read (conn, buf, sizeof (buf), nopoll_false, 0), 5);
	CHECK (memcmp (buf, "-data", 5) == 0);
	CHECK_INT (nopoll_conn_read_pending (conn), 0);
	errno = 0;
	CHECK_INT (nopoll_conn_read (conn, buf, sizeof (buf), nopoll_false, 0), -1);
	CHECK (errno == NOPOLL_EWOULDBLOCK);
	/* blocking with a timeout: returns what came (nothing) after it */
	t0 = now_ms ();
	n = nopoll_conn_read (conn, buf, 4, nopoll_true, 50);
	CHECK (n == 0 || n == -1);
	CHECK (now_ms () - t0 >= 40.0);
	CHECK_INT (nopoll_conn_read (conn, NULL, 4, nopoll_false, 0), -1);
	CHECK_INT (nopoll_conn_read (conn, buf, 0, nopoll_false, 0), -1);
	CHECK_INT (nopoll_conn_read (conn, buf, -1, nopoll_false, 0), -1);
	CHECK_INT (nopoll_conn_read (conn, buf, INT_MIN, nopoll_true, LONG_MAX), -1);
	CHECK_INT (nopoll_conn_read (NULL, buf, 4, nopoll_false, 0), -1);
	CHECK_INT (nopoll_conn_read_pending (NULL), 0);

	section ("client: pending writes");
	CHECK_INT (nopoll_conn_pending_write_bytes (conn), 0);
	CHECK_INT (nopoll_conn_complete_pending_write (conn), 0);
	CHECK_INT (nopoll_conn_flush_writes (conn, 1000, 7), 7);
	CHECK_INT (nopoll_conn_flush_writes (conn, 0, 0), 0);
	CHECK_INT (nopoll_conn_flush_writes (conn, LONG_MAX, -3), 0);
	CHECK_INT (nopoll_conn_flush_writes (NULL, LONG_MAX, 5), 5);
	CHECK_INT (nopoll_conn_pending_write_bytes (NULL), 0);
	CHECK_INT (nopoll_conn_complete_pending_write (NULL), 0);

	section ("client: messages and joins");
	CHECK_INT (nopoll_conn_send_text (conn, "join-a", -1), 6);
	msg = wait_msg (conn, 5000);
	CHECK (msg != NULL);
	if (msg != NULL) {
		noPollMsg * other;
		noPollMsg * joined;
		CHECK_INT (nopoll_conn_send_text (conn, "join-b", -1), 6);
		other = wait_msg (conn, 5000);
		CHECK (other != NULL);
		joined = nopoll_msg_join (msg, other);
		CHECK (joined != NULL && joined != msg && joined != other);
		CHECK_INT (nopoll_msg_get_payload_size (joined), 12);
		CHECK (joined != NULL && strcmp ((const char *) nopoll_msg_get_payload (joined), "join-ajoin-b") == 0);
		CHECK_INT (nopoll_msg_opcode (joined), NOPOLL_TEXT_FRAME);
		CHECK_INT (nopoll_msg_ref_count (joined), 1);
		CHECK_INT (nopoll_msg_ref_count (msg), 1);
		CHECK (nopoll_msg_ref (msg));
		CHECK_INT (nopoll_msg_ref_count (msg), 2);
		nopoll_msg_unref (msg);
		nopoll_msg_unref (joined);
		nopoll_msg_unref (other);
		nopoll_msg_unref (msg);
		CHECK_INT (nopoll_msg_ref_count (msg), -1);
		CHECK (nopoll_msg_get_payload (msg) == NULL);
	}

	section ("client: frame limit from options");
	{
		noPollConnOpts * opts = nopoll_conn_opts_new ();
		nopoll_conn_opts_set_max_frame_size (opts, 12345);
		__nopoll_conn_set_max_frame_size (conn, opts);
		CHECK_INT (nopoll_conn_get_max_frame_size (conn), 12345);
		/* not consumed */
		CHECK (nopoll_conn_opts_ref (opts));
		nopoll_conn_opts_unref (opts);
		nopoll_conn_opts_unref (opts);
		/* options without a limit, or none: unchanged */
		opts = nopoll_conn_opts_new ();
		__nopoll_conn_set_max_frame_size (conn, opts);
		__nopoll_conn_set_max_frame_size (conn, NULL);
		CHECK_INT (nopoll_conn_get_max_frame_size (conn), 12345);
		nopoll_conn_opts_unref (opts);
		CHECK_INT (nopoll_conn_send_text (conn, "limited", -1), 7);
		expect_msg (conn, NOPOLL_TEXT_FRAME, "limited", 7);
	}

	section ("client: close with status");
	CHECK (nopoll_conn_get_msg (conn) == NULL);
	nopoll_conn_close_ext (conn, 4000, "client bye", 10);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (shared_get (&cli_closed), 1);
	CHECK (wait_for (&srv.closed, 1, 5000));
	pthread_mutex_lock (&shared_lock);
	CHECK_INT (srv.close_status, 4000);
	CHECK_STR (srv.close_reason, "client bye");
	pthread_mutex_unlock (&shared_lock);
	/* the handle is dead: calls fail cleanly */
	CHECK_INT (nopoll_conn_send_text (conn, "x", 1), -1);
	CHECK_INT (nopoll_conn_ref_count (conn), -1);
	CHECK (! nopoll_conn_ref (conn));
	nopoll_conn_close (conn);
	nopoll_conn_unref (conn);
}

/* Server-initiated close, refusal by on_open, per-connection handlers,
 * shutdown, foreach. */
static void client_more (noPollCtx * sctx, noPollCtx * cctx, const char * port)
{
	noPollConn * conn;
	noPollConn * found;
	noPollRole role;
	int closes = 0;
	int count = 0;

	section ("server closes");
	conn = nopoll_conn_new (cctx, "127.0.0.1", port, "localhost", NULL, NULL, NULL);
	CHECK (conn != NULL && nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK_STR (nopoll_conn_get_requested_url (conn), "/");
	CHECK_STR (nopoll_conn_get_origin (conn), "http://localhost");
	CHECK (nopoll_conn_get_accepted_protocol (conn) == NULL);
	CHECK_INT (nopoll_conn_send_text (conn, "close-me", 8), 8);
	CHECK (wait_closed (conn, 5000));
	CHECK_INT (nopoll_conn_get_close_status (conn), 4001);
	CHECK_STR (nopoll_conn_get_close_reason (conn), "server bye");
	CHECK (! nopoll_conn_is_ready (conn));
	nopoll_conn_close (conn);

	section ("on_open refuses");
	conn = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, NULL, NULL, "http://evil.example");
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK (! nopoll_conn_is_ok (conn));
	nopoll_conn_close (conn);

	section ("per-connection handler");
	conn = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, "/own", NULL, NULL);
	CHECK (conn != NULL && nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK_INT (nopoll_conn_send_text (conn, "mine", 4), 4);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "own:mine", 8);
	CHECK (shared_get (&srv.own_msgs) == 1);

	section ("foreach");
	nopoll_ctx_foreach_conn (sctx, foreach_count, &count);
	CHECK (count >= 2);
	CHECK_INT (count, nopoll_ctx_conns (sctx));
	role = NOPOLL_ROLE_MAIN_LISTENER;
	found = nopoll_ctx_foreach_conn (sctx, foreach_find_role, &role);
	CHECK (found != NULL && nopoll_conn_role (found) == NOPOLL_ROLE_MAIN_LISTENER);
	role = NOPOLL_ROLE_CLIENT;
	CHECK (nopoll_ctx_foreach_conn (sctx, foreach_find_role, &role) == NULL);
	CHECK (nopoll_ctx_foreach_conn (cctx, foreach_find_role, &role) == conn);
	CHECK (nopoll_ctx_foreach_conn (NULL, foreach_find_role, &role) == NULL);
	CHECK (nopoll_ctx_ref_count (cctx) >= 2);

	section ("shutdown");
	nopoll_conn_set_on_close (conn, cli_on_close, &closes);
	nopoll_conn_shutdown (conn);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (closes, 1);
	CHECK_INT (nopoll_conn_socket (conn), -1);
	/* no second on_close */
	nopoll_conn_shutdown (conn);
	nopoll_conn_close (conn);
	CHECK_INT (closes, 1);
}

/* ================================================================ options */

/* Reads the client's upgrade request on a raw server socket, answers 101
 * and returns the accepted socket (-1 on failure). */
static int raw_serve_one (int lfd, char * head, int cap)
{
	int fd = raw_accept (lfd, 5000);
	if (fd < 0)
		return -1;
	if (! raw_server_handshake (fd, head, cap, NULL)) {
		close (fd);
		return -1;
	}
	return fd;
}

static void options (noPollCtx * sctx, noPollCtx * cctx, const char * port)
{
	noPollConnOpts * opts;
	noPollConnOpts * kept;
	noPollConn * conn;
	noPollConn * listener;
	char head[4096];
	char value[256];
	char raw_port[16];
	char big[200];
	unsigned char frame[256];
	long n;
	RawFrame f;
	int lfd, fd;

	section ("options: lifecycle");
	opts = nopoll_conn_opts_new ();
	CHECK (opts != NULL);
	CHECK (nopoll_conn_opts_ref (opts));
	nopoll_conn_opts_unref (opts);
	CHECK (nopoll_conn_opts_ref (opts));
	nopoll_conn_opts_free (opts);
	/* consumed by the first API that receives it, also on failure */
	conn = nopoll_conn_new_opts (cctx, opts, NULL, port, NULL, NULL, NULL, NULL);
	CHECK (conn == NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_new_opts (NULL, opts, "127.0.0.1", port, NULL, NULL, NULL, NULL) == NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_listener_new_opts (sctx, opts, "", "0") == NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_new_with_socket (cctx, opts, -1, "127.0.0.1", port, NULL, NULL, NULL, NULL) == NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	opts = nopoll_conn_opts_new ();
	__nopoll_conn_opts_release_if_needed (opts);
	CHECK (! nopoll_conn_opts_ref (opts));
	/* reuse: the caller keeps it */
	kept = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_reuse (kept, nopoll_true);
	CHECK (nopoll_conn_new_opts (cctx, kept, NULL, port, NULL, NULL, NULL, NULL) == NULL);
	__nopoll_conn_opts_release_if_needed (kept);
	CHECK (nopoll_conn_opts_ref (kept));
	nopoll_conn_opts_unref (kept);
	nopoll_conn_opts_free (kept);
	CHECK (! nopoll_conn_opts_ref (kept));
	/* a second reference survives one consuming call */
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_opts_ref (opts));
	CHECK (nopoll_conn_new_opts (cctx, opts, NULL, port, NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_opts_ref (opts));
	nopoll_conn_opts_unref (opts);
	nopoll_conn_opts_unref (opts);
	CHECK (! nopoll_conn_opts_ref (opts));
	/* setters on NULL and stale handles are no-ops */
	nopoll_conn_opts_set_cookie (NULL, "x");
	nopoll_conn_opts_set_extra_headers (NULL, "x");
	nopoll_conn_opts_set_interface (NULL, "x");
	nopoll_conn_opts_set_max_frame_size (NULL, 10);
	nopoll_conn_opts_set_reuse (NULL, nopoll_true);
	nopoll_conn_opts_add_origin_header (NULL, nopoll_false);
	nopoll_conn_opts_skip_origin_check (NULL, nopoll_true);
	nopoll_conn_opts_set_cookie (opts, "stale");
	nopoll_conn_opts_free (NULL);
	nopoll_conn_opts_unref (NULL);
	CHECK (! nopoll_conn_opts_ref (NULL));
	__nopoll_conn_opts_release_if_needed (NULL);

	section ("options: what the client sends");
	lfd = raw_listen_text (raw_port);
	CHECK (lfd >= 0);
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_cookie (opts, "session=42; lang=en");
	nopoll_conn_opts_set_extra_headers (opts, "\r\nX-Extra: yes\r\nX-Second: 2");
	nopoll_conn_opts_add_origin_header (opts, nopoll_false);
	nopoll_conn_opts_set_interface (opts, "127.0.0.1");
	nopoll_conn_opts_set_max_frame_size (opts, 0);
	nopoll_conn_opts_set_max_frame_size (opts, -1);
	nopoll_conn_opts_set_max_frame_size (opts, LONG_MAX);
	nopoll_conn_opts_set_max_frame_size (opts, 100);
	nopoll_conn_opts_set_reuse (opts, nopoll_false);
	conn = nopoll_conn_new_opts (cctx, opts, "127.0.0.1", raw_port, "ws.example", "/opts", "p1", NULL);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	fd = raw_serve_one (lfd, head, sizeof (head));
	CHECK (fd >= 0);
	CHECK (strncmp (head, "GET /opts HTTP/1.1\r\n", 20) == 0);
	CHECK (raw_header (head, "Cookie", value, sizeof (value)) && strcmp (value, "session=42; lang=en") == 0);
	CHECK (raw_header (head, "X-Extra", value, sizeof (value)) && strcmp (value, "yes") == 0);
	CHECK (raw_header (head, "X-Second", value, sizeof (value)) && strcmp (value, "2") == 0);
	CHECK (! raw_header (head, "Origin", value, sizeof (value)));
	CHECK (raw_header (head, "Host", value, sizeof (value)) && strncmp (value, "ws.example:", 11) == 0);
	CHECK (raw_header (head, "Sec-WebSocket-Protocol", value, sizeof (value)) && strcmp (value, "p1") == 0);
	CHECK (raw_header (head, "Sec-WebSocket-Version", value, sizeof (value)) && strcmp (value, "13") == 0);
	CHECK (nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK (nopoll_conn_get_origin (conn) == NULL);
	CHECK_INT (nopoll_conn_get_max_frame_size (conn), 100);
	/* client frames are masked */
	CHECK_INT (nopoll_conn_send_text (conn, "masked?", -1), 7);
	CHECK (raw_read_frame (fd, &f, frame, sizeof (frame)));
	CHECK (f.masked && f.fin && f.opcode == 1 && f.len == 7);
	CHECK (memcmp (frame, "masked?", 7) == 0);
	/* a frame the client asked not to mask goes out unmasked */
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_false, NOPOLL_BINARY_FRAME, 2, "um", 0), 2);
	CHECK (raw_read_frame (fd, &f, frame, sizeof (frame)));
	CHECK (! f.masked && f.opcode == 2 && f.len == 2);
	/* server frames arrive */
	CHECK (raw_send_frame (fd, 1, 1, 0, "from raw", 8));
	expect_msg (conn, NOPOLL_TEXT_FRAME, "from raw", 8);
	/* the raw I/O callbacks read and write the socket as is */
	CHECK (raw_send_all (fd, "xyz", 3));
	{
		struct pollfd p;
		char got[8];
		p.fd = nopoll_conn_socket (conn);
		p.events = POLLIN;
		p.revents = 0;
		CHECK (poll (&p, 1, (int) ms (5000)) == 1);
		CHECK_INT (nopoll_conn_default_receive (conn, got, 3), 3);
		CHECK (memcmp (got, "xyz", 3) == 0);
		errno = 0;
		CHECK_INT (nopoll_conn_default_receive (conn, got, 3), -1);
		CHECK (errno == NOPOLL_EWOULDBLOCK);
	}
	n = raw_frame (frame, 1, 1, 1, "via default send", 16);
	CHECK_INT (nopoll_conn_default_send (conn, (char *) frame, (int) n), n);
	CHECK (raw_read_frame (fd, &f, frame, sizeof (frame)));
	CHECK (f.len == 16 && memcmp (frame, "via default send", 16) == 0);
	CHECK_INT (nopoll_conn_default_receive (NULL, (char *) frame, 3), -1);
	CHECK_INT (nopoll_conn_default_send (NULL, (char *) frame, 3), -1);
	CHECK_INT (nopoll_conn_default_receive (conn, NULL, 3), -1);
	CHECK_INT (nopoll_conn_default_send (conn, (char *) frame, -1), -1);
	/* the client's own frame limit (100): a bigger frame closes with 1009 */
	memset (big, 'b', sizeof (big));
	CHECK (raw_send_frame (fd, 1, 2, 0, big, 150));
	CHECK (wait_closed (conn, 5000));
	CHECK (raw_read_frame (fd, &f, frame, sizeof (frame)));
	CHECK (f.opcode == 8 && f.len >= 2 && ((frame[0] << 8) | frame[1]) == 1009);
	nopoll_conn_close (conn);
	close (fd);

	section ("options: protocol version and interface");
	nopoll_ctx_set_protocol_version (cctx, 14);
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_reuse (opts, nopoll_true);
	conn = nopoll_conn_new_opts (cctx, opts, "127.0.0.1", raw_port, NULL, NULL, NULL, "null");
	CHECK (conn != NULL);
	fd = raw_serve_one (lfd, head, sizeof (head));
	CHECK (raw_header (head, "Sec-WebSocket-Version", value, sizeof (value)) && strcmp (value, "14") == 0);
	CHECK (raw_header (head, "Origin", value, sizeof (value)) && strcmp (value, "null") == 0);
	nopoll_ctx_set_protocol_version (cctx, 13);
	nopoll_conn_close (conn);
	close (fd);
	/* an interface that cannot be bound: the connect fails (reused opts survive) */
	nopoll_conn_opts_set_interface (opts, "192.0.2.123");
	CHECK (nopoll_conn_new_opts (cctx, opts, "127.0.0.1", raw_port, NULL, NULL, NULL, NULL) == NULL);
	nopoll_conn_opts_set_interface (opts, NULL);
	nopoll_conn_opts_set_cookie (opts, NULL);
	nopoll_conn_opts_set_extra_headers (opts, NULL);
	conn = nopoll_conn_new_opts (cctx, opts, "127.0.0.1", raw_port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	fd = raw_serve_one (lfd, head, sizeof (head));
	CHECK (! raw_header (head, "Cookie", value, sizeof (value)));
	CHECK (raw_header (head, "Origin", value, sizeof (value)) && strcmp (value, "http://127.0.0.1") == 0);
	nopoll_conn_close (conn);
	close (fd);
	nopoll_conn_opts_free (opts);
	CHECK (! nopoll_conn_opts_ref (opts));
	close (lfd);

	section ("options: a listener with reused options");
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_reuse (opts, nopoll_true);
	nopoll_conn_opts_set_max_frame_size (opts, 77);
	listener = nopoll_listener_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (listener != NULL);
	CHECK_INT (nopoll_conn_get_max_frame_size (listener), 77);
	CHECK (nopoll_listener_new_opts (sctx, opts, "", "0") == NULL);
	/* still the caller's after a success and a failure */
	CHECK (nopoll_conn_opts_ref (opts));
	nopoll_conn_opts_unref (opts);
	nopoll_conn_opts_free (opts);
	CHECK (! nopoll_conn_opts_ref (opts));
	nopoll_conn_close (listener);

	section ("options: listener frame limit reaches accepted connections");
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_max_frame_size (opts, 64);
	nopoll_conn_opts_skip_origin_check (opts, nopoll_true);
	listener = nopoll_listener_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (listener != NULL && nopoll_conn_is_ok (listener));
	CHECK (! nopoll_conn_opts_ref (opts));
	CHECK_INT (nopoll_conn_role (listener), NOPOLL_ROLE_MAIN_LISTENER);
	CHECK_INT (nopoll_conn_get_max_frame_size (listener), 64);
	pthread_mutex_lock (&shared_lock);
	srv_expected_listener = listener;
	pthread_mutex_unlock (&shared_lock);
	server_reset ();
	conn = nopoll_conn_new (cctx, "127.0.0.1", nopoll_conn_port (listener), NULL, NULL, NULL, NULL);
	CHECK (conn != NULL && nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK (wait_for (&srv.ready, 1, 5000));
	pthread_mutex_lock (&shared_lock);
	CHECK_INT (srv.max_frame, 64);
	CHECK (srv.listener_matches);
	pthread_mutex_unlock (&shared_lock);
	CHECK_INT (nopoll_conn_send_binary (conn, big, 64), 64);
	expect_msg (conn, NOPOLL_BINARY_FRAME, big, 64);
	CHECK_INT (nopoll_conn_send_binary (conn, big, 65), 65);
	CHECK (wait_closed (conn, 5000));
	CHECK_INT (nopoll_conn_get_close_status (conn), 1009);
	CHECK (wait_for (&srv.closed, 1, 5000));
	nopoll_conn_close (conn);
	pthread_mutex_lock (&shared_lock);
	srv_expected_listener = NULL;
	pthread_mutex_unlock (&shared_lock);
	nopoll_conn_close (listener);
	CHECK (! nopoll_conn_is_ok (listener));
}

/* ================================================================ sockets */

/* Process CPU time in ms. */
static double cpu_ms (void)
{
	struct rusage ru;
	getrusage (RUSAGE_SELF, &ru);
	return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0
		+ (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

/* Port sharing as upstream documents it: the application accepts, looks
 * at the first bytes, and hands WebSocket connections to nopoll. */
static void port_sharing (noPollCtx * sctx, noPollCtx * cctx)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof (sa);
	char port[16];
	char peek[4];
	char head[2048];
	unsigned char frame[256];
	RawFrame f;
	noPollConn * client;
	noPollConn * conn;
	noPollConn * listener;
	noPollConn * legacy;
	noPollConnOpts * opts;
	int lfd, fd, raw, lfd2, a2, b2;

	section ("port sharing: sock_listen, listener_accept, from_socket, accept_complete");
	CHECK_INT (nopoll_listener_sock_listen (NULL, "127.0.0.1", "0"), -2);
	CHECK_INT (nopoll_listener_sock_listen (sctx, NULL, "0"), -2);
	CHECK_INT (nopoll_listener_sock_listen (sctx, "127.0.0.1", NULL), -2);
	CHECK (nopoll_listener_sock_listen (sctx, "192.0.2.123", "0") < 0);
	CHECK (nopoll_listener_sock_listen (sctx, "127.0.0.1", "no-such-port") < 0);
	lfd = nopoll_listener_sock_listen (sctx, "127.0.0.1", "0");
	CHECK (lfd > 2);
	/* upstream's listening socket is blocking: accept(2) on it waits */
	CHECK (is_blocking (lfd));
	CHECK (getsockname (lfd, (struct sockaddr *) &sa, &len) == 0);
	sprintf (port, "%d", (int) ntohs (sa.sin_port));
	CHECK_INT (nopoll_listener_accept (-1), -1);

	/* a listener (with options) the accepted connections are completed for */
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_max_frame_size (opts, 1000);
	listener = nopoll_listener_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (listener != NULL);
	pthread_mutex_lock (&shared_lock);
	srv_expected_listener = listener;
	pthread_mutex_unlock (&shared_lock);
	server_reset ();

	client = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, "/shared", NULL, NULL);
	CHECK (client != NULL);
	fd = nopoll_listener_accept (lfd);
	CHECK (fd > 2);
	/* as accept(2) gives it: blocking, so the application can peek */
	CHECK (is_blocking (fd));
	CHECK (recv (fd, peek, 3, MSG_PEEK) == 3 && memcmp (peek, "GET", 3) == 0);
	/* upstream's sample wraps the application's listening socket too: a
	 * listener object the loop does not accept on */
	legacy = nopoll_listener_from_socket (sctx, lfd);
	CHECK (legacy != NULL);
	CHECK_INT (nopoll_conn_role (legacy), NOPOLL_ROLE_MAIN_LISTENER);
	CHECK_INT (nopoll_conn_socket (legacy), lfd);
	CHECK_STR (nopoll_conn_port (legacy), port);
	CHECK (nopoll_conn_is_ok (legacy));
	CHECK (is_blocking (lfd));
	CHECK (nopoll_listener_from_socket (NULL, fd) == NULL);
	CHECK (nopoll_listener_from_socket (sctx, -1) == NULL);
	conn = nopoll_listener_from_socket (sctx, fd);
	CHECK (conn != NULL);
	CHECK_INT (nopoll_conn_role (conn), NOPOLL_ROLE_LISTENER);
	CHECK_STR (nopoll_conn_host (conn), "127.0.0.1");
	CHECK (nopoll_conn_port (conn) != NULL && atoi (nopoll_conn_port (conn)) > 0);
	CHECK_INT (nopoll_conn_socket (conn), fd);
	CHECK (__nopoll_ctx_conn_is_registered (sctx, conn));
	CHECK (nopoll_conn_accept_complete (sctx, listener, conn, fd, nopoll_false));
	/* on_accept ran, the listener is recorded and its limit applies */
	CHECK_INT (shared_get (&srv.accepted), 1);
	CHECK (nopoll_conn_get_listener (conn) == listener);
	CHECK_INT (nopoll_conn_get_max_frame_size (conn), 1000);
	CHECK (nopoll_conn_wait_until_connection_ready (client, 5));
	CHECK (wait_for (&srv.ready, 1, 5000));
	CHECK_STR (srv.url, "/shared");
	/* the handshake waited for accept_complete: on_accept ran before, and
	 * the listener's limit applied from the start */
	pthread_mutex_lock (&shared_lock);
	CHECK_INT (srv.accepted_at_ready, 1);
	CHECK_INT (srv.max_frame, 1000);
	CHECK (srv.listener_matches);
	pthread_mutex_unlock (&shared_lock);
	CHECK_INT (nopoll_conn_send_text (client, "shared port", -1), 11);
	expect_msg (client, NOPOLL_TEXT_FRAME, "shared port", 11);

	section ("port sharing: set_socket moves the connection to another socket");
	lfd2 = raw_listen_text (head);
	b2 = raw_connect (head);
	a2 = raw_accept (lfd2, 5000);
	CHECK (lfd2 >= 0 && a2 >= 0 && b2 >= 0);
	nopoll_conn_set_socket (conn, a2);
	CHECK_INT (nopoll_conn_socket (conn), a2);
	/* the old socket was not closed */
	CHECK (fcntl (fd, F_GETFD) != -1);
	/* the loop now serves the new socket */
	CHECK (raw_send_frame (b2, 1, 1, 1, "moved", 5));
	CHECK (raw_read_frame (b2, &f, frame, sizeof (frame)));
	CHECK (f.opcode == 1 && f.len == 5 && memcmp (frame, "moved", 5) == 0);
	nopoll_conn_close (client);
	close (fd);
	CHECK_INT (nopoll_conn_send_text (conn, "bye", 3), 3);
	CHECK (raw_read_frame (b2, &f, frame, sizeof (frame)) && f.len == 3);
	nopoll_conn_set_socket (NULL, 5);
	close (b2);
	close (lfd2);
	CHECK (wait_for (&srv.closed, 1, 5000));

	section ("port sharing: accept_complete failures");
	CHECK (! nopoll_conn_accept_complete (NULL, listener, NULL, 3, nopoll_false));
	raw = raw_connect (port);
	fd = nopoll_listener_accept (lfd);
	conn = nopoll_listener_from_socket (sctx, fd);
	CHECK (conn != NULL);
	/* TLS asked for, but the context has no certificate: refused, shut down */
	CHECK (! nopoll_conn_accept_complete (sctx, listener, conn, fd, nopoll_true));
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK (raw_read_to_eof (raw, head, sizeof (head)) == 0);
	close (raw);
	/* refused by on_accept */
	raw = raw_connect (port);
	fd = nopoll_listener_accept (lfd);
	conn = nopoll_listener_from_socket (sctx, fd);
	shared_set (&srv.refuse_accept, 1);
	CHECK (! nopoll_conn_accept_complete (sctx, NULL, conn, fd, nopoll_false));
	shared_set (&srv.refuse_accept, 0);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK (! __nopoll_ctx_conn_is_registered (sctx, conn));
	CHECK (raw_read_to_eof (raw, head, sizeof (head)) == 0);
	close (raw);

	section ("accept_socket");
	CHECK (nopoll_conn_accept_socket (sctx, listener, -1) == NULL);
	CHECK (nopoll_conn_accept_socket (NULL, listener, 3) == NULL);
	CHECK (nopoll_conn_accept_socket (sctx, listener, lfd) == NULL);
	raw = raw_connect (port);
	fd = nopoll_listener_accept (lfd);
	server_reset ();
	conn = nopoll_conn_accept_socket (sctx, listener, fd);
	CHECK (conn != NULL);
	CHECK_INT (shared_get (&srv.accepted), 1);
	CHECK (nopoll_conn_get_listener (conn) == listener);
	CHECK_INT (nopoll_conn_get_max_frame_size (conn), 1000);
	/* the context owns it: no reference for the caller */
	CHECK_INT (nopoll_conn_ref_count (conn), 1);
	CHECK (raw_client_handshake (raw, port, "/raw?x=1", "X-Real-IP: 203.0.113.9\r\nCookie: a=b\r\nOrigin: http://raw.example\r\n"));
	CHECK (wait_for (&srv.ready, 1, 5000));
	pthread_mutex_lock (&shared_lock);
	CHECK_STR (srv.real_ip, "203.0.113.9");
	CHECK_STR (srv.cookie, "a=b");
	CHECK_STR (srv.origin, "http://raw.example");
	CHECK_STR (srv.url, "/raw?x=1");
	pthread_mutex_unlock (&shared_lock);
	CHECK (raw_send_frame (raw, 1, 1, 1, "raw client", 10));
	CHECK (raw_read_frame (raw, &f, frame, sizeof (frame)));
	CHECK (! f.masked && f.len == 10 && memcmp (frame, "raw client", 10) == 0);

	section ("unregister: the loop stops watching");
	{
		double c0, c1;
		CHECK (nopoll_conn_ref (conn));
		nopoll_ctx_unregister_conn (sctx, conn);
		CHECK (! __nopoll_ctx_conn_is_registered (sctx, conn));
		/* unregistered twice: no-op */
		nopoll_ctx_unregister_conn (sctx, conn);
		/* data on a socket nobody serves must not make the loop spin */
		CHECK (raw_send_frame (raw, 1, 1, 1, "unserved", 8));
		sleep_ms (50);
		c0 = cpu_ms ();
		sleep_ms (300);
		c1 = cpu_ms ();
		CHECK (c1 - c0 < 100.0);
		printf ("   the process used %.0f ms of CPU in 300 ms\n", c1 - c0);
		/* registered again, it is served again (the frame waiting included) */
		CHECK (nopoll_ctx_register_conn (sctx, conn));
		CHECK (__nopoll_ctx_conn_is_registered (sctx, conn));
		CHECK (raw_read_frame (raw, &f, frame, sizeof (frame)));
		CHECK (f.len == 8 && memcmp (frame, "unserved", 8) == 0);
		CHECK (! nopoll_ctx_register_conn (cctx, conn));
		CHECK (! nopoll_ctx_register_conn (NULL, conn));
		CHECK (! nopoll_ctx_register_conn (sctx, NULL));
		CHECK (! __nopoll_ctx_conn_is_registered (cctx, conn));
		CHECK (! __nopoll_ctx_conn_is_registered (NULL, conn));
		nopoll_ctx_unregister_conn (NULL, conn);
		nopoll_ctx_unregister_conn (sctx, NULL);
		nopoll_conn_unref (conn);
	}
	close (raw);

	/* refused by on_accept: NULL, socket closed */
	raw = raw_connect (port);
	fd = nopoll_listener_accept (lfd);
	shared_set (&srv.refuse_accept, 1);
	CHECK (nopoll_conn_accept_socket (sctx, listener, fd) == NULL);
	shared_set (&srv.refuse_accept, 0);
	CHECK (raw_read_to_eof (raw, head, sizeof (head)) == 0);
	close (raw);

	section ("port sharing: the application's listening socket as listener");
	/* the documented sample: the wrapped listening socket as listener; the
	 * loop never took a connection from it */
	pthread_mutex_lock (&shared_lock);
	srv_expected_listener = legacy;
	pthread_mutex_unlock (&shared_lock);
	server_reset ();
	client = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, "/legacy", NULL, NULL);
	CHECK (client != NULL);
	fd = nopoll_listener_accept (lfd);
	CHECK (fd > 2);
	conn = nopoll_listener_from_socket (sctx, fd);
	CHECK (nopoll_conn_accept_complete (sctx, legacy, conn, fd, nopoll_false));
	CHECK (nopoll_conn_get_listener (conn) == legacy);
	CHECK (nopoll_conn_wait_until_connection_ready (client, 5));
	CHECK (wait_for (&srv.ready, 1, 5000));
	pthread_mutex_lock (&shared_lock);
	CHECK (srv.listener_matches);
	CHECK_INT (srv.accepted_at_ready, 1);
	pthread_mutex_unlock (&shared_lock);
	CHECK_INT (nopoll_conn_send_text (client, "legacy", -1), 6);
	expect_msg (client, NOPOLL_TEXT_FRAME, "legacy", 6);
	nopoll_conn_close (client);

	pthread_mutex_lock (&shared_lock);
	srv_expected_listener = NULL;
	pthread_mutex_unlock (&shared_lock);
	nopoll_conn_close (listener);
	/* closing the wrapper closes the socket, as upstream */
	nopoll_conn_close (legacy);
	CHECK (fcntl (lfd, F_GETFD) == -1);
}

/* nopoll_conn_accept and the handshake driven by hand (no loop). */
static void manual_accept (void)
{
	noPollCtx * actx = nopoll_ctx_new ();
	noPollConn * listener = nopoll_listener_new (actx, "127.0.0.1", "0");
	noPollConn * conn;
	const char * port = nopoll_conn_port (listener);
	unsigned char frame[64];
	char request[512];
	char head[1024];
	RawFrame f;
	double end;
	int raw, copy, old;

	section ("conn_accept and complete_handshake");
	CHECK (listener != NULL);
	CHECK (nopoll_conn_accept (NULL, listener) == NULL);
	CHECK (nopoll_conn_accept (actx, NULL) == NULL);
	raw = raw_connect (port);
	CHECK (raw >= 0);
	conn = nopoll_conn_accept (actx, listener);
	CHECK (conn != NULL);
	CHECK_INT (nopoll_conn_role (conn), NOPOLL_ROLE_LISTENER);
	CHECK (nopoll_conn_get_listener (conn) == listener);
	CHECK (! nopoll_conn_is_ready (conn));
	sprintf (request, "GET /manual HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: " RAW_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", port);
	CHECK (raw_send_all (raw, request, (long) strlen (request)));
	end = now_ms () + (double) ms (5000);
	while (! nopoll_conn_is_ready (conn) && nopoll_conn_is_ok (conn) && now_ms () < end) {
		nopoll_conn_complete_handshake (conn);
		sleep_ms (1);
	}
	CHECK (nopoll_conn_is_ready (conn));
	CHECK_STR (nopoll_conn_get_requested_url (conn), "/manual");
	CHECK (nopoll_conn_get_origin (conn) == NULL);
	CHECK (raw_read_head (raw, head, sizeof (head)) > 0 && strncmp (head, "HTTP/1.1 101", 12) == 0);
	CHECK (strstr (head, RAW_ACCEPT) != NULL);
	nopoll_conn_complete_handshake (conn);
	nopoll_conn_complete_handshake (NULL);
	nopoll_conn_complete_handshake (listener);

	/* set_socket: the value is replaced, the old socket left open */
	old = nopoll_conn_socket (conn);
	copy = dup (old);
	nopoll_conn_set_socket (conn, copy);
	CHECK_INT (nopoll_conn_socket (conn), copy);
	CHECK (fcntl (old, F_GETFD) != -1);
	close (old);
	CHECK (raw_send_frame (raw, 1, 1, 1, "over the copy", 13));
	expect_msg (conn, NOPOLL_TEXT_FRAME, "over the copy", 13);
	CHECK_INT (nopoll_conn_send_binary (conn, "back", 4), 4);
	CHECK (raw_read_frame (raw, &f, frame, sizeof (frame)) && f.opcode == 2 && f.len == 4);

	/* the socket helpers */
	CHECK (nopoll_conn_set_sock_block (copy, nopoll_true));
	CHECK (is_blocking (copy));
	CHECK (nopoll_conn_set_sock_block (copy, nopoll_false));
	CHECK (! is_blocking (copy));
	CHECK (! nopoll_conn_set_sock_block (-1, nopoll_true));

	nopoll_conn_close (conn);
	CHECK (raw_read_frame (raw, &f, frame, sizeof (frame)) && f.opcode == 8);
	close (raw);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (actx);
}

/* A client over a socket the application connected itself. */
static void client_with_socket (noPollCtx * cctx, const char * port)
{
	noPollConn * conn;
	noPollConnOpts * opts;
	int fd;

	section ("conn_new_with_socket");
	server_reset ();
	fd = raw_connect (port);
	CHECK (fd >= 0 && is_blocking (fd));
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_cookie (opts, "via=socket");
	CHECK (nopoll_conn_new_with_socket (NULL, NULL, fd, "127.0.0.1", port, NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_new_with_socket (cctx, NULL, fd, NULL, port, NULL, NULL, NULL, NULL) == NULL);
	conn = nopoll_conn_new_with_socket (cctx, opts, fd, "127.0.0.1", port, NULL, "/with-socket", NULL, NULL);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	CHECK_INT (nopoll_conn_socket (conn), fd);
	/* the socket keeps its blocking mode */
	CHECK (is_blocking (fd));
	CHECK (nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK (wait_for (&srv.ready, 1, 5000));
	CHECK_STR (srv.cookie, "via=socket");
	CHECK_STR (srv.url, "/with-socket");
	CHECK_INT (nopoll_conn_send_text (conn, "with socket", -1), 11);
	/* a blocking socket: get_msg waits for the answer */
	{
		noPollMsg * msg = nopoll_conn_get_msg (conn);
		CHECK (msg != NULL);
		CHECK (msg != NULL && nopoll_msg_get_payload_size (msg) == 11);
		nopoll_msg_unref (msg);
	}
	nopoll_conn_close (conn);

	/* on failure the socket stays the caller's (open) */
	{
		char rport[16];
		struct linger lg;
		int l2 = raw_listen_text (rport);
		int c2 = raw_connect (rport);
		int s2 = raw_accept (l2, 5000);
		CHECK (l2 >= 0 && c2 >= 0 && s2 >= 0);
		/* a peer that resets the connection: the request cannot be sent */
		lg.l_onoff = 1;
		lg.l_linger = 0;
		setsockopt (s2, SOL_SOCKET, SO_LINGER, &lg, sizeof (lg));
		close (s2);
		sleep_ms (50);
		opts = nopoll_conn_opts_new ();
		CHECK (nopoll_conn_new_with_socket (cctx, opts, c2, "127.0.0.1", rport, NULL, NULL, NULL, NULL) == NULL);
		CHECK (! nopoll_conn_opts_ref (opts));
		CHECK (fcntl (c2, F_GETFD) != -1);
		/* a request target with CR LF is refused before any I/O */
		CHECK (nopoll_conn_new_with_socket (cctx, NULL, c2, "127.0.0.1", rport, NULL, "/a\r\nb", NULL, NULL) == NULL);
		CHECK (fcntl (c2, F_GETFD) != -1);
		close (c2);
		close (l2);
	}
}

/* ================================================================ IPv6 */

static void ipv6 (noPollCtx * sctx, noPollCtx * cctx)
{
	noPollConn * listener;
	noPollConn * conn;
	noPollConnOpts * opts;

	section ("IPv6");
	CHECK (nopoll_listener_new6 (sctx, "127.0.0.1", "0") == NULL);
	CHECK (nopoll_listener_new6 (NULL, "::1", "0") == NULL);
	if (! ipv6_available ()) {
		printf ("   ::1 is not available here: IPv6 connections skipped\n");
		CHECK (nopoll_conn_new6 (cctx, NULL, "1", NULL, NULL, NULL, NULL) == NULL);
		opts = nopoll_conn_opts_new ();
		CHECK (nopoll_listener_new_opts6 (sctx, opts, "127.0.0.1", "0") == NULL);
		return;
	}
	listener = nopoll_listener_new6 (sctx, "::1", "0");
	CHECK (listener != NULL && nopoll_conn_is_ok (listener));
	CHECK_STR (nopoll_conn_host (listener), "::1");
	conn = nopoll_conn_new6 (cctx, "::1", nopoll_conn_port (listener), NULL, "/v6", NULL, NULL);
	CHECK (conn != NULL && nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK_STR (nopoll_conn_host (conn), "::1");
	CHECK_INT (nopoll_conn_send_text (conn, "over ipv6", -1), 9);
	expect_msg (conn, NOPOLL_TEXT_FRAME, "over ipv6", 9);
	nopoll_conn_close (conn);
	/* an IPv4 literal is not an IPv6 address */
	CHECK (nopoll_conn_new6 (cctx, "127.0.0.1", nopoll_conn_port (listener), NULL, NULL, NULL, NULL) == NULL);
	nopoll_conn_close (listener);

	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_max_frame_size (opts, 10);
	listener = nopoll_listener_new_opts6 (sctx, opts, "::1", "0");
	CHECK (listener != NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	CHECK_INT (nopoll_conn_get_max_frame_size (listener), 10);
	conn = nopoll_conn_new6 (cctx, "::1", nopoll_conn_port (listener), NULL, NULL, NULL, NULL);
	CHECK (conn != NULL && nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK_INT (nopoll_conn_send_text (conn, "0123456789A", -1), 11);
	CHECK (wait_closed (conn, 5000));
	CHECK_INT (nopoll_conn_get_close_status (conn), 1009);
	nopoll_conn_close (conn);
	nopoll_conn_close (listener);
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_listener_new_opts6 (sctx, opts, "127.0.0.1", "0") == NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
}

/* ================================================================ TLS */

static void tls_entry_points (noPollCtx * sctx, noPollConn * listener)
{
	noPollConnOpts * opts;
	noPollConn * conn;
	const char * port = nopoll_conn_port (listener);

	section ("TLS entry points: failures (tests/c/tls.c and tests/tls run them for real)");
	log_reset ();
	nopoll_log_set_handler (sctx, log_handler, NULL);
	CHECK (! nopoll_conn_is_tls_on (NULL));
	CHECK (! nopoll_conn_is_tls_on (listener));
	opts = nopoll_conn_opts_new ();
	CHECK (! nopoll_conn_opts_set_ssl_certs (opts, "/nonexistent/cert.pem", "/nonexistent/key.pem", NULL, NULL));
	CHECK (nopoll_conn_opts_set_ssl_certs (opts, "/dev/null", "/dev/null", NULL, NULL));
	CHECK (nopoll_conn_opts_set_ssl_certs (opts, "/dev/null", "/dev/null", "/dev/null", "/dev/null"));
	CHECK (! nopoll_conn_opts_set_ssl_certs (NULL, "/dev/null", "/dev/null", NULL, NULL));
	nopoll_conn_opts_set_ssl_protocol (opts, NOPOLL_METHOD_TLSV1_2);
	nopoll_conn_opts_set_ssl_protocol (opts, NOPOLL_METHOD_TLS_FLEXIBLE);
	nopoll_conn_opts_set_ssl_protocol (NULL, NOPOLL_METHOD_TLSV1);
	nopoll_conn_opts_ssl_peer_verify (opts, nopoll_true);
	nopoll_conn_opts_ssl_peer_verify (NULL, nopoll_false);
	/* a client whose certificate files hold nothing: TCP works, TLS
	 * cannot start: a connection that is not ok (not NULL), options consumed */
	conn = nopoll_conn_tls_new (sctx, opts, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	nopoll_conn_close (conn);
	CHECK (! nopoll_conn_opts_ref (opts));
	/* argument and TCP failures: NULL */
	CHECK (nopoll_conn_tls_new (NULL, NULL, "127.0.0.1", port, NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_tls_new (sctx, NULL, NULL, port, NULL, NULL, NULL, NULL) == NULL);
	/* nothing listens on ::1 at this port (or no IPv6): TCP fails */
	CHECK (nopoll_conn_tls_new6 (sctx, NULL, "::1", port, NULL, NULL, NULL, NULL) == NULL);
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_tls_new_with_socket (sctx, opts, -1, "127.0.0.1", port, NULL, NULL, NULL, NULL) == NULL);
	CHECK (! nopoll_conn_opts_ref (opts));
	/* listeners: TLS on, options consumed unless reused */
	conn = nopoll_listener_tls_new (sctx, "127.0.0.1", "0");
	CHECK (conn != NULL && nopoll_conn_is_tls_on (conn));
	CHECK (! nopoll_listener_set_certificate (conn, "/nonexistent/c.pem", "/nonexistent/k.pem", NULL));
	CHECK (! nopoll_listener_set_certificate (conn, NULL, "/dev/null", NULL));
	CHECK (nopoll_listener_set_certificate (conn, "/dev/null", "/dev/null", NULL));
	nopoll_conn_close (conn);
	CHECK (nopoll_listener_tls_new (sctx, NULL, "0") == NULL);
	/* IPv6 (NULL where the machine has none) */
	conn = nopoll_listener_tls_new6 (sctx, "::1", "0");
	CHECK (conn == NULL || nopoll_conn_is_tls_on (conn));
	if (conn)
		nopoll_conn_close (conn);
	opts = nopoll_conn_opts_new ();
	conn = nopoll_listener_tls_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (conn != NULL && nopoll_conn_is_tls_on (conn));
	CHECK (! nopoll_conn_opts_ref (opts));
	nopoll_conn_close (conn);
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_reuse (opts, nopoll_true);
	conn = nopoll_listener_tls_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (conn != NULL);
	nopoll_conn_close (conn);
	conn = nopoll_listener_tls_new_opts6 (sctx, opts, "::1", "0");
	CHECK (conn == NULL || nopoll_conn_is_tls_on (conn));
	if (conn)
		nopoll_conn_close (conn);
	conn = nopoll_listener_tls_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (conn != NULL);
	CHECK (nopoll_conn_opts_ref (opts));
	nopoll_conn_opts_unref (opts);
	nopoll_conn_opts_free (opts);
	nopoll_conn_close (conn);
	/* not a TLS listener */
	CHECK (! nopoll_listener_set_certificate (listener, "/dev/null", "/dev/null", NULL));
	CHECK (! nopoll_listener_set_certificate (NULL, "/dev/null", "/dev/null", NULL));
	/* and they say why */
	CHECK (log_has ("TLS"));
	CHECK (nopoll_conn_is_ok (listener));
	nopoll_log_set_handler (sctx, NULL, NULL);
}

/* ================================================================ NULL */

/* Every connection call with a NULL (and a made-up) handle returns the
 * documented failure value. */
static void null_handles (void)
{
	noPollConn * bogus = (noPollConn *) (void *) 0x1000;
	noPollConn * handles[2];
	char buf[8];
	int i;

	section ("NULL and invalid handles");
	handles[0] = NULL;
	handles[1] = bogus;
	for (i = 0; i < 2; i++) {
		noPollConn * c = handles[i];
		CHECK (! nopoll_conn_is_ok (c));
		CHECK (! nopoll_conn_is_ready (c));
		CHECK (! nopoll_conn_is_tls_on (c));
		CHECK (! nopoll_conn_ref (c));
		CHECK_INT (nopoll_conn_ref_count (c), -1);
		CHECK_INT (__nopoll_conn_owner_ref_count (c), -1);
		CHECK (! __nopoll_conn_transient_ref (c));
		CHECK_INT (nopoll_conn_socket (c), -1);
		CHECK_INT (nopoll_conn_get_id (c), -1);
		CHECK (nopoll_conn_ctx (c) == NULL);
		CHECK_INT (nopoll_conn_role (c), NOPOLL_ROLE_UNKNOWN);
		CHECK (nopoll_conn_host (c) == NULL);
		CHECK (nopoll_conn_port (c) == NULL);
		CHECK (nopoll_conn_get_listener (c) == NULL);
		CHECK (nopoll_conn_get_hook (c) == NULL);
		CHECK (nopoll_conn_get_origin (c) == NULL);
		CHECK (nopoll_conn_get_cookie (c) == NULL);
		CHECK (nopoll_conn_get_host_header (c) == NULL);
		CHECK (nopoll_conn_get_requested_url (c) == NULL);
		CHECK (nopoll_conn_get_requested_protocol (c) == NULL);
		CHECK (nopoll_conn_get_accepted_protocol (c) == NULL);
		CHECK (nopoll_conn_get_x_real_ip_header (c) == NULL);
		CHECK (nopoll_conn_get_close_reason (c) == NULL);
		CHECK_INT (nopoll_conn_get_close_status (c), 0);
		CHECK_INT (nopoll_conn_get_max_frame_size (c), NOPOLL_MAX_FRAME_SIZE_DEFAULT);
		CHECK (nopoll_conn_get_msg (c) == NULL);
		CHECK_INT (nopoll_conn_send_text (c, "x", 1), -1);
		CHECK_INT (nopoll_conn_send_text_fragment (c, "x", 1), -1);
		CHECK_INT (nopoll_conn_send_binary (c, "x", 1), -1);
		CHECK_INT (nopoll_conn_send_binary_fragment (c, "x", 1), -1);
		CHECK_INT (nopoll_conn_send_frame (c, 1, 1, NOPOLL_TEXT_FRAME, 1, "x", 0), -1);
		CHECK (! nopoll_conn_send_ping (c));
		CHECK (! nopoll_conn_send_pong (c, 1, "x"));
		CHECK_INT (nopoll_conn_read (c, buf, 4, nopoll_true, 10), -1);
		CHECK_INT (nopoll_conn_read_pending (c), 0);
		CHECK_INT (nopoll_conn_pending_write_bytes (c), 0);
		CHECK_INT (nopoll_conn_complete_pending_write (c), 0);
		CHECK (! nopoll_conn_wait_until_connection_ready (c, 1));
		CHECK (! nopoll_conn_accept_complete (NULL, NULL, c, 3, nopoll_false));
		nopoll_conn_set_hook (c, buf);
		nopoll_conn_set_on_msg (c, srv_on_msg, NULL);
		nopoll_conn_set_on_ready (c, cli_on_ready, NULL);
		nopoll_conn_set_on_close (c, cli_on_close, NULL);
		nopoll_conn_set_accepted_protocol (c, "x");
		nopoll_conn_set_socket (c, 3);
		__nopoll_conn_set_max_frame_size (c, NULL);
		__nopoll_conn_transient_unref (c);
		nopoll_conn_complete_handshake (c);
		nopoll_conn_shutdown (c);
		nopoll_conn_close_ext (c, 1000, "x", 1);
		nopoll_conn_close (c);
		nopoll_conn_unref (c);
	}
	CHECK (nopoll_msg_get_payload (NULL) == NULL);
	CHECK_INT (nopoll_msg_get_payload_size (NULL), -1);
	CHECK_INT (nopoll_msg_opcode (NULL), NOPOLL_UNKNOWN_OP_CODE);
	CHECK (! nopoll_msg_is_final (NULL));
	CHECK (! nopoll_msg_is_fragment (NULL));
	CHECK (! nopoll_msg_ref (NULL));
	CHECK_INT (nopoll_msg_ref_count (NULL), -1);
	CHECK (nopoll_msg_join (NULL, NULL) == NULL);
	nopoll_msg_unref (NULL);
	CHECK (! nopoll_ctx_ref (NULL));
	CHECK_INT (nopoll_ctx_ref_count (NULL), -1);
	CHECK_INT (nopoll_ctx_conns (NULL), -1);
	CHECK_INT (nopoll_ctx_get_max_frame_size (NULL), NOPOLL_MAX_FRAME_SIZE_DEFAULT);
	CHECK_INT (nopoll_conn_get_connect_timeout (NULL), 0);
	CHECK (! nopoll_log_is_enabled (NULL));
	CHECK (! nopoll_log_color_is_enabled (NULL));
	CHECK (nopoll_conn_new (NULL, "127.0.0.1", "1", NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_listener_new (NULL, "127.0.0.1", "0") == NULL);
	CHECK (nopoll_listener_new_opts (NULL, NULL, "127.0.0.1", "0") == NULL);
	nopoll_ctx_set_max_frame_size (NULL, 10);
	nopoll_ctx_set_protocol_version (NULL, 13);
	nopoll_ctx_set_on_accept (NULL, srv_on_accept, NULL);
	nopoll_ctx_set_on_open (NULL, srv_on_open, NULL);
	nopoll_ctx_set_on_ready (NULL, srv_on_ready, NULL);
	nopoll_ctx_set_on_msg (NULL, srv_on_msg, NULL);
	nopoll_conn_connect_timeout (NULL, 10);
	nopoll_log_enable (NULL, nopoll_true);
	nopoll_log_color_enable (NULL, nopoll_true);
	nopoll_log_set_handler (NULL, log_handler, NULL);
	nopoll_ctx_unref (NULL);
}

/* ================================================================ messages */

static void messages (void)
{
	noPollMsg * a = nopoll_msg_new ();
	noPollMsg * b = nopoll_msg_new ();
	noPollMsg * j;

	section ("messages");
	CHECK (a != NULL && b != NULL && a != b);
	CHECK_INT (nopoll_msg_ref_count (a), 1);
	CHECK (nopoll_msg_get_payload (a) == NULL);
	CHECK_INT (nopoll_msg_get_payload_size (a), 0);
	/* all fields zero, as upstream: opcode 0, not final, not a fragment */
	CHECK_INT (nopoll_msg_opcode (a), NOPOLL_CONTINUATION_FRAME);
	CHECK (! nopoll_msg_is_final (a));
	CHECK (! nopoll_msg_is_fragment (a));
	j = nopoll_msg_join (a, NULL);
	CHECK (j == a);
	CHECK_INT (nopoll_msg_ref_count (a), 2);
	nopoll_msg_unref (j);
	j = nopoll_msg_join (NULL, b);
	CHECK (j == b);
	nopoll_msg_unref (j);
	j = nopoll_msg_join (a, b);
	CHECK (j != NULL && j != a && j != b);
	CHECK_INT (nopoll_msg_get_payload_size (j), 0);
	nopoll_msg_unref (j);
	nopoll_msg_unref (a);
	nopoll_msg_unref (b);
	CHECK_INT (nopoll_msg_ref_count (a), -1);
}

/* ================================================================ main */

static int loop_returned = 0;

/* Stops the loop of `arg` from another thread; again every 50 ms until it
 * returned: a stop before nopoll_loop_wait has started is lost (the loop
 * starts by clearing it, as upstream's does). */
static void * stopper (void * arg)
{
	do {
		sleep_ms (50);
		nopoll_loop_stop ((noPollCtx *) arg);
	} while (! shared_get (&loop_returned));
	return NULL;
}

int main (void)
{
	noPollCtx * sctx;
	noPollCtx * cctx;
	noPollConn * listener;
	LoopThread lt;
	pthread_t t;
	char port[16];
	double t0;

	compat_init ("coverage", 120);
	memory_and_strings ();
	base64 ();
	bits_and_time ();
	nonce_mask_key ();
	mutexes ();
	contexts ();
	certificate_store ();
	messages ();
	null_handles ();

	section ("listeners");
	sctx = server_ctx ();
	cctx = nopoll_ctx_new ();
	CHECK (nopoll_listener_new (sctx, NULL, "0") == NULL);
	CHECK (nopoll_listener_new (sctx, "127.0.0.1", NULL) == NULL);
	CHECK (nopoll_listener_new (sctx, "", "0") == NULL);
	CHECK (nopoll_listener_new (sctx, "127.0.0.1", "") == NULL);
	CHECK (nopoll_listener_new (sctx, "192.0.2.123", "0") == NULL);
	listener = nopoll_listener_new (sctx, "127.0.0.1", "0");
	CHECK (listener != NULL && nopoll_conn_is_ok (listener));
	CHECK_INT (nopoll_conn_role (listener), NOPOLL_ROLE_MAIN_LISTENER);
	CHECK_INT (nopoll_conn_ref_count (listener), 2);
	CHECK_STR (nopoll_conn_host (listener), "127.0.0.1");
	CHECK (! nopoll_conn_is_ready (listener));
	CHECK (nopoll_conn_get_msg (listener) == NULL);
	CHECK_INT (nopoll_conn_send_text (listener, "x", 1), -1);
	strcpy (port, nopoll_conn_port (listener));
	CHECK (atoi (port) > 0);
	CHECK_INT (nopoll_ctx_conns (sctx), 1);
	CHECK_INT (nopoll_ctx_ref_count (sctx), 2);
	CHECK (nopoll_conn_new (cctx, "", port, NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_new (cctx, NULL, port, NULL, NULL, NULL, NULL) == NULL);
	/* nothing listens there (the port of a socket closed just now) */
	{
		char closed_port[16];
		int fd = raw_listen_text (closed_port);
		close (fd);
		CHECK (nopoll_conn_new (cctx, "127.0.0.1", closed_port, NULL, NULL, NULL, NULL) == NULL);
	}

	section ("loop");
	/* LONG_MAX µs: runs until stopped */
	CHECK (spawn (&t, stopper, sctx));
	t0 = now_ms ();
	CHECK_INT (nopoll_loop_wait (sctx, LONG_MAX), 0);
	CHECK (now_ms () - t0 < (double) ms (5000));
	shared_set (&loop_returned, 1);
	pthread_join (t, NULL);
	CHECK (loop_start (&lt, sctx));

	client_basics (cctx, listener, port);
	client_more (sctx, cctx, port);
	options (sctx, cctx, port);
	port_sharing (sctx, cctx);
	manual_accept ();
	client_with_socket (cctx, port);
	ipv6 (sctx, cctx);
	tls_entry_points (sctx, listener);

	section ("teardown");
	/* a second loop on the same context is refused while one runs */
	CHECK_INT (nopoll_loop_wait (sctx, 1000), -4);
	CHECK_INT (loop_stop (&lt), 0);
	nopoll_conn_close (listener);
	CHECK (! nopoll_conn_is_ok (listener));
	nopoll_ctx_unref (cctx);
	nopoll_ctx_unref (sctx);
	nopoll_cleanup_library ();
	return compat_done ();
}
