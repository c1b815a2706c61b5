/*
 * client: nopoll client connections against a raw C server socket (this
 * program plays the server byte by byte, so every check is on the wire).
 *
 * - TCP connect bounded by the ctx connect timeout (a listener whose
 *   backlog is full never answers the SYN); refused port fails fast;
 * - the upgrade request is written before nopoll_conn_new returns (the raw
 *   server accepts and reads it while the client calls nothing else), with
 *   url, Host, Origin, protocols, Sec-WebSocket-Version (protocol version
 *   setter), and with nopoll_conn_new_opts: cookie and extra headers;
 * - the 101 answer is processed by is_ready, wait_until_connection_ready,
 *   get_msg, read and loop_wait (on_ready handlers run);
 * - a wrong Sec-WebSocket-Accept fails the handshake (and is logged);
 * - frames from the client are masked: text, binary, fragments and their
 *   continuations, ping, pong;
 * - messages from the server: get_msg (payload NUL-terminated, opcode,
 *   final, fragments joined), join, read as a byte stream across message
 *   boundaries (blocking with timeout, non-blocking -1), a server ping is
 *   answered with a pong carrying the same payload;
 * - close status and reason: code + reason, empty close frame (1005),
 *   peer vanished (1006);
 * - conn accessors (id, role, socket, host, port, ctx, listener, hook,
 *   url, host header, origin, protocols, max frame size);
 * - IPv6: nopoll_conn_new6 (skipped when ::1 is unavailable).
 */
#include "check.h"

static noPollCtx * ctx;
static int lfd;
static char port[16];
static char head[4096];

static int log_lines = 0;
static int on_ready_calls = 0;
static int on_msg_calls = 0;
static char on_msg_text[64];

static void log_handler (noPollCtx * c, noPollDebugLevel level, const char * log_msg, noPollPtr user_data)
{
	(void) c;
	(void) level;
	(void) user_data;
	(void) log_msg;
	shared_add (&log_lines, 1);
}

static nopoll_bool on_ready (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	CHECK (c == ctx);
	CHECK (nopoll_conn_ctx (conn) == c);
	CHECK (user_data == (noPollPtr) &on_ready_calls);
	shared_add (&on_ready_calls, 1);
	return nopoll_true;
}

static nopoll_bool refuse_ready (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) conn;
	shared_add ((int *) user_data, 1);
	return nopoll_false;
}

static void on_msg (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) conn;
	(void) user_data;
	CHECK (c == ctx);
	CHECK (nopoll_msg_opcode (msg) == NOPOLL_TEXT_FRAME);
	if (nopoll_msg_get_payload_size (msg) < (long) sizeof (on_msg_text))
		strcpy (on_msg_text, (const char *) nopoll_msg_get_payload (msg));
	shared_add (&on_msg_calls, 1);
	nopoll_loop_stop (c);
}

/* Connects a nopoll client, accepts it on the raw server and answers the
 * handshake. *sfd receives the server side socket. */
static noPollConn * connect_pair (int * sfd, const char * url, const char * protocols, const char * extra)
{
	noPollConn * conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, url, protocols, NULL);
	*sfd = -1;
	if (conn == NULL)
		return NULL;
	*sfd = raw_accept (lfd, 5000);
	if (*sfd < 0 || ! raw_server_handshake (*sfd, head, sizeof (head), extra)) {
		CHECK (0);
		return conn;
	}
	return conn;
}

static void close_pair (noPollConn * conn, int sfd)
{
	nopoll_conn_close (conn);
	if (sfd >= 0)
		close (sfd);
}

