/*
 * sequences: call sequences of nopoll programs that must behave as with
 * upstream nopoll, whatever the timing (issue 17 items 1 to 3). A raw C
 * socket plays the peer, so each check is on the wire.
 *
 * - a send (text, binary, ping, nopoll_conn_send_frame) right after
 *   nopoll_conn_new (_new6, _new_opts, _new_with_socket), before the 101
 *   arrives, returns the payload length (ping: true); nothing goes out
 *   before the 101; the frames follow it, in order; a failed handshake
 *   drops them and the connection is not ok;
 * - the same on the server side for a connection from nopoll_conn_accept
 *   whose handshake nothing has processed yet;
 * - 101, messages and a close frame in one read: wait_until_connection_ready
 *   is true, nopoll_conn_is_ok stays true, get_msg returns every message in
 *   order and only then the close shows (status, reason, on_close); the
 *   same for the loop's on_msg;
 * - nopoll_conn_pending_write_bytes is 0 after a send from a message
 *   handler that the socket took (the loop gathers them into one write).
 * (Two threads reading one connection: two_readers.c.)
 */
#include "check.h"

static noPollCtx * ctx;
static char head[4096];

/* Answers the request already read into head with a 101, then `tail`
 * bytes: the client reads nothing before the test lets it, so it gets
 * them all in one read. */
static int answer_101 (int fd, const unsigned char * tail, long tail_len)
{
	return raw_server_answer (fd, head, NULL) && (tail_len == 0 || raw_send_all (fd, tail, tail_len));
}

/* Nothing readable on fd right now (what was sent to it is there already:
 * loopback delivers before send returns). */
static int nothing_readable (int fd)
{
	struct pollfd p;
	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	return poll (&p, 1, 0) == 0;
}

static int expect_frame (int fd, int opcode, const char * text)
{
	RawFrame f;
	unsigned char buf[256];
	if (! raw_read_frame (fd, &f, buf, sizeof (buf)))
		return 0;
	return f.opcode == opcode && f.fin && f.len == (long) strlen (text)
		&& memcmp (buf, text, strlen (text)) == 0;
}

/* ------------------------------------------------------------ 1: early sends, client */

enum { VIA_NEW, VIA_NEW6, VIA_OPTS, VIA_SOCKET };

static int listen_on (int v6, char * port)
{
	int p = 0;
	int fd;
	if (! v6) {
		fd = raw_listen (4, &p);
	} else {
		struct sockaddr_in6 sa;
		socklen_t len = sizeof (sa);
		fd = socket (AF_INET6, SOCK_STREAM, 0);
		memset (&sa, 0, sizeof (sa));
		sa.sin6_family = AF_INET6;
		sa.sin6_addr = in6addr_loopback;
		if (fd < 0 || bind (fd, (struct sockaddr *) &sa, sizeof (sa)) != 0 || listen (fd, 4) != 0
		    || getsockname (fd, (struct sockaddr *) &sa, &len) != 0)
			return -1;
		p = ntohs (sa.sin6_port);
	}
	sprintf (port, "%d", p);
	return fd;
}

static noPollConn * connect_via (int how, const char * port)
{
	int fd;
	switch (how) {
	case VIA_NEW:
		return nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/early", NULL, NULL);
	case VIA_NEW6:
		return nopoll_conn_new6 (ctx, "::1", port, NULL, "/early", NULL, NULL);
	case VIA_OPTS:
		return nopoll_conn_new_opts (ctx, nopoll_conn_opts_new (), "127.0.0.1", port, NULL, "/early", NULL, NULL);
	default:
		fd = raw_connect (port);
		if (fd < 0)
			return NULL;
		return nopoll_conn_new_with_socket (ctx, NULL, fd, "127.0.0.1", port, NULL, "/early", NULL, NULL);
	}
}

static void early_sends_client (int how, const char * label)
{
	char port[16];
	noPollConn * conn;
	int lfd, fd;
	note (label);
	if (how == VIA_NEW6 && ! ipv6_available ()) {
		printf ("SKIP %s: IPv6 loopback (::1) is not available here\n", label);
		return;
	}
	lfd = listen_on (how == VIA_NEW6, port);
	CHECK (lfd >= 0);
	conn = connect_via (how, port);
	CHECK (conn != NULL);
	/* before the 101: the payload length, as upstream */
	CHECK_INT (nopoll_conn_send_text (conn, "first", 5), 5);
	CHECK_INT (nopoll_conn_send_binary (conn, "second", 6), 6);
	CHECK_INT (nopoll_conn_send_text (conn, "third", -1), 5);
	CHECK (nopoll_conn_send_ping (conn));
	CHECK_INT (nopoll_conn_send_frame (conn, nopoll_true, nopoll_true, NOPOLL_BINARY_FRAME, 3, "raw", 0), 3);
	CHECK (nopoll_conn_is_ok (conn));
	fd = raw_accept (lfd, 5000);
	CHECK (fd >= 0);
	CHECK (raw_read_head (fd, head, sizeof (head)) > 0);
	CHECK (strncmp (head, "GET /early HTTP/1.1\r\n", 21) == 0);
	/* never before the 101 */
	CHECK (nothing_readable (fd));
	CHECK (answer_101 (fd, NULL, 0));
	CHECK (client_ready (conn));
	/* right after it, in order */
	CHECK (expect_frame (fd, NOPOLL_TEXT_FRAME, "first"));
	CHECK (expect_frame (fd, NOPOLL_BINARY_FRAME, "second"));
	CHECK (expect_frame (fd, NOPOLL_TEXT_FRAME, "third"));
	CHECK (expect_frame (fd, NOPOLL_PING_FRAME, ""));
	CHECK (expect_frame (fd, NOPOLL_BINARY_FRAME, "raw"));
	CHECK (nopoll_conn_send_text (conn, "after", 5) == 5);
	CHECK (expect_frame (fd, NOPOLL_TEXT_FRAME, "after"));
	nopoll_conn_close (conn);
	close (fd);
	close (lfd);
}

