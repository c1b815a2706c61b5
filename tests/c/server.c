/*
 * server: nopoll listeners served by nopoll_loop_wait in a thread, with
 * nopoll clients (another ctx) in the main thread.
 *
 * - listener accessors (role, host, port chosen by the OS, refs);
 * - on_accept / on_open / on_ready / on_msg (ctx) handlers run with the
 *   right ctx and conn; on_accept and on_open can refuse a connection;
 * - what the server sees of the handshake: url, Host, Origin, Cookie,
 *   requested protocols; set_accepted_protocol in on_open reaches the
 *   client; accepted conns know their listener;
 * - messages arrive through loop callbacks (echo): text, binary, a
 *   fragmented message delivered whole; a per-conn on_msg overrides the
 *   ctx one; on_close of a server conn sees the client's status + reason;
 * - nopoll_ctx_foreach_conn (finds a conn, visits all), nopoll_ctx_conns;
 * - a ping from a raw client is answered with a pong with its payload;
 * - nopoll_listener_new_opts: its max frame size applies to accepted conns;
 * - nopoll_listener_new6 / _new_opts6 with nopoll_conn_new6 (skipped when
 *   ::1 is unavailable);
 * - nopoll_conn_accept without a loop, both sides driven by hand.
 */
#include "check.h"

static noPollCtx * sctx;     /* server ctx, its loop runs in a thread */
static noPollCtx * cctx;     /* client ctx, used from the main thread */
static noPollConn * listener;
static char port[16];
static LoopThread lt;

static int accepts = 0;
static int refuse_accept = 0;
static int opens = 0;
static int readies = 0;
static int closes = 0;
static int ctx_msgs = 0;

/* What the server saw in on_open / on_ready / on_close (shared_lock). */
static char seen_url[128];
static char seen_origin[128];
static char seen_host[128];
static char seen_cookie[128];
static char seen_protocol[128];
static int  seen_role;
static int  seen_listener_ok;
static int  seen_ctx_ok;
static int  seen_max_frame;
static int  seen_close_status;
static char seen_close_reason[128];

static void copy_str (char * dst, const char * src)
{
	pthread_mutex_lock (&shared_lock);
	if (src == NULL)
		strcpy (dst, "(null)");
	else {
		strncpy (dst, src, 127);
		dst[127] = '\0';
	}
	pthread_mutex_unlock (&shared_lock);
}

static nopoll_bool on_accept (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	CHECK (ctx == sctx);
	CHECK (user_data == (noPollPtr) &accepts);
	CHECK_INT (nopoll_conn_role (conn), NOPOLL_ROLE_LISTENER);
	shared_add (&accepts, 1);
	return shared_get (&refuse_accept) ? nopoll_false : nopoll_true;
}

static nopoll_bool on_open (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	const char * url = nopoll_conn_get_requested_url (conn);
	(void) user_data;
	CHECK (ctx == sctx);
	shared_add (&opens, 1);
	copy_str (seen_url, url);
	copy_str (seen_origin, nopoll_conn_get_origin (conn));
	copy_str (seen_host, nopoll_conn_get_host_header (conn));
	copy_str (seen_cookie, nopoll_conn_get_cookie (conn));
	copy_str (seen_protocol, nopoll_conn_get_requested_protocol (conn));
	shared_set (&seen_role, nopoll_conn_role (conn));
	shared_set (&seen_listener_ok, nopoll_conn_get_listener (conn) == listener);
	shared_set (&seen_ctx_ok, nopoll_conn_ctx (conn) == sctx);
	if (url != NULL && strcmp (url, "/forbidden") == 0)
		return nopoll_false;
	if (nopoll_conn_get_requested_protocol (conn) != NULL
	    && strstr (nopoll_conn_get_requested_protocol (conn), "superchat") != NULL)
		nopoll_conn_set_accepted_protocol (conn, "superchat");
	return nopoll_true;
}

static void special_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	char reply[128];
	(void) ctx;
	CHECK (user_data == (noPollPtr) &readies);
	sprintf (reply, "special:%.100s", (const char *) nopoll_msg_get_payload (msg));
	nopoll_conn_send_text (conn, reply, -1);
}

static void server_on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) user_data;
	CHECK (ctx == sctx);
	shared_set (&seen_close_status, nopoll_conn_get_close_status (conn));
	copy_str (seen_close_reason, nopoll_conn_get_close_reason (conn));
	shared_add (&closes, 1);
}