static void connect_timeout (void)
{
	int full_port, i, fds[4];
	char p[16];
	noPollConn * conn;
	double t0, el;
	int bl = raw_listen (0, &full_port);
	note ("connect timeout on a full backlog");
	CHECK (bl >= 0);
	sprintf (p, "%d", full_port);
	/* Fill the accept queue: with backlog 0 it holds one connection and
	 * later SYNs are dropped, so a connect neither succeeds nor fails. */
	for (i = 0; i < 4; i++) {
		struct sockaddr_in sa;
		fds[i] = socket (AF_INET, SOCK_STREAM, 0);
		memset (&sa, 0, sizeof (sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
		sa.sin_port = htons ((unsigned short) full_port);
		fcntl (fds[i], F_SETFL, O_NONBLOCK);
		connect (fds[i], (struct sockaddr *) &sa, sizeof (sa));
	}
	sleep_ms (50);
	nopoll_conn_connect_timeout (ctx, 300000);
	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 300000);
	t0 = now_ms ();
	conn = nopoll_conn_new (ctx, "127.0.0.1", p, NULL, NULL, NULL, NULL);
	el = now_ms () - t0;
	printf ("connect to a full backlog gave up after %.0f ms\n", el);
	CHECK (conn == NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK (el >= 250);
	/* the 300 ms asked, not the 20 s default: a bound far from both, so
	 * that a loaded machine does not fail it */
	CHECK (el < scaled (10000, 15000));
	if (conn != NULL)
		nopoll_conn_close (conn);
	for (i = 0; i < 4; i++)
		close (fds[i]);
	close (bl);

	note ("connection refused");
	/* a port nobody listens on: bind, read the port, close */
	bl = raw_listen (1, &full_port);
	close (bl);
	sprintf (p, "%d", full_port);
	t0 = now_ms ();
	conn = nopoll_conn_new (ctx, "127.0.0.1", p, NULL, NULL, NULL, NULL);
	el = now_ms () - t0;
	CHECK (conn == NULL);
	/* at once, not after the 20 s default connect timeout */
	CHECK (el < scaled (10000, 15000));
	nopoll_conn_connect_timeout (ctx, 0);
	CHECK_INT (nopoll_conn_get_connect_timeout (ctx), 20000000L);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
}

static void request_on_the_wire (void)
{
	noPollConn * conn;
	noPollConnOpts * opts;
	char v[256];
	int sfd;
	note ("upgrade request sent by nopoll_conn_new");
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, "example.test", "/chat?x=1", "chat, superchat", "http://origin.test");
	CHECK (conn != NULL);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_ref_count (conn), 2);
	CHECK_INT (nopoll_ctx_conns (ctx), 1);
	/* nothing else is called on the client: the request is already out */
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0);
	CHECK (raw_read_head (sfd, head, sizeof (head)) > 0);
	CHECK (strncmp (head, "GET /chat?x=1 HTTP/1.1\r\n", 24) == 0);
	CHECK (raw_header (head, "Host", v, sizeof (v)) && strncmp (v, "example.test", 12) == 0);
	CHECK (raw_header (head, "Upgrade", v, sizeof (v)) && strcasecmp (v, "websocket") == 0);
	CHECK (raw_header (head, "Connection", v, sizeof (v)) && strstr (v, "pgrade") != NULL);
	CHECK (raw_header (head, "Sec-WebSocket-Key", v, sizeof (v)) && strlen (v) == 24);
	CHECK (raw_header (head, "Sec-WebSocket-Version", v, sizeof (v)) && strcmp (v, "13") == 0);
	CHECK (raw_header (head, "Sec-WebSocket-Protocol", v, sizeof (v)) && strcmp (v, "chat, superchat") == 0);
	CHECK (raw_header (head, "Origin", v, sizeof (v)) && strcmp (v, "http://origin.test") == 0);
	CHECK_STR (nopoll_conn_get_requested_url (conn), "/chat?x=1");
	CHECK_STR (nopoll_conn_get_origin (conn), "http://origin.test");
	CHECK_STR (nopoll_conn_get_requested_protocol (conn), "chat, superchat");
	CHECK (nopoll_conn_get_host_header (conn) != NULL
	       && strncmp (nopoll_conn_get_host_header (conn), "example.test", 12) == 0);
	/* no answer yet: not ready, still ok */
	CHECK (! nopoll_conn_is_ready (conn));
	CHECK (nopoll_conn_is_ok (conn));
	close_pair (conn, sfd);

	note ("a host name");
	conn = nopoll_conn_new (ctx, "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (nopoll_conn_is_ok (conn));
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0);
	CHECK (raw_server_handshake (sfd, head, sizeof (head), NULL));
	CHECK (raw_header (head, "Host", v, sizeof (v)) && strncmp (v, "localhost:", 10) == 0);
	CHECK (client_ready (conn));
	close_pair (conn, sfd);

	note ("nopoll_conn_new_opts: cookie, extra headers, protocol version");
	nopoll_ctx_set_protocol_version (ctx, 8);
	opts = nopoll_conn_opts_new ();
	CHECK (opts != NULL);
	nopoll_conn_opts_set_cookie (opts, "session=42");
	nopoll_conn_opts_set_extra_headers (opts, "\r\nX-Test: yes");
	conn = nopoll_conn_new_opts (ctx, opts, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0);
	CHECK (raw_read_head (sfd, head, sizeof (head)) > 0);
	CHECK (strncmp (head, "GET / HTTP/1.1\r\n", 16) == 0);
	CHECK (raw_header (head, "Cookie", v, sizeof (v)) && strcmp (v, "session=42") == 0);
	CHECK (raw_header (head, "X-Test", v, sizeof (v)) && strcmp (v, "yes") == 0);
	CHECK (raw_header (head, "Sec-WebSocket-Version", v, sizeof (v)) && strcmp (v, "8") == 0);
	/* default Origin: http://<host_name> */
	CHECK (raw_header (head, "Origin", v, sizeof (v)) && strcmp (v, "http://127.0.0.1") == 0);
	CHECK (! raw_header (head, "Sec-WebSocket-Protocol", v, sizeof (v)));
	CHECK (nopoll_conn_get_requested_protocol (conn) == NULL);
	close_pair (conn, sfd);
	nopoll_ctx_set_protocol_version (ctx, 13);
}