static void early_sends_dropped_when_refused (void)
{
	char port[16];
	char rest[64];
	noPollConn * conn;
	int lfd, fd;
	const char * refusal = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
	note ("early sends, handshake refused");
	lfd = listen_on (0, port);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/early", NULL, NULL);
	CHECK (conn != NULL);
	CHECK_INT (nopoll_conn_send_text (conn, "dropped", 7), 7);
	fd = raw_accept (lfd, 5000);
	CHECK (raw_read_head (fd, head, sizeof (head)) > 0);
	CHECK (raw_send_all (fd, refusal, (long) strlen (refusal)));
	CHECK (! nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK (! nopoll_conn_is_ok (conn));
	/* the client closed without writing the held frame */
	CHECK_INT (raw_read_to_eof (fd, rest, sizeof (rest)), 0);
	CHECK_INT (nopoll_conn_send_text (conn, "x", 1), -1);
	nopoll_conn_close (conn);
	close (fd);
	close (lfd);
}

/* ------------------------------------------------------------ 1: early sends, server */

static void early_sends_server (void)
{
	noPollConn * l;
	noPollConn * srv;
	int cfd;
	char req[512];
	note ("early sends on a connection from nopoll_conn_accept");
	l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (l));
	cfd = raw_connect (nopoll_conn_port (l));
	CHECK (cfd >= 0);
	srv = nopoll_conn_accept (ctx, l);
	CHECK (srv != NULL);
	/* the request has not even been sent */
	CHECK_INT (nopoll_conn_send_text (srv, "hello early", 11), 11);
	CHECK (nothing_readable (cfd));
	sprintf (req, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: " RAW_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n");
	CHECK (raw_send_all (cfd, req, (long) strlen (req)));
	CHECK (nopoll_conn_wait_until_connection_ready (srv, 5));
	CHECK (raw_read_head (cfd, head, sizeof (head)) > 0);
	CHECK (strncmp (head, "HTTP/1.1 101", 12) == 0);
	CHECK (expect_frame (cfd, NOPOLL_TEXT_FRAME, "hello early"));
	nopoll_conn_close (srv);
	close (cfd);
	nopoll_conn_close (l);
}

/* ------------------------------------------------------------ 2: messages before a close */

static int closes = 0;
static char events[256];

static void on_close_count (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) conn;
	(void) user_data;
	shared_add (&closes, 1);
	strcat (events, "close;");
}

/* 101 + "one" + "two" + close 1000 "bye", in one write. */
static long burst (unsigned char * out)
{
	unsigned char close_payload[5] = { 0x03, 0xe8, 'b', 'y', 'e' };
	long n = 0;
	n += raw_frame (out + n, 1, NOPOLL_TEXT_FRAME, 0, "one", 3);
	n += raw_frame (out + n, 1, NOPOLL_TEXT_FRAME, 0, "two", 3);
	n += raw_frame (out + n, 1, NOPOLL_CLOSE_FRAME, 0, close_payload, 5);
	return n;
}

static void messages_before_close_get_msg (void)
{
	char port[16];
	unsigned char tail[64];
	noPollConn * conn;
	noPollMsg * msg;
	int lfd, fd;
	note ("101, messages and close in one read: get_msg");
	closes = 0;
	events[0] = '\0';
	lfd = listen_on (0, port);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	nopoll_conn_set_on_close (conn, on_close_count, NULL);
	fd = raw_accept (lfd, 5000);
	CHECK (raw_read_head (fd, head, sizeof (head)) > 0);
	CHECK (answer_101 (fd, tail, burst (tail)));
	CHECK (client_ready (conn));
	CHECK (nopoll_conn_is_ok (conn));
	msg = nopoll_conn_get_msg (conn);
	CHECK (msg != NULL);
	if (msg != NULL) {
		CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "one");
		nopoll_msg_unref (msg);
	}
	/* the close came after "two": not shown yet */
	CHECK (nopoll_conn_is_ok (conn));
	CHECK (nopoll_conn_get_close_status (conn) != 1000);
	CHECK_INT (shared_get (&closes), 0);
	msg = nopoll_conn_get_msg (conn);
	CHECK (msg != NULL);
	if (msg != NULL) {
		CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "two");
		nopoll_msg_unref (msg);
	}
	/* after the last message: the close */
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_get_close_status (conn), 1000);
	CHECK_STR (nopoll_conn_get_close_reason (conn), "bye");
	CHECK_INT (shared_get (&closes), 1);
	CHECK (nopoll_conn_get_msg (conn) == NULL);
	nopoll_conn_close (conn);
	close (fd);
	close (lfd);
}