static nopoll_bool on_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	const char * url = nopoll_conn_get_requested_url (conn);
	(void) user_data;
	CHECK (ctx == sctx);
	shared_set (&seen_max_frame, (int) nopoll_conn_get_max_frame_size (conn));
	if (url != NULL && strcmp (url, "/special") == 0)
		nopoll_conn_set_on_msg (conn, special_on_msg, &readies);
	nopoll_conn_set_on_close (conn, server_on_close, NULL);
	shared_add (&readies, 1);
	/* sending from on_ready is fine: the 101 goes first */
	if (url != NULL && strcmp (url, "/welcome") == 0)
		CHECK_INT (nopoll_conn_send_text (conn, "welcome", 7), 7);
	return nopoll_true;
}

/* Echo: text as text, binary as binary. */
static void on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * payload = (const char *) nopoll_msg_get_payload (msg);
	long size = nopoll_msg_get_payload_size (msg);
	long rc;
	(void) user_data;
	CHECK (ctx == sctx);
	CHECK (nopoll_msg_is_final (msg));
	shared_add (&ctx_msgs, 1);
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		rc = nopoll_conn_send_binary (conn, payload, size);
	else
		rc = nopoll_conn_send_text (conn, payload == NULL ? "" : payload, size);
	/* a short write (big messages) leaves the rest to the loop */
	if (rc != size) {
		CHECK (rc >= 0 || rc == -2);
		CHECK_INT (errno, NOPOLL_EWOULDBLOCK);
	}
}

static noPollConn * client (const char * url, const char * protocols, const char * origin)
{
	noPollConn * conn = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, url, protocols, origin);
	CHECK (conn != NULL);
	return conn;
}

/* Sends text and checks the echo. */
static int echo (noPollConn * conn, const char * text)
{
	noPollMsg * msg;
	int ok;
	if (nopoll_conn_send_text (conn, text, -1) != (int) strlen (text))
		return 0;
	msg = wait_msg (conn, scaled (5000, 30000));
	if (msg == NULL)
		return 0;
	ok = nopoll_msg_get_payload_size (msg) == (long) strlen (text)
		&& strcmp ((const char *) nopoll_msg_get_payload (msg), text) == 0;
	nopoll_msg_unref (msg);
	return ok;
}

static void listener_accessors (void)
{
	note ("listener");
	CHECK (nopoll_conn_is_ok (listener));
	CHECK (! nopoll_conn_is_ready (listener));
	CHECK_INT (nopoll_conn_role (listener), NOPOLL_ROLE_MAIN_LISTENER);
	CHECK_STR (nopoll_conn_host (listener), "127.0.0.1");
	CHECK (atoi (nopoll_conn_port (listener)) > 0);
	CHECK (nopoll_conn_socket (listener) >= 0);
	CHECK (nopoll_conn_ctx (listener) == sctx);
	CHECK (nopoll_conn_get_listener (listener) == NULL);
	CHECK_INT (nopoll_conn_ref_count (listener), 2);
	CHECK_INT (nopoll_ctx_conns (sctx), 1);
	/* the listener holds a ctx reference */
	CHECK_INT (nopoll_ctx_ref_count (sctx), 2);
	CHECK (nopoll_conn_get_msg (listener) == NULL);
}