static void answer_processing (void)
{
	noPollConn * conn;
	noPollMsg * msg;
	unsigned char frame[64];
	char buf[64];
	long n;
	int sfd, i;

	note ("101 processed by nopoll_conn_is_ready");
	conn = connect_pair (&sfd, "/", "chat", "Sec-WebSocket-Protocol: chat\r\n");
	for (i = 0; i < 5000 && ! nopoll_conn_is_ready (conn); i++)
		sleep_ms (1);
	CHECK (nopoll_conn_is_ready (conn));
	CHECK_STR (nopoll_conn_get_accepted_protocol (conn), "chat");
	close_pair (conn, sfd);

	note ("101 processed by nopoll_conn_wait_until_connection_ready");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	nopoll_conn_set_on_ready (conn, on_ready, &on_ready_calls);
	CHECK (client_ready (conn));
	CHECK_INT (shared_get (&on_ready_calls), 1);
	CHECK (nopoll_conn_get_accepted_protocol (conn) == NULL);
	close_pair (conn, sfd);

	note ("101 processed by nopoll_conn_get_msg");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	n = raw_frame (frame, 1, 1, 0, "first", 5);
	CHECK (raw_send_all (sfd, frame, n));
	msg = wait_msg (conn, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK (nopoll_conn_is_ready (conn));
	CHECK_INT (nopoll_msg_get_payload_size (msg), 5);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "first");
	nopoll_msg_unref (msg);
	close_pair (conn, sfd);

	note ("101 processed by nopoll_conn_read");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	n = raw_frame (frame, 1, 1, 0, "stream", 6);
	CHECK (raw_send_all (sfd, frame, n));
	memset (buf, 0, sizeof (buf));
	CHECK_INT (nopoll_conn_read (conn, buf, 6, nopoll_true, scaled (5000, 30000)), 6);
	CHECK (memcmp (buf, "stream", 6) == 0);
	close_pair (conn, sfd);

	note ("101 processed by nopoll_loop_wait");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	shared_set (&on_ready_calls, 0);
	nopoll_ctx_set_on_ready (ctx, on_ready, &on_ready_calls);
	nopoll_ctx_set_on_msg (ctx, on_msg, NULL);
	n = raw_frame (frame, 1, 1, 0, "via loop", 8);
	CHECK (raw_send_all (sfd, frame, n));
	/* on_msg stops the loop */
	CHECK_INT (nopoll_loop_wait (ctx, scaled (5000000L, 30000000L)), 0);
	CHECK_INT (shared_get (&on_ready_calls), 1);
	CHECK_INT (shared_get (&on_msg_calls), 1);
	CHECK_STR (on_msg_text, "via loop");
	CHECK (nopoll_conn_is_ready (conn));
	nopoll_ctx_set_on_ready (ctx, NULL, NULL);
	nopoll_ctx_set_on_msg (ctx, NULL, NULL);

	note ("messages read by the loop without a handler wait for get_msg");
	n = raw_frame (frame, 1, 1, 0, "q1", 2);
	n += raw_frame (frame + n, 1, 1, 0, "q2", 2);
	CHECK (raw_send_all (sfd, frame, n));
	CHECK_INT (nopoll_loop_wait (ctx, 200000), -3);
	msg = nopoll_conn_get_msg (conn);
	CHECK (msg != NULL);
	CHECK_STR (msg ? (const char *) nopoll_msg_get_payload (msg) : NULL, "q1");
	if (msg)
		nopoll_msg_unref (msg);
	msg = nopoll_conn_get_msg (conn);
	CHECK_STR (msg ? (const char *) nopoll_msg_get_payload (msg) : NULL, "q2");
	if (msg)
		nopoll_msg_unref (msg);
	CHECK (nopoll_conn_get_msg (conn) == NULL);
	close_pair (conn, sfd);
}

