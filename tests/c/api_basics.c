/*
 * api_basics: everything that needs no peer.
 *
 * - every function of the C API core called with NULL (and other invalid)
 *   arguments returns its documented failure value and does not crash;
 * - ctx: new / ref / unref / ref_count / conns, max frame size (get/set,
 *   ignored out-of-range values), connect timeout, protocol version;
 * - msg: new / ref / unref / ref_count / join, payload accessors;
 * - log: enable / is_enabled / color_enable / color_is_enabled / set_handler;
 * - memory: nopoll_calloc / realloc / free / strdup;
 * - threads: nopoll_mutex_* without handlers (no-ops), then with pthread
 *   handlers installed through nopoll_thread_handlers (the callbacks run);
 * - nopoll_conn_set_sock_block on a raw socket (fcntl flags change);
 * - nopoll_cleanup_library, then the library still works.
 */
#include "check.h"

static int mutex_created = 0;
static int mutex_destroyed = 0;
static int mutex_locked = 0;
static int mutex_unlocked = 0;

static noPollPtr test_mutex_create (void)
{
	pthread_mutex_t * m = (pthread_mutex_t *) malloc (sizeof (pthread_mutex_t));
	if (m == NULL)
		return NULL;
	pthread_mutex_init (m, NULL);
	shared_add (&mutex_created, 1);
	return m;
}

static void test_mutex_destroy (noPollPtr p)
{
	pthread_mutex_destroy ((pthread_mutex_t *) p);
	free (p);
	shared_add (&mutex_destroyed, 1);
}

static void test_mutex_lock (noPollPtr p)
{
	pthread_mutex_lock ((pthread_mutex_t *) p);
	shared_add (&mutex_locked, 1);
}

static void test_mutex_unlock (noPollPtr p)
{
	shared_add (&mutex_unlocked, 1);
	pthread_mutex_unlock ((pthread_mutex_t *) p);
}

static int log_lines = 0;

static void log_handler (noPollCtx * ctx, noPollDebugLevel level, const char * log_msg, noPollPtr user_data)
{
	(void) ctx;
	(void) level;
	CHECK (log_msg != NULL);
	CHECK (user_data == (noPollPtr) &log_lines);
	shared_add (&log_lines, 1);
}

static nopoll_bool never_called (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) conn;
	(void) user_data;
	CHECK (0);
	return nopoll_false;
}