static void handshake_seen_by_server (void)
{
	noPollConnOpts * opts;
	noPollConn * conn;
	char v[128];
	note ("handshake as the server sees it");
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_cookie (opts, "theme=dark");
	conn = nopoll_conn_new_opts (cctx, opts, "127.0.0.1", port, "localhost", "/echo?a=b",
				     "chat, superchat", "http://origin.test");
	CHECK (conn != NULL);
	CHECK (client_ready (conn));
	CHECK (wait_for (&readies, 1, scaled (5000, 30000)));
	CHECK_INT (shared_get (&accepts), 1);
	CHECK_INT (shared_get (&opens), 1);
	pthread_mutex_lock (&shared_lock);
	strcpy (v, seen_url);
	pthread_mutex_unlock (&shared_lock);
	CHECK_STR (v, "/echo?a=b");
	copy_str (v, seen_origin);
	CHECK_STR (v, "http://origin.test");
	copy_str (v, seen_cookie);
	CHECK_STR (v, "theme=dark");
	copy_str (v, seen_protocol);
	CHECK_STR (v, "chat, superchat");
	copy_str (v, seen_host);
	CHECK (strncmp (v, "localhost", 9) == 0);
	CHECK_INT (shared_get (&seen_role), NOPOLL_ROLE_LISTENER);
	CHECK (shared_get (&seen_listener_ok));
	CHECK (shared_get (&seen_ctx_ok));
	/* the protocol chosen in on_open is what the client got */
	CHECK_STR (nopoll_conn_get_accepted_protocol (conn), "superchat");

	note ("echo through loop callbacks");
	CHECK (echo (conn, "hello"));
	CHECK (echo (conn, "second message"));
	{
		char bin[1000];
		noPollMsg * msg;
		int i;
		for (i = 0; i < (int) sizeof (bin); i++)
			bin[i] = (char) (255 - i % 256);
		CHECK_INT (nopoll_conn_send_binary (conn, bin, sizeof (bin)), (int) sizeof (bin));
		msg = wait_msg (conn, scaled (5000, 30000));
		CHECK (msg != NULL);
		CHECK_INT (nopoll_msg_opcode (msg), NOPOLL_BINARY_FRAME);
		CHECK_INT (nopoll_msg_get_payload_size (msg), (long) sizeof (bin));
		CHECK (msg != NULL && memcmp (nopoll_msg_get_payload (msg), bin, sizeof (bin)) == 0);
		nopoll_msg_unref (msg);
	}
	/* fragments are joined before the server's on_msg */
	CHECK_INT (nopoll_conn_send_text_fragment (conn, "in ", 3), 3);
	CHECK_INT (nopoll_conn_send_text_fragment (conn, "three ", 6), 6);
	CHECK_INT (nopoll_conn_send_text (conn, "parts", 5), 5);
	{
		noPollMsg * msg = wait_msg (conn, scaled (5000, 30000));
		CHECK (msg != NULL);
		CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "in three parts");
		nopoll_msg_unref (msg);
	}
	CHECK_INT (shared_get (&ctx_msgs), 4);

	note ("on_close of the server conn sees the client's close");
	nopoll_conn_close_ext (conn, 1000, "bye", 3);
	CHECK (wait_for (&closes, 1, scaled (5000, 30000)));
	CHECK_INT (shared_get (&seen_close_status), 1000);
	copy_str (v, seen_close_reason);
	CHECK_STR (v, "bye");
}

static void large_echo (void)
{
	noPollConn * conn;
	noPollMsg * msg;
	unsigned char * big;
	long size = 8L * 1024 * 1024 + 3, i, sent;
	note ("an 8 MiB message through the loop and back");
	big = (unsigned char *) malloc ((size_t) size);
	for (i = 0; i < size; i++)
		big[i] = (unsigned char) ((i * 131) >> 3);
	conn = client ("/", NULL, NULL);
	CHECK (client_ready (conn));
	sent = nopoll_conn_send_binary (conn, (const char *) big, size);
	/* a short write keeps the rest pending: flush it */
	if (sent != size)
		CHECK_INT (errno, NOPOLL_EWOULDBLOCK);
	nopoll_conn_flush_writes (conn, scaled (10000000L, 60000000L), 0);
	CHECK_INT (nopoll_conn_pending_write_bytes (conn), 0);
	msg = wait_msg (conn, scaled (10000, 60000));
	CHECK (msg != NULL);
	CHECK_INT (nopoll_msg_get_payload_size (msg), size);
	CHECK (msg != NULL && memcmp (nopoll_msg_get_payload (msg), big, (size_t) size) == 0);
	if (msg)
		nopoll_msg_unref (msg);
	free (big);
	nopoll_conn_close (conn);
}

static void per_conn_on_msg (void)
{
	noPollConn * conn;
	note ("per-conn on_msg overrides the ctx one");
	conn = client ("/special", NULL, NULL);
	CHECK (client_ready (conn));
	CHECK (nopoll_conn_send_text (conn, "ping", 4) == 4);
	{
		noPollMsg * msg = wait_msg (conn, scaled (5000, 30000));
		CHECK (msg != NULL);
		CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "special:ping");
		nopoll_msg_unref (msg);
	}
	/* no empty close frame status: 1005 on the server */
	shared_set (&closes, 0);
	nopoll_conn_close (conn);
	CHECK (wait_for (&closes, 1, scaled (5000, 30000)));
	CHECK_INT (shared_get (&seen_close_status), 1005);
}