static void bad_answer (void)
{
	noPollConn * conn;
	int sfd;
	const char * reply = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n";
	note ("wrong Sec-WebSocket-Accept");
	nopoll_log_set_handler (ctx, log_handler, NULL);
	shared_set (&log_lines, 0);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0);
	CHECK (raw_read_head (sfd, head, sizeof (head)) > 0);
	CHECK (raw_send_all (sfd, reply, (long) strlen (reply)));
	CHECK (! client_ready (conn));
	CHECK (! nopoll_conn_is_ready (conn));
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK (shared_get (&log_lines) > 0);
	nopoll_log_set_handler (ctx, NULL, NULL);

	note ("an on_ready handler returning false closes the conn");
	close_pair (conn, sfd);
	{
		int refused = 0;
		RawFrame f;
		unsigned char buf[64];
		conn = connect_pair (&sfd, "/", NULL, NULL);
		nopoll_conn_set_on_ready (conn, refuse_ready, &refused);
		CHECK (! client_ready (conn));
		CHECK_INT (refused, 1);
		CHECK (! nopoll_conn_is_ok (conn));
		/* with a close frame to the server */
		CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
		CHECK_INT (f.opcode, 8);
	}

	note ("a non-101 answer");
	close_pair (conn, sfd);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (raw_read_head (sfd, head, sizeof (head)) > 0);
	reply = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
	CHECK (raw_send_all (sfd, reply, (long) strlen (reply)));
	CHECK (! client_ready (conn));
	CHECK (! nopoll_conn_is_ok (conn));
	close_pair (conn, sfd);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
}

static void client_frames (void)
{
	noPollConn * conn;
	RawFrame f;
	unsigned char buf[70000];
	char bin[300];
	int sfd, i;
	note ("frames sent by the client are masked and well formed");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	CHECK (client_ready (conn));
	for (i = 0; i < (int) sizeof (bin); i++)
		bin[i] = (char) (i * 7);

	CHECK_INT (nopoll_conn_send_text (conn, "hello", -1), 5);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 1 && f.masked && f.len == 5);
	CHECK_STR ((char *) buf, "hello");

	CHECK_INT (nopoll_conn_send_text (conn, "hello world", 5), 5);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.opcode == 1 && f.len == 5 && memcmp (buf, "hello", 5) == 0);

	CHECK_INT (nopoll_conn_send_binary (conn, bin, sizeof (bin)), (int) sizeof (bin));
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 2 && f.masked && f.len == (long) sizeof (bin));
	CHECK (memcmp (buf, bin, sizeof (bin)) == 0);

	/* fragments: the next send continues the message */
	CHECK_INT (nopoll_conn_send_text_fragment (conn, "frag", 4), 4);
	CHECK_INT (nopoll_conn_send_text (conn, "ment", 4), 4);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (! f.fin && f.opcode == 1 && f.len == 4 && memcmp (buf, "frag", 4) == 0);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 0 && f.len == 4 && memcmp (buf, "ment", 4) == 0);

	CHECK_INT (nopoll_conn_send_binary_fragment (conn, bin, 10), 10);
	CHECK_INT (nopoll_conn_send_binary_fragment (conn, bin + 10, 10), 10);
	CHECK_INT (nopoll_conn_send_binary (conn, bin + 20, 10), 10);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (! f.fin && f.opcode == 2 && f.len == 10 && memcmp (buf, bin, 10) == 0);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (! f.fin && f.opcode == 0 && f.len == 10 && memcmp (buf, bin + 10, 10) == 0);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 0 && f.len == 10 && memcmp (buf, bin + 20, 10) == 0);

	/* a message after a finished fragmented one starts a new one */
	CHECK_INT (nopoll_conn_send_text (conn, "new", 3), 3);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 1 && f.len == 3);

	CHECK (nopoll_conn_send_ping (conn));
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 9 && f.masked && f.len == 0);

	CHECK (nopoll_conn_send_pong (conn, 3, (noPollPtr) "abc"));
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 10 && f.masked && f.len == 3 && memcmp (buf, "abc", 3) == 0);

	/* a 64 KiB + 1 message uses the 64-bit length */
	{
		char * big = (char *) malloc (65537);
		memset (big, 'z', 65537);
		CHECK_INT (nopoll_conn_send_binary (conn, big, 65537), 65537);
		CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
		CHECK (f.opcode == 2 && f.len == 65537 && buf[65536] == 'z' && buf[0] == 'z');
		free (big);
	}
	/* invalid arguments on a valid conn */
	CHECK_INT (nopoll_conn_send_binary (conn, NULL, 5), -1);
	CHECK_INT (nopoll_conn_send_binary (conn, bin, -1), -1);

	/* a clean close sends a close frame with the status and reason */
	nopoll_conn_close_ext (conn, 4001, "done", 4);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 4001);
	CHECK (f.len == 6 && memcmp (buf + 2, "done", 4) == 0);
	CHECK (! nopoll_conn_is_ok (conn));
	close (sfd);
}