static void null_arguments (void)
{
	char buf[16];
	note ("NULL arguments");
	/* ctx */
	CHECK (! nopoll_ctx_ref (NULL));
	CHECK_INT (nopoll_ctx_ref_count (NULL), -1);
	CHECK_INT (nopoll_ctx_conns (NULL), -1);
	nopoll_ctx_unref (NULL);
	nopoll_ctx_set_on_accept (NULL, NULL, NULL);
	nopoll_ctx_set_on_open (NULL, NULL, NULL);
	nopoll_ctx_set_on_ready (NULL, NULL, NULL);
	nopoll_ctx_set_on_msg (NULL, NULL, NULL);
	CHECK (nopoll_ctx_foreach_conn (NULL, NULL, NULL) == NULL);
	nopoll_ctx_set_max_frame_size (NULL, 100);
	CHECK_INT (nopoll_ctx_get_max_frame_size (NULL), NOPOLL_MAX_FRAME_SIZE_DEFAULT);
	nopoll_ctx_set_protocol_version (NULL, 13);

	/* listeners and clients */
	CHECK (nopoll_listener_new (NULL, "127.0.0.1", "0") == NULL);
	CHECK (nopoll_listener_new6 (NULL, "::1", "0") == NULL);
	CHECK (nopoll_listener_new_opts (NULL, NULL, "127.0.0.1", "0") == NULL);
	CHECK (nopoll_listener_new_opts6 (NULL, NULL, "::1", "0") == NULL);
	CHECK (nopoll_conn_new (NULL, "127.0.0.1", "1", NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_new6 (NULL, "::1", "1", NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_new_opts (NULL, NULL, "127.0.0.1", "1", NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_accept (NULL, NULL) == NULL);

	/* conn */
	CHECK (! nopoll_conn_is_ok (NULL));
	CHECK (! nopoll_conn_is_ready (NULL));
	CHECK (! nopoll_conn_wait_until_connection_ready (NULL, 1));
	CHECK_INT (nopoll_conn_send_text (NULL, "x", 1), -1);
	CHECK_INT (nopoll_conn_send_text_fragment (NULL, "x", 1), -1);
	CHECK_INT (nopoll_conn_send_binary (NULL, "x", 1), -1);
	CHECK_INT (nopoll_conn_send_binary_fragment (NULL, "x", 1), -1);
	CHECK (! nopoll_conn_send_ping (NULL));
	CHECK (! nopoll_conn_send_pong (NULL, 1, (noPollPtr) "x"));
	CHECK (nopoll_conn_get_msg (NULL) == NULL);
	CHECK_INT (nopoll_conn_read (NULL, buf, sizeof (buf), nopoll_false, 0), -1);
	nopoll_conn_close (NULL);
	nopoll_conn_close_ext (NULL, 1000, "bye", 3);
	nopoll_conn_shutdown (NULL);
	CHECK (! nopoll_conn_ref (NULL));
	nopoll_conn_unref (NULL);
	CHECK_INT (nopoll_conn_ref_count (NULL), -1);
	CHECK_INT (nopoll_conn_get_id (NULL), -1);
	CHECK_INT (nopoll_conn_role (NULL), NOPOLL_ROLE_UNKNOWN);
	CHECK_INT (nopoll_conn_socket (NULL), -1);
	CHECK (nopoll_conn_host (NULL) == NULL);
	CHECK (nopoll_conn_port (NULL) == NULL);
	CHECK (nopoll_conn_ctx (NULL) == NULL);
	CHECK (nopoll_conn_get_listener (NULL) == NULL);
	nopoll_conn_set_on_msg (NULL, NULL, NULL);
	nopoll_conn_set_on_close (NULL, NULL, NULL);
	nopoll_conn_set_on_ready (NULL, never_called, NULL);
	nopoll_conn_set_hook (NULL, (noPollPtr) buf);
	CHECK (nopoll_conn_get_hook (NULL) == NULL);
	CHECK_INT (nopoll_conn_get_close_status (NULL), 0);
	CHECK (nopoll_conn_get_close_reason (NULL) == NULL);
	CHECK (nopoll_conn_get_accepted_protocol (NULL) == NULL);
	CHECK (nopoll_conn_get_requested_protocol (NULL) == NULL);
	nopoll_conn_set_accepted_protocol (NULL, "chat");
	CHECK (nopoll_conn_get_origin (NULL) == NULL);
	CHECK (nopoll_conn_get_host_header (NULL) == NULL);
	CHECK (nopoll_conn_get_cookie (NULL) == NULL);
	CHECK (nopoll_conn_get_requested_url (NULL) == NULL);
	CHECK_INT (nopoll_conn_pending_write_bytes (NULL), 0);
	CHECK_INT (nopoll_conn_complete_pending_write (NULL), 0);
	CHECK_INT (nopoll_conn_flush_writes (NULL, 1000, 0), 0);
	CHECK_INT (nopoll_conn_flush_writes (NULL, 1000, 7), 7);
	CHECK (! nopoll_conn_set_sock_block (-1, nopoll_true));
	nopoll_conn_connect_timeout (NULL, 1000);
	CHECK_INT (nopoll_conn_get_connect_timeout (NULL), 0);
	CHECK_INT (nopoll_conn_get_max_frame_size (NULL), NOPOLL_MAX_FRAME_SIZE_DEFAULT);

	/* msg */
	CHECK (nopoll_msg_get_payload (NULL) == NULL);
	CHECK_INT (nopoll_msg_get_payload_size (NULL), -1);
	CHECK_INT (nopoll_msg_opcode (NULL), NOPOLL_UNKNOWN_OP_CODE);
	CHECK (! nopoll_msg_is_final (NULL));
	CHECK (! nopoll_msg_is_fragment (NULL));
	CHECK (! nopoll_msg_ref (NULL));
	nopoll_msg_unref (NULL);
	CHECK_INT (nopoll_msg_ref_count (NULL), -1);
	CHECK (nopoll_msg_join (NULL, NULL) == NULL);

	/* loop, log, memory */
	CHECK_INT (nopoll_loop_wait (NULL, 0), -2);
	nopoll_loop_stop (NULL);
	nopoll_log_enable (NULL, nopoll_true);
	CHECK (! nopoll_log_is_enabled (NULL));
	nopoll_log_color_enable (NULL, nopoll_true);
	CHECK (! nopoll_log_color_is_enabled (NULL));
	nopoll_log_set_handler (NULL, log_handler, NULL);
	nopoll_free (NULL);
	CHECK (nopoll_strdup (NULL) == NULL);
}

/* Handles that were never handed out resolve to nothing (checked tokens). */
static void bogus_handles (void)
{
	char buf[64];
	noPollConn * fake_conn = (noPollConn *) (void *) buf;
	noPollCtx * fake_ctx = (noPollCtx *) (void *) (buf + 8);
	noPollMsg * fake_msg = (noPollMsg *) (void *) (buf + 16);
	note ("bogus handles");
	memset (buf, 0x5a, sizeof (buf));
	CHECK (! nopoll_conn_is_ok (fake_conn));
	CHECK_INT (nopoll_conn_ref_count (fake_conn), -1);
	CHECK_INT (nopoll_conn_send_text (fake_conn, "x", 1), -1);
	nopoll_conn_close (fake_conn);
	CHECK_INT (nopoll_ctx_ref_count (fake_ctx), -1);
	nopoll_ctx_unref (fake_ctx);
	CHECK_INT (nopoll_msg_ref_count (fake_msg), -1);
	nopoll_msg_unref (fake_msg);
	/* untouched */
	CHECK_INT ((unsigned char) buf[0], 0x5a);
}

static void ctx_basics (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollCtx * ctx2 = nopoll_ctx_new ();
	note ("ctx");
	CHECK (ctx != NULL);
	CHECK (ctx2 != NULL && ctx2 != ctx);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
	CHECK (nopoll_ctx_ref (ctx));
	CHECK_INT (nopoll_ctx_ref_count (ctx), 2);
	nopoll_ctx_unref (ctx);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);

	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), NOPOLL_MAX_FRAME_SIZE_DEFAULT);
	nopoll_ctx_set_max_frame_size (ctx, 4096);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), 4096);
	nopoll_ctx_set_max_frame_size (ctx, 0);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), 4096);
	nopoll_ctx_set_max_frame_size (ctx, -5);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx), 4096);
	CHECK_INT (nopoll_ctx_get_max_frame_size (ctx2), NOPOLL_MAX_FRAME_SIZE_DEFAULT);

	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 20000000L);
	nopoll_conn_connect_timeout (ctx, 250000);
	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 250000);
	nopoll_conn_connect_timeout (ctx, 0);
	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 20000000L);

	/* Version changes are checked on the wire in client.c. */
	nopoll_ctx_set_protocol_version (ctx, 13);

	CHECK (nopoll_ctx_foreach_conn (ctx, never_called, NULL) == NULL);
	CHECK (nopoll_ctx_foreach_conn (ctx, NULL, NULL) == NULL);

	/* invalid arguments with a valid ctx */
	CHECK (nopoll_listener_new (ctx, NULL, "0") == NULL);
	CHECK (nopoll_listener_new (ctx, "127.0.0.1", NULL) == NULL);
	CHECK (nopoll_listener_new (ctx, "", "0") == NULL);
	CHECK (nopoll_listener_new6 (ctx, "127.0.0.1", "0") == NULL);
	CHECK (nopoll_conn_new (ctx, NULL, "80", NULL, NULL, NULL, NULL) == NULL);
	CHECK (nopoll_conn_accept (ctx, NULL) == NULL);
	CHECK_INT (nopoll_loop_wait (ctx, -1), -2);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);

	nopoll_ctx_unref (ctx2);
	CHECK_INT (nopoll_ctx_ref_count (ctx2), -1);
	nopoll_ctx_unref (ctx);
	CHECK_INT (nopoll_ctx_ref_count (ctx), -1);
	/* a stale handle is harmless */
	nopoll_ctx_unref (ctx);
	CHECK (! nopoll_ctx_ref (ctx));
}