static void refusals (void)
{
	noPollConn * conn;
	int before;
	note ("on_open refuses");
	before = shared_get (&readies);
	conn = client ("/forbidden", NULL, NULL);
	CHECK (! client_ready (conn));
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (shared_get (&readies), before);
	nopoll_conn_close (conn);

	note ("a message sent from the server's on_ready");
	conn = client ("/welcome", NULL, NULL);
	{
		noPollMsg * msg = wait_msg (conn, scaled (5000, 30000));
		CHECK (nopoll_conn_is_ready (conn));
		CHECK (msg != NULL);
		CHECK_STR (msg ? (const char *) nopoll_msg_get_payload (msg) : NULL, "welcome");
		if (msg)
			nopoll_msg_unref (msg);
	}
	nopoll_conn_close (conn);

	note ("on_accept refuses");
	shared_set (&refuse_accept, 1);
	before = shared_get (&opens);
	conn = client ("/", NULL, NULL);
	CHECK (! client_ready (conn));
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (shared_get (&opens), before);
	nopoll_conn_close (conn);
	shared_set (&refuse_accept, 0);

	/* still serving */
	conn = client ("/", NULL, NULL);
	CHECK (client_ready (conn));
	CHECK (echo (conn, "after refusals"));
	nopoll_conn_close (conn);
}

/* Waits until ctx has n registered conns. */
static int wait_conns (noPollCtx * ctx, int n)
{
	double end = now_ms () + (double) scaled (5000, 30000);
	while (nopoll_ctx_conns (ctx) != n) {
		if (now_ms () > end)
			return 0;
		sleep_ms (1);
	}
	return 1;
}

static noPollConn * found_target = NULL;
static int visited = 0;

static nopoll_bool find_conn (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	CHECK (ctx == sctx);
	CHECK (user_data == (noPollPtr) &visited);
	visited++;
	return conn == found_target;
}

static nopoll_bool visit_all (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	int * accepted = (int *) user_data;
	(void) ctx;
	visited++;
	if (nopoll_conn_role (conn) == NOPOLL_ROLE_LISTENER)
		(*accepted)++;
	return nopoll_false;
}

static void foreach (void)
{
	noPollConn * a, * b;
	int accepted = 0;
	note ("nopoll_ctx_foreach_conn");
	a = client ("/", NULL, NULL);
	b = client ("/", NULL, NULL);
	CHECK (client_ready (a) && client_ready (b));
	CHECK (echo (a, "a") && echo (b, "b"));
	/* earlier conns are gone once the loop has seen their close */
	CHECK (wait_conns (sctx, 3));
	/* stop the loop so the registry holds still; it is restarted below */
	CHECK_INT (loop_thread_stop (&lt), 0);
	CHECK_INT (nopoll_ctx_conns (sctx), 3);
	CHECK_INT (nopoll_ctx_ref_count (sctx), 4);
	visited = 0;
	found_target = listener;
	CHECK (nopoll_ctx_foreach_conn (sctx, find_conn, &visited) == listener);
	CHECK (visited >= 1);
	visited = 0;
	found_target = NULL;
	CHECK (nopoll_ctx_foreach_conn (sctx, find_conn, &visited) == NULL);
	CHECK_INT (visited, 3);
	visited = 0;
	CHECK (nopoll_ctx_foreach_conn (sctx, visit_all, &accepted) == NULL);
	CHECK_INT (visited, 3);
	CHECK_INT (accepted, 2);
	/* the loop can be run again */
	CHECK (loop_thread_start (&lt, sctx));
	CHECK (echo (a, "loop restarted"));
	nopoll_conn_close (a);
	nopoll_conn_close (b);
}