static void server_messages (void)
{
	noPollConn * conn;
	noPollMsg * msg, * msg2, * joined;
	unsigned char frame[256];
	unsigned char rbuf[256];
	char buf[64];
	RawFrame f;
	long n;
	int sfd;
	note ("messages from the server");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	CHECK (client_ready (conn));

	/* two messages in one write */
	n = raw_frame (frame, 1, 1, 0, "one", 3);
	n += raw_frame (frame + n, 1, 2, 0, "two\0bin", 7);
	CHECK (raw_send_all (sfd, frame, n));
	msg = wait_msg (conn, scaled (5000, 30000));
	msg2 = wait_msg (conn, scaled (5000, 30000));
	CHECK (msg != NULL && msg2 != NULL);
	CHECK_INT (nopoll_msg_opcode (msg), NOPOLL_TEXT_FRAME);
	CHECK_INT (nopoll_msg_opcode (msg2), NOPOLL_BINARY_FRAME);
	CHECK (nopoll_msg_is_final (msg));
	CHECK (! nopoll_msg_is_fragment (msg));
	CHECK_INT (nopoll_msg_get_payload_size (msg2), 7);
	CHECK (memcmp (nopoll_msg_get_payload (msg2), "two\0bin", 8) == 0);
	/* payloads are NUL-terminated */
	CHECK_INT (nopoll_msg_get_payload (msg)[3], 0);
	CHECK_INT (nopoll_msg_get_payload (msg2)[7], 0);
	CHECK_INT (nopoll_msg_ref_count (msg), 1);
	joined = nopoll_msg_join (msg, msg2);
	CHECK (joined != NULL && joined != msg && joined != msg2);
	CHECK_INT (nopoll_msg_get_payload_size (joined), 10);
	CHECK (memcmp (nopoll_msg_get_payload (joined), "onetwo\0bin", 11) == 0);
	CHECK_INT (nopoll_msg_opcode (joined), NOPOLL_TEXT_FRAME);
	CHECK_INT (nopoll_msg_get_payload_size (msg), 3);
	CHECK_INT (nopoll_msg_ref_count (joined), 1);
	nopoll_msg_unref (joined);
	/* a message outlives a reference taken on it */
	CHECK (nopoll_msg_ref (msg));
	nopoll_msg_unref (msg);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "one");
	nopoll_msg_unref (msg);
	nopoll_msg_unref (msg2);

	/* a fragmented message is delivered whole */
	n = raw_frame (frame, 0, 1, 0, "frag", 4);
	n += raw_frame (frame + n, 1, 0, 0, "ment", 4);
	CHECK (raw_send_all (sfd, frame, n));
	msg = wait_msg (conn, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "fragment");
	CHECK (nopoll_msg_is_final (msg));
	nopoll_msg_unref (msg);

	/* an empty message: NULL payload, size 0 */
	n = raw_frame (frame, 1, 1, 0, "", 0);
	CHECK (raw_send_all (sfd, frame, n));
	msg = wait_msg (conn, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_INT (nopoll_msg_get_payload_size (msg), 0);
	CHECK (nopoll_msg_get_payload (msg) == NULL);
	nopoll_msg_unref (msg);

	note ("nopoll_conn_read as a byte stream");
	CHECK_INT (nopoll_conn_read (conn, buf, 4, nopoll_false, 0), -1);
	n = raw_frame (frame, 1, 1, 0, "abc", 3);
	n += raw_frame (frame + n, 1, 1, 0, "defgh", 5);
	n += raw_frame (frame + n, 1, 1, 0, "ij", 2);
	CHECK (raw_send_all (sfd, frame, n));
	memset (buf, 0, sizeof (buf));
	CHECK_INT (nopoll_conn_read (conn, buf, 4, nopoll_true, scaled (5000, 30000)), 4);
	CHECK (memcmp (buf, "abcd", 4) == 0);
	CHECK_INT (nopoll_conn_read (conn, buf, 4, nopoll_true, scaled (5000, 30000)), 4);
	CHECK (memcmp (buf, "efgh", 4) == 0);
	/* non-blocking: what is there */
	{
		int got = 0, r, tries;
		for (tries = 0; tries < 2000 && got < 2; tries++) {
			r = nopoll_conn_read (conn, buf + got, 10, nopoll_false, 0);
			if (r > 0)
				got += r;
			else
				sleep_ms (1);
		}
		CHECK_INT (got, 2);
		CHECK (memcmp (buf, "ij", 2) == 0);
	}
	/* nothing left: -1 at once, and a blocking read times out with what it has */
	CHECK_INT (nopoll_conn_read (conn, buf, 4, nopoll_false, 0), -1);
	{
		double t0 = now_ms ();
		int r = nopoll_conn_read (conn, buf, 4, nopoll_true, 200);
		double el = now_ms () - t0;
		CHECK (r <= 0);
		CHECK (el >= 150 && el < scaled (10000, 15000));
	}
	CHECK_INT (nopoll_conn_read (conn, NULL, 4, nopoll_false, 0), -1);

	note ("a ping from the server is answered with the same payload");
	n = raw_frame (frame, 1, 9, 0, "are you there", 13);
	CHECK (raw_send_all (sfd, frame, n));
	/* get_msg processes it (no message comes out of it) */
	msg = wait_msg (conn, 300);
	CHECK (msg == NULL);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK (raw_read_frame (sfd, &f, rbuf, sizeof (rbuf)));
	CHECK (f.opcode == 10 && f.masked && f.len == 13);
	CHECK (memcmp (rbuf, "are you there", 13) == 0);

	note ("close with status and reason");
	n = raw_frame (frame, 1, 8, 0, "\x0f\xa0see you", 9);
	CHECK (raw_send_all (sfd, frame, n));
	msg = wait_msg (conn, scaled (2000, 10000));
	CHECK (msg == NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_get_close_status (conn), 4000);
	CHECK_STR (nopoll_conn_get_close_reason (conn), "see you");
	/* the client answered the close */
	CHECK (raw_read_frame (sfd, &f, rbuf, sizeof (rbuf)));
	CHECK_INT (f.opcode, 8);
	close_pair (conn, sfd);

	note ("empty close frame: 1005");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	CHECK (client_ready (conn));
	n = raw_frame (frame, 1, 8, 0, "", 0);
	CHECK (raw_send_all (sfd, frame, n));
	msg = wait_msg (conn, scaled (2000, 10000));
	CHECK (msg == NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_get_close_status (conn), 1005);
	CHECK (nopoll_conn_get_close_reason (conn) == NULL);
	close_pair (conn, sfd);

	note ("peer vanished: 1006");
	conn = connect_pair (&sfd, "/", NULL, NULL);
	CHECK (client_ready (conn));
	close (sfd);
	msg = wait_msg (conn, scaled (2000, 10000));
	CHECK (msg == NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_get_close_status (conn), 1006);
	CHECK (nopoll_conn_get_close_reason (conn) == NULL);
	/* sends on a dead conn fail */
	CHECK_INT (nopoll_conn_send_text (conn, "late", 4), -1);
	nopoll_conn_close (conn);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
}