static void msg_basics (void)
{
	noPollMsg * a = nopoll_msg_new ();
	noPollMsg * b = nopoll_msg_new ();
	noPollMsg * j;
	note ("msg");
	CHECK (a != NULL && b != NULL && a != b);
	CHECK_INT (nopoll_msg_ref_count (a), 1);
	CHECK (nopoll_msg_get_payload (a) == NULL);
	CHECK_INT (nopoll_msg_get_payload_size (a), 0);
	CHECK (nopoll_msg_ref (a));
	CHECK_INT (nopoll_msg_ref_count (a), 2);
	nopoll_msg_unref (a);
	CHECK_INT (nopoll_msg_ref_count (a), 1);

	/* join (a, NULL) is a with one more reference */
	j = nopoll_msg_join (a, NULL);
	CHECK (j == a);
	CHECK_INT (nopoll_msg_ref_count (a), 2);
	nopoll_msg_unref (j);
	j = nopoll_msg_join (NULL, b);
	CHECK (j == b);
	CHECK_INT (nopoll_msg_ref_count (b), 2);
	nopoll_msg_unref (j);
	/* two empty messages give a new empty one; inputs untouched */
	j = nopoll_msg_join (a, b);
	CHECK (j != NULL && j != a && j != b);
	CHECK_INT (nopoll_msg_ref_count (j), 1);
	CHECK_INT (nopoll_msg_get_payload_size (j), 0);
	CHECK_INT (nopoll_msg_ref_count (a), 1);
	CHECK_INT (nopoll_msg_ref_count (b), 1);
	nopoll_msg_unref (j);
	CHECK_INT (nopoll_msg_ref_count (j), -1);

	nopoll_msg_unref (a);
	nopoll_msg_unref (b);
	CHECK_INT (nopoll_msg_ref_count (a), -1);
	CHECK_INT (nopoll_msg_get_payload_size (a), -1);
	/* joins of received messages (payloads, NUL) are in client.c */
}