static void raw_ping (void)
{
	unsigned char buf[256];
	RawFrame f;
	int fd;
	note ("a ping from a raw client gets a pong with its payload");
	fd = raw_connect (port);
	CHECK (fd >= 0);
	CHECK (raw_client_handshake (fd, port, "/", NULL));
	CHECK (raw_send_frame (fd, 1, 9, 1, "ping-data-123", 13));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 10 && ! f.masked && f.len == 13);
	CHECK (memcmp (buf, "ping-data-123", 13) == 0);
	/* an empty ping too, and the conn still echoes */
	CHECK (raw_send_frame (fd, 1, 9, 1, "", 0));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (f.opcode == 10 && f.len == 0);
	CHECK (raw_send_frame (fd, 1, 1, 1, "raw echo", 8));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (f.opcode == 1 && f.len == 8 && memcmp (buf, "raw echo", 8) == 0);
	/* a client ping through the API: answered, nothing reaches get_msg */
	close (fd);
}

static void listener_opts (void)
{
	noPollConnOpts * opts = nopoll_conn_opts_new ();
	noPollConn * l2, * conn;
	unsigned char buf[256];
	char big[200];
	RawFrame f;
	int fd;
	note ("nopoll_listener_new_opts with a max frame size");
	nopoll_conn_opts_set_max_frame_size (opts, 100);
	/* new listeners are picked up by the running loop */
	l2 = nopoll_listener_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (l2));
	CHECK_INT (nopoll_conn_get_max_frame_size (l2), 100);
	CHECK_INT (nopoll_conn_role (l2), NOPOLL_ROLE_MAIN_LISTENER);
	shared_set (&seen_max_frame, 0);
	conn = nopoll_conn_new (cctx, "127.0.0.1", nopoll_conn_port (l2), NULL, NULL, NULL, NULL);
	CHECK (client_ready (conn));
	CHECK (echo (conn, "small enough"));
	CHECK_INT (shared_get (&seen_max_frame), 100);
	nopoll_conn_close (conn);
	/* a frame above it is refused with 1009 */
	fd = raw_connect (nopoll_conn_port (l2));
	CHECK (raw_client_handshake (fd, nopoll_conn_port (l2), "/", NULL));
	memset (big, 'b', sizeof (big));
	CHECK (raw_send_frame (fd, 1, 2, 1, big, sizeof (big)));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1009);
	close (fd);
	nopoll_conn_close (l2);
	CHECK (! nopoll_conn_is_ok (l2));
}

static void ipv6 (void)
{
	noPollConn * l6, * l6o, * conn;
	noPollConnOpts * opts;
	note ("IPv6 listeners");
	if (! ipv6_available ()) {
		printf ("SKIP nopoll_listener_new6 / _new_opts6: IPv6 loopback (::1) is not available here\n");
		/* the calls still return NULL cleanly */
		l6 = nopoll_listener_new6 (sctx, "::1", "0");
		if (l6 != NULL)
			nopoll_conn_close (l6);
		opts = nopoll_conn_opts_new ();
		l6o = nopoll_listener_new_opts6 (sctx, opts, "::1", "0");
		if (l6o != NULL)
			nopoll_conn_close (l6o);
		return;
	}
	l6 = nopoll_listener_new6 (sctx, "::1", "0");
	CHECK (nopoll_conn_is_ok (l6));
	CHECK_STR (nopoll_conn_host (l6), "::1");
	CHECK (atoi (nopoll_conn_port (l6)) > 0);
	conn = nopoll_conn_new6 (cctx, "::1", nopoll_conn_port (l6), NULL, "/v6", NULL, NULL);
	CHECK (conn != NULL);
	CHECK (client_ready (conn));
	CHECK (echo (conn, "hello over IPv6"));
	nopoll_conn_close (conn);

	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_max_frame_size (opts, 2000);
	l6o = nopoll_listener_new_opts6 (sctx, opts, "::1", "0");
	CHECK (nopoll_conn_is_ok (l6o));
	CHECK_INT (nopoll_conn_get_max_frame_size (l6o), 2000);
	conn = nopoll_conn_new6 (cctx, "::1", nopoll_conn_port (l6o), NULL, NULL, NULL, NULL);
	CHECK (client_ready (conn));
	CHECK (echo (conn, "hello over IPv6 with opts"));
	nopoll_conn_close (conn);
	/* an IPv4 address on an IPv6 listener fails */
	CHECK (nopoll_listener_new6 (sctx, "127.0.0.1", "0") == NULL);
	nopoll_conn_close (l6);
	nopoll_conn_close (l6o);
}