static void accessors (void)
{
	noPollConn * conn;
	int sfd, dummy = 0;
	note ("client accessors");
	nopoll_ctx_set_max_frame_size (ctx, 5000);
	conn = connect_pair (&sfd, "/x", NULL, NULL);
	CHECK (client_ready (conn));
	CHECK (nopoll_conn_get_id (conn) > 0);
	CHECK_INT (nopoll_conn_role (conn), NOPOLL_ROLE_CLIENT);
	CHECK (nopoll_conn_socket (conn) >= 0);
	CHECK_STR (nopoll_conn_host (conn), "127.0.0.1");
	CHECK_STR (nopoll_conn_port (conn), port);
	CHECK (nopoll_conn_ctx (conn) == ctx);
	CHECK (nopoll_conn_get_listener (conn) == NULL);
	CHECK (nopoll_conn_get_hook (conn) == NULL);
	nopoll_conn_set_hook (conn, &dummy);
	CHECK (nopoll_conn_get_hook (conn) == (noPollPtr) &dummy);
	CHECK_INT (nopoll_conn_get_max_frame_size (conn), 5000);
	CHECK_INT (nopoll_conn_pending_write_bytes (conn), 0);
	CHECK_INT (nopoll_conn_complete_pending_write (conn), 0);
	CHECK_INT (nopoll_conn_flush_writes (conn, 1000, 0), 0);
	CHECK_INT (nopoll_conn_get_close_status (conn), 1006);
	/* the conn shows up in foreach */
	CHECK_INT (nopoll_ctx_conns (ctx), 1);
	close_pair (conn, sfd);
	nopoll_ctx_set_max_frame_size (ctx, NOPOLL_MAX_FRAME_SIZE_DEFAULT);

	note ("nopoll_conn_new_opts with a max frame size");
	{
		noPollConnOpts * opts = nopoll_conn_opts_new ();
		nopoll_conn_opts_set_max_frame_size (opts, 1234);
		conn = nopoll_conn_new_opts (ctx, opts, "127.0.0.1", port, NULL, NULL, NULL, NULL);
		CHECK (conn != NULL);
		CHECK_INT (nopoll_conn_get_max_frame_size (conn), 1234);
		sfd = raw_accept (lfd, 5000);
		CHECK (sfd >= 0);
		close_pair (conn, sfd);
	}
}