static void log_basics (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	note ("log");
	CHECK (! nopoll_log_is_enabled (ctx));
	CHECK (! nopoll_log_color_is_enabled (ctx));
	nopoll_log_enable (ctx, nopoll_true);
	CHECK (nopoll_log_is_enabled (ctx));
	nopoll_log_color_enable (ctx, nopoll_true);
	CHECK (nopoll_log_color_is_enabled (ctx));
	nopoll_log_color_enable (ctx, nopoll_false);
	CHECK (! nopoll_log_color_is_enabled (ctx));
	nopoll_log_enable (ctx, nopoll_false);
	CHECK (! nopoll_log_is_enabled (ctx));

	/* a failure the library logs (bind to a port in use) reaches the handler */
	nopoll_log_set_handler (ctx, log_handler, &log_lines);
	{
		noPollConn * l1 = nopoll_listener_new (ctx, "127.0.0.1", "0");
		noPollConn * l2;
		CHECK (nopoll_conn_is_ok (l1));
		l2 = nopoll_listener_new (ctx, "127.0.0.1", nopoll_conn_port (l1));
		CHECK (l2 == NULL);
		CHECK (shared_get (&log_lines) > 0);
		/* removing the handler stops the calls */
		nopoll_log_set_handler (ctx, NULL, NULL);
		shared_set (&log_lines, 0);
		l2 = nopoll_listener_new (ctx, "127.0.0.1", nopoll_conn_port (l1));
		CHECK (l2 == NULL);
		CHECK_INT (shared_get (&log_lines), 0);
		nopoll_conn_close (l1);
	}
	nopoll_ctx_unref (ctx);
}