static void manual_accept (void)
{
	noPollCtx * actx = nopoll_ctx_new ();
	noPollConn * l, * conn, * srv;
	noPollMsg * msg;
	int i;
	note ("nopoll_conn_accept without a loop");
	l = nopoll_listener_new (actx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (l));
	conn = nopoll_conn_new (cctx, "127.0.0.1", nopoll_conn_port (l), NULL, "/manual", NULL, NULL);
	CHECK (conn != NULL);
	srv = nopoll_conn_accept (actx, l);
	CHECK (srv != NULL);
	/* Like upstream, the caller owns no reference on an accepted conn: the
	 * ctx does, and drops it once the conn is closed. Take one to read the
	 * close status after the peer has gone (nopoll_conn_close drops it). */
	CHECK_INT (nopoll_conn_ref_count (srv), 1);
	CHECK (nopoll_conn_ref (srv));
	CHECK_INT (nopoll_conn_ref_count (srv), 2);
	CHECK_INT (nopoll_conn_role (srv), NOPOLL_ROLE_LISTENER);
	CHECK (nopoll_conn_get_listener (srv) == l);
	CHECK (nopoll_conn_ctx (srv) == actx);
	CHECK_INT (nopoll_ctx_conns (actx), 2);
	/* both sides driven from this thread */
	for (i = 0; i < 5000 && ! (nopoll_conn_is_ready (srv) && nopoll_conn_is_ready (conn)); i++)
		sleep_ms (1);
	CHECK (nopoll_conn_is_ready (srv));
	CHECK (nopoll_conn_is_ready (conn));
	CHECK_STR (nopoll_conn_get_requested_url (srv), "/manual");
	CHECK_STR (nopoll_conn_host (srv), "127.0.0.1");
	/* the accepted conn's port is the client's local port */
	{
		struct sockaddr_in sa;
		socklen_t len = sizeof (sa);
		CHECK (getsockname (nopoll_conn_socket (conn), (struct sockaddr *) &sa, &len) == 0);
		CHECK_INT (atoi (nopoll_conn_port (srv)), ntohs (sa.sin_port));
	}
	CHECK_INT (nopoll_conn_send_text (srv, "from server", -1), 11);
	msg = wait_msg (conn, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "from server");
	nopoll_msg_unref (msg);
	CHECK_INT (nopoll_conn_send_text (conn, "from client", -1), 11);
	msg = wait_msg (srv, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "from client");
	nopoll_msg_unref (msg);
	nopoll_conn_close (conn);
	/* the server sees the close */
	msg = wait_msg (srv, scaled (5000, 30000));
	CHECK (msg == NULL);
	CHECK (! nopoll_conn_is_ok (srv));
	CHECK_INT (nopoll_conn_get_close_status (srv), 1005);
	nopoll_conn_close (srv);
	CHECK (! nopoll_conn_is_ok (srv));
	CHECK_INT (nopoll_conn_ref_count (srv), -1);
	nopoll_conn_close (l);
	CHECK_INT (nopoll_ctx_conns (actx), 0);
	nopoll_ctx_unref (actx);
}

int main (void)
{
	check_init ("server", 60);
	sctx = nopoll_ctx_new ();
	cctx = nopoll_ctx_new ();
	test_log (sctx, "server");
	test_log (cctx, "client");
	nopoll_ctx_set_on_accept (sctx, on_accept, &accepts);
	nopoll_ctx_set_on_open (sctx, on_open, NULL);
	nopoll_ctx_set_on_ready (sctx, on_ready, NULL);
	nopoll_ctx_set_on_msg (sctx, on_msg, NULL);
	listener = nopoll_listener_new (sctx, "127.0.0.1", "0");
	CHECK (listener != NULL);
	strcpy (port, nopoll_conn_port (listener));
	listener_accessors ();
	CHECK (loop_thread_start (&lt, sctx));

	handshake_seen_by_server ();
	per_conn_on_msg ();
	large_echo ();
	refusals ();
	foreach ();
	raw_ping ();
	listener_opts ();
	ipv6 ();
	manual_accept ();

	CHECK_INT (loop_thread_stop (&lt), 0);
	CHECK_INT (nopoll_ctx_conns (cctx), 0);
	nopoll_conn_close (listener);
	CHECK (! nopoll_conn_is_ok (listener));
	nopoll_ctx_unref (cctx);
	nopoll_ctx_unref (sctx);
	return check_done ();
}