static void ipv6 (void)
{
	struct sockaddr_in6 sa;
	socklen_t len = sizeof (sa);
	noPollConn * conn;
	noPollMsg * msg;
	unsigned char frame[64];
	char p6[16];
	long n;
	int l6, s6;
	note ("nopoll_conn_new6");
	if (! ipv6_available ()) {
		printf ("SKIP nopoll_conn_new6: IPv6 loopback (::1) is not available here\n");
		return;
	}
	l6 = socket (AF_INET6, SOCK_STREAM, 0);
	memset (&sa, 0, sizeof (sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	CHECK (bind (l6, (struct sockaddr *) &sa, sizeof (sa)) == 0);
	CHECK (listen (l6, 4) == 0);
	CHECK (getsockname (l6, (struct sockaddr *) &sa, &len) == 0);
	sprintf (p6, "%d", ntohs (sa.sin6_port));
	/* an IPv4 address is not an IPv6 one */
	CHECK (nopoll_conn_new6 (ctx, "127.0.0.1", p6, NULL, NULL, NULL, NULL) == NULL);
	conn = nopoll_conn_new6 (ctx, "::1", p6, NULL, "/six", NULL, NULL);
	CHECK (conn != NULL);
	s6 = raw_accept (l6, 5000);
	CHECK (s6 >= 0);
	CHECK (raw_server_handshake (s6, head, sizeof (head), NULL));
	CHECK (strncmp (head, "GET /six HTTP/1.1\r\n", 19) == 0);
	CHECK (client_ready (conn));
	CHECK_STR (nopoll_conn_host (conn), "::1");
	n = raw_frame (frame, 1, 1, 0, "over v6", 7);
	CHECK (raw_send_all (s6, frame, n));
	msg = wait_msg (conn, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "over v6");
	nopoll_msg_unref (msg);
	close_pair (conn, s6);
	close (l6);
}

int main (void)
{
	int p;
	check_init ("client", 60);
	ctx = nopoll_ctx_new ();
	lfd = raw_listen (16, &p);
	CHECK (ctx != NULL && lfd >= 0);
	sprintf (port, "%d", p);

	connect_timeout ();
	request_on_the_wire ();
	answer_processing ();
	bad_answer ();
	client_frames ();
	server_messages ();
	accessors ();
	ipv6 ();

	CHECK_INT (nopoll_ctx_conns (ctx), 0);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);
	nopoll_ctx_unref (ctx);
	close (lfd);
	return check_done ();
}