/* Runs a failing listen (port in use) on ctx with stdout captured; what
 * was written to stdout, in buf. */
static void captured_failure (noPollCtx * ctx, const char * busy_port, char * buf, int cap)
{
	int fds[2], saved, n = 0;
	ssize_t r;
	noPollConn * l;
	fflush (stdout);
	saved = dup (1);
	CHECK (pipe (fds) == 0);
	dup2 (fds[1], 1);
	l = nopoll_listener_new (ctx, "127.0.0.1", busy_port);
	CHECK (l == NULL);
	fflush (stdout);
	dup2 (saved, 1);
	close (saved);
	close (fds[1]);
	while (n < cap - 1 && (r = read (fds[0], buf + n, (size_t) (cap - 1 - n))) > 0)
		n += (int) r;
	buf[n] = '\0';
	close (fds[0]);
}

static void console_log (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l1 = nopoll_listener_new (ctx, "127.0.0.1", "0");
	char port[16];
	char out[4096];
	note ("console log (nopoll_log_enable, nopoll_log_color_enable)");
	strcpy (port, nopoll_conn_port (l1));
	/* off by default: nothing on stdout */
	captured_failure (ctx, port, out, sizeof (out));
	CHECK_STR (out, "");
	nopoll_log_enable (ctx, nopoll_true);
	captured_failure (ctx, port, out, sizeof (out));
	CHECK (strstr (out, "nopoll") != NULL);
	CHECK (strchr (out, '\033') == NULL);
	nopoll_log_color_enable (ctx, nopoll_true);
	captured_failure (ctx, port, out, sizeof (out));
	CHECK (strstr (out, "nopoll") != NULL);
	CHECK (strchr (out, '\033') != NULL);
	/* a handler takes the lines instead of stdout */
	shared_set (&log_lines, 0);
	nopoll_log_set_handler (ctx, log_handler, &log_lines);
	captured_failure (ctx, port, out, sizeof (out));
	CHECK_STR (out, "");
	CHECK (shared_get (&log_lines) > 0);
	nopoll_log_enable (ctx, nopoll_false);
	nopoll_conn_close (l1);
	nopoll_ctx_unref (ctx);
}

static void memory_basics (void)
{
	char * p;
	char * s;
	int * ints;
	int i, zero = 1;
	note ("memory");
	ints = (int *) nopoll_calloc (64, sizeof (int));
	CHECK (ints != NULL);
	for (i = 0; i < 64; i++)
		if (ints[i] != 0)
			zero = 0;
	CHECK (zero);
	for (i = 0; i < 64; i++)
		ints[i] = i;
	ints = (int *) nopoll_realloc (ints, 4096 * sizeof (int));
	CHECK (ints != NULL);
	CHECK_INT (ints[63], 63);
	ints[4095] = 7;
	nopoll_free (ints);

	p = nopoll_new (char, 10);
	CHECK (p != NULL && p[9] == 0);
	nopoll_free (p);

	s = nopoll_strdup ("hello nopoll");
	CHECK_STR (s, "hello nopoll");
	/* libc memory: the caller may free it with free() too */
	s = (char *) nopoll_realloc (s, 100);
	CHECK_STR (s, "hello nopoll");
	free (s);
	s = nopoll_strdup ("");
	CHECK_STR (s, "");
	nopoll_free (s);
}