static void on_msg_record (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	char line[64];
	(void) c;
	(void) user_data;
	sprintf (line, "%s ok=%d status=%d;", (const char *) nopoll_msg_get_payload (msg),
		 (int) nopoll_conn_is_ok (conn), nopoll_conn_get_close_status (conn) == 1000);
	strcat (events, line);
}

static void on_close_stop (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	on_close_count (c, conn, user_data);
	nopoll_loop_stop (c);
}

static void messages_before_close_loop (void)
{
	char port[16];
	unsigned char tail[64];
	noPollConn * conn;
	int lfd, fd;
	note ("101, messages and close in one read: the loop's on_msg");
	closes = 0;
	events[0] = '\0';
	lfd = listen_on (0, port);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	nopoll_conn_set_on_msg (conn, on_msg_record, NULL);
	nopoll_conn_set_on_close (conn, on_close_stop, NULL);
	fd = raw_accept (lfd, 5000);
	CHECK (raw_read_head (fd, head, sizeof (head)) > 0);
	CHECK (answer_101 (fd, tail, burst (tail)));
	CHECK_INT (nopoll_loop_wait (ctx, scaled (5, 30) * 1000000L), 0);
	CHECK_STR (events, "one ok=1 status=0;two ok=1 status=0;close;");
	CHECK_INT (nopoll_conn_get_close_status (conn), 1000);
	CHECK (! nopoll_conn_is_ok (conn));
	nopoll_conn_close (conn);
	close (fd);
	close (lfd);
}

/* ------------------------------------------------------------ 3: pending bytes */

static int max_pending = -1;
static int echoed = 0;

static void on_msg_echo (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	int pending;
	(void) c;
	(void) user_data;
	nopoll_conn_send_text (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
	/* the upstream way: flush whenever something is pending */
	pending = nopoll_conn_pending_write_bytes (conn);
	if (pending > shared_get (&max_pending))
		shared_set (&max_pending, pending);
	while (nopoll_conn_pending_write_bytes (conn) > 0)
		nopoll_conn_complete_pending_write (conn);
	shared_add (&echoed, 1);
}

static void pending_counts_only_refused (void)
{
	noPollCtx * sctx = nopoll_ctx_new ();
	noPollConn * l;
	LoopThread lt;
	unsigned char frames[256];
	unsigned char reply[64];
	RawFrame f;
	long n = 0;
	int cfd, i;
	note ("pending write bytes after a send from on_msg");
	max_pending = -1;
	echoed = 0;
	l = nopoll_listener_new (sctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (l));
	nopoll_ctx_set_on_msg (sctx, on_msg_echo, NULL);
	CHECK (loop_thread_start (&lt, sctx));
	cfd = raw_connect (nopoll_conn_port (l));
	CHECK (raw_client_handshake (cfd, nopoll_conn_port (l), "/", NULL));
	/* several messages in one write: one batch for the loop */
	for (i = 0; i < 4; i++)
		n += raw_frame (frames + n, 1, NOPOLL_TEXT_FRAME, 1, "echo me", 7);
	CHECK (raw_send_all (cfd, frames, n));
	for (i = 0; i < 4; i++)
		CHECK (expect_frame (cfd, NOPOLL_TEXT_FRAME, "echo me"));
	CHECK (wait_for (&echoed, 4, 5000));
	/* the socket took everything: nothing was ever pending */
	CHECK_INT (shared_get (&max_pending), 0);
	/* a clean close, answered before the loop stops */
	CHECK (raw_send_frame (cfd, 1, NOPOLL_CLOSE_FRAME, 1, "\x03\xe8", 2));
	CHECK (raw_read_frame (cfd, &f, reply, sizeof (reply)) && f.opcode == NOPOLL_CLOSE_FRAME);
	close (cfd);
	CHECK (wait_ctx_conns (sctx, 1));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (l);
	nopoll_ctx_unref (sctx);
}

int main (void)
{
	check_init ("sequences", 300);
	ctx = nopoll_ctx_new ();
	test_log (ctx, "sequences");
	early_sends_client (VIA_NEW, "early sends: nopoll_conn_new");
	early_sends_client (VIA_NEW6, "early sends: nopoll_conn_new6");
	early_sends_client (VIA_OPTS, "early sends: nopoll_conn_new_opts");
	early_sends_client (VIA_SOCKET, "early sends: nopoll_conn_new_with_socket");
	early_sends_dropped_when_refused ();
	early_sends_server ();
	messages_before_close_get_msg ();
	messages_before_close_loop ();
	pending_counts_only_refused ();
	nopoll_ctx_unref (ctx);
	return check_done ();
}