static void mutex_basics (void)
{
	noPollPtr m;
	noPollCtx * ctx;
	note ("mutex handlers");
	/* without handlers: NULL and no-ops */
	CHECK (nopoll_mutex_create () == NULL);
	nopoll_mutex_lock (NULL);
	nopoll_mutex_unlock (NULL);
	nopoll_mutex_destroy (NULL);

	nopoll_thread_handlers (test_mutex_create, test_mutex_destroy, test_mutex_lock, test_mutex_unlock);
	m = nopoll_mutex_create ();
	CHECK (m != NULL);
	CHECK_INT (shared_get (&mutex_created), 1);
	nopoll_mutex_lock (m);
	CHECK_INT (shared_get (&mutex_locked), 1);
	nopoll_mutex_unlock (m);
	CHECK_INT (shared_get (&mutex_unlocked), 1);
	/* the lock really is the pthread one: another thread cannot take it */
	nopoll_mutex_lock (m);
	CHECK_INT (pthread_mutex_trylock ((pthread_mutex_t *) m), EBUSY);
	nopoll_mutex_unlock (m);
	nopoll_mutex_destroy (m);
	CHECK_INT (shared_get (&mutex_destroyed), 1);

	/* objects created with handlers installed work */
	ctx = nopoll_ctx_new ();
	CHECK (ctx != NULL);
	CHECK (nopoll_ctx_ref (ctx));
	nopoll_ctx_unref (ctx);
	nopoll_ctx_unref (ctx);

	/* NULLs uninstall */
	nopoll_thread_handlers (NULL, NULL, NULL, NULL);
	CHECK (nopoll_mutex_create () == NULL);
	/* a partial set is not installed */
	nopoll_thread_handlers (test_mutex_create, NULL, test_mutex_lock, test_mutex_unlock);
	CHECK (nopoll_mutex_create () == NULL);
	nopoll_thread_handlers (NULL, NULL, NULL, NULL);
	printf ("mutex callbacks: %d created, %d destroyed, %d locks\n", shared_get (&mutex_created),
		shared_get (&mutex_destroyed), shared_get (&mutex_locked));
	/* every mutex created through the callbacks was destroyed */
	CHECK_INT (shared_get (&mutex_created), shared_get (&mutex_destroyed));
	CHECK_INT (shared_get (&mutex_locked), shared_get (&mutex_unlocked));
}

static void sock_block (void)
{
	int fd = socket (AF_INET, SOCK_STREAM, 0);
	note ("nopoll_conn_set_sock_block");
	CHECK (fd >= 0);
	CHECK (nopoll_conn_set_sock_block (fd, nopoll_false));
	CHECK ((fcntl (fd, F_GETFL) & O_NONBLOCK) != 0);
	CHECK (nopoll_conn_set_sock_block (fd, nopoll_true));
	CHECK ((fcntl (fd, F_GETFL) & O_NONBLOCK) == 0);
	close (fd);
}

static void after_cleanup (void)
{
	noPollCtx * ctx;
	noPollConn * l;
	note ("nopoll_cleanup_library");
	nopoll_cleanup_library ();
	/* the library re-initialises what it needs */
	ctx = nopoll_ctx_new ();
	CHECK (ctx != NULL);
	l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (l));
	CHECK (atoi (nopoll_conn_port (l)) > 0);
	nopoll_conn_close (l);
	nopoll_ctx_unref (ctx);
	nopoll_cleanup_library ();
	nopoll_cleanup_library ();
}

int main (void)
{
	check_init ("api_basics", 30);
	null_arguments ();
	bogus_handles ();
	ctx_basics ();
	msg_basics ();
	log_basics ();
	console_log ();
	memory_basics ();
	mutex_basics ();
	sock_block ();
	after_cleanup ();
	return check_done ();
}
