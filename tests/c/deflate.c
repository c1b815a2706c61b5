/*
 * deflate: permessage-deflate (RFC 7692) through the C API.
 *
 * - off by default: an offer is not answered, RSV1 stays a 1002;
 * - nopoll_ctx_set_permessage_deflate + nopoll_conn_opts_set_permessage_deflate:
 *   our client and our server negotiate it (nopoll_conn_is_permessage_deflate
 *   on both ends) and echo compressible text and incompressible binary;
 * - a raw peer: the answer names the extension, a compressed "Hello"
 *   (RFC 7692 7.2.3.1) is echoed compressed (RSV1), a stream that is not
 *   DEFLATE is closed with 1007;
 * - nopoll_ctx_set_permessage_deflate_no_context_takeover: the answer
 *   carries both no_context_takeover parameters;
 * - a client asking for no context takeover fails against a server
 *   that does not grant it;
 * - a decompression bomb (1 MiB of zeros, a few KB on the wire: one read
 *   for the server, so its close frame is not lost to a reset) against a
 *   64 KiB message limit is closed with 1009.
 */
#include "check.h"

static noPollCtx * new_server (noPollConn ** listener, char * port)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	*listener = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (*listener));
	strcpy (port, nopoll_conn_port (*listener));
	return ctx;
}

static int server_saw_deflate = -1;

static void on_echo (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) ctx; (void) user_data;
	shared_set (&server_saw_deflate, nopoll_conn_is_permessage_deflate (conn));
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
	else
		nopoll_conn_send_text (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
}

/* Sends the upgrade request with `extensions` (NULL: none) and reads the
 * answer head into head; 1 on a 101. */
static int raw_upgrade (int fd, const char * port, const char * extensions, char * head, int cap)
{
	char req[1024];
	sprintf (req, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: " RAW_KEY "\r\n"
		 "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n", port,
		 extensions ? "Sec-WebSocket-Extensions: " : "",
		 extensions ? extensions : "", extensions ? "\r\n" : "");
	if (! raw_send_all (fd, req, (long) strlen (req)))
		return 0;
	if (raw_read_head (fd, head, cap) < 0)
		return 0;
	return strncmp (head, "HTTP/1.1 101", 12) == 0;
}

/* A masked frame with RSV1 set on the wire. */
static int send_rsv1_frame (int fd, int opcode, const unsigned char * payload, long len)
{
	unsigned char buf[256];
	long n = raw_frame (buf, 1, opcode, 1, payload, len);
	buf[0] |= 0x40;
	return raw_send_all (fd, buf, n);
}

/* Closes the handshake from the raw client and waits for the server's
 * close frame, so that the server has let the connection go. */
static void raw_bye (int fd)
{
	unsigned char buf[256];
	RawFrame f;
	CHECK (raw_send_frame (fd, 1, 8, 1, "\x03\xe8", 2));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1000);
	close (fd);
}

static const unsigned char hello_deflated[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };

static void off_by_default (void)
{
	noPollConn * listener;
	char port[16], head[2048];
	unsigned char buf[256];
	RawFrame f;
	LoopThread lt;
	noPollCtx * ctx = new_server (&listener, port);
	int fd;
	note ("off by default: offer ignored, RSV1 is a 1002");
	CHECK (loop_thread_start (&lt, ctx));
	fd = raw_connect (port);
	CHECK (fd >= 0 && raw_upgrade (fd, port, "permessage-deflate", head, sizeof (head)));
	CHECK (strstr (head, "Sec-WebSocket-Extensions") == NULL);
	CHECK (send_rsv1_frame (fd, 1, hello_deflated, sizeof (hello_deflated)));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1002);
	close (fd);
	CHECK (wait_ctx_conns (ctx, 1));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
}

static void raw_peer (void)
{
	noPollConn * listener;
	char port[16], head[2048];
	unsigned char buf[256];
	unsigned char h[2];
	RawFrame f;
	LoopThread lt;
	noPollCtx * ctx = new_server (&listener, port);
	int fd;
	note ("nopoll_ctx_set_permessage_deflate: raw peer");
	nopoll_ctx_set_permessage_deflate (ctx, nopoll_true);
	nopoll_ctx_set_on_msg (ctx, on_echo, NULL);
	CHECK (loop_thread_start (&lt, ctx));
	fd = raw_connect (port);
	/* a first offer we cannot accept (unknown parameter), then a good one */
	CHECK (fd >= 0 && raw_upgrade (fd, port, "permessage-deflate; x=1, permessage-deflate; client_max_window_bits",
				       head, sizeof (head)));
	CHECK (strstr (head, "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n") != NULL);
	CHECK (send_rsv1_frame (fd, 1, hello_deflated, sizeof (hello_deflated)));
	/* the echo: FIN + RSV1 + text, compressed */
	CHECK (raw_recv_all (fd, h, 2));
	CHECK_INT (h[0], 0xc1);
	CHECK ((h[1] & 0x7f) > 0 && (h[1] & 0x7f) < 126);
	CHECK (raw_recv_all (fd, buf, h[1] & 0x7f));
	/* not DEFLATE (BTYPE 11 is reserved): 1007 */
	buf[0] = 0xff; buf[1] = 0xff; buf[2] = 0xff;
	CHECK (send_rsv1_frame (fd, 2, buf, 3));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1007);
	close (fd);

	/* RSV1 on a control frame stays a protocol error */
	fd = raw_connect (port);
	CHECK (fd >= 0 && raw_upgrade (fd, port, "permessage-deflate", head, sizeof (head)));
	CHECK (send_rsv1_frame (fd, 9, (const unsigned char *) "", 0));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1002);
	close (fd);

	note ("nopoll_ctx_set_permessage_deflate_no_context_takeover");
	nopoll_ctx_set_permessage_deflate_no_context_takeover (ctx, nopoll_true);
	fd = raw_connect (port);
	CHECK (fd >= 0 && raw_upgrade (fd, port, "permessage-deflate", head, sizeof (head)));
	CHECK (strstr (head, "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n") != NULL);
	raw_bye (fd);
	note ("nopoll_ctx_set_permessage_deflate_level (0): inflate only");
	nopoll_ctx_set_permessage_deflate_level (ctx, 0);
	fd = raw_connect (port);
	CHECK (fd >= 0 && raw_upgrade (fd, port, "permessage-deflate", head, sizeof (head)));
	CHECK (send_rsv1_frame (fd, 1, hello_deflated, sizeof (hello_deflated)));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 1 && f.len == 5 && memcmp (buf, "Hello", 5) == 0);
	raw_bye (fd);
	/* turned off: not answered any more */
	nopoll_ctx_set_permessage_deflate (ctx, nopoll_false);
	fd = raw_connect (port);
	CHECK (fd >= 0 && raw_upgrade (fd, port, "permessage-deflate", head, sizeof (head)));
	CHECK (strstr (head, "Sec-WebSocket-Extensions") == NULL);
	raw_bye (fd);
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
}

static noPollConn * deflate_client (noPollCtx * cctx, const char * port, int no_context_takeover)
{
	noPollConnOpts * opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_permessage_deflate (opts, nopoll_true, no_context_takeover);
	return nopoll_conn_new_opts (cctx, opts, "127.0.0.1", port, NULL, "/", NULL, NULL);
}

static int echoed (noPollConn * conn, const char * data, long len, int binary)
{
	noPollMsg * msg;
	int ok;
	if (binary)
		CHECK_INT (nopoll_conn_send_binary (conn, data, len), len);
	else
		CHECK_INT (nopoll_conn_send_text (conn, data, len), len);
	msg = wait_msg (conn, scaled (10000, 60000));
	if (msg == NULL)
		return 0;
	ok = nopoll_msg_get_payload_size (msg) == len
		&& memcmp (nopoll_msg_get_payload (msg), data, (size_t) len) == 0
		&& (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME) == (binary != 0);
	nopoll_msg_unref (msg);
	return ok;
}

static void both_ends (void)
{
	noPollConn * listener;
	noPollConn * conn;
	char port[16];
	LoopThread lt;
	noPollCtx * ctx = new_server (&listener, port);
	noPollCtx * cctx = nopoll_ctx_new ();
	long i, n = 100000;
	char * text = (char *) malloc ((size_t) n);
	unsigned int x = 12345;
	int round;
	CHECK (text != NULL);
	note ("our client and our server: compressible and incompressible echo");
	nopoll_ctx_set_permessage_deflate (ctx, nopoll_true);
	nopoll_ctx_set_on_msg (ctx, on_echo, NULL);
	CHECK (loop_thread_start (&lt, ctx));
	conn = deflate_client (cctx, port, nopoll_false);
	CHECK (nopoll_conn_is_ok (conn) && client_ready (conn));
	CHECK (nopoll_conn_is_permessage_deflate (conn));
	for (round = 0; round < 3; round++) {
		for (i = 0; i < n; i++)
			text[i] = "{\"sensor\":17,\"temp\":21.5}, "[(i + round) % 28];
		CHECK (echoed (conn, text, n, 0));
		for (i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			text[i] = (char) (x >> 16);
		}
		CHECK (echoed (conn, text, 65536, 1));
		CHECK (echoed (conn, "", 0, 0));
	}
	CHECK_INT (shared_get (&server_saw_deflate), 1);
	nopoll_conn_close (conn);

	note ("no context takeover asked, granted");
	nopoll_ctx_set_permessage_deflate_no_context_takeover (ctx, nopoll_true);
	conn = deflate_client (cctx, port, nopoll_true);
	CHECK (nopoll_conn_is_ok (conn) && client_ready (conn));
	CHECK (nopoll_conn_is_permessage_deflate (conn));
	CHECK (echoed (conn, "hello hello hello hello", 23, 0));
	nopoll_conn_close (conn);

	note ("decompression bomb: 1009 at the message limit");
	/* (the message limit is never below the frame limit) */
	nopoll_ctx_set_max_frame_size (ctx, 32 * 1024);
	nopoll_ctx_set_max_message_size (ctx, 64 * 1024);
	conn = deflate_client (cctx, port, nopoll_false);
	CHECK (nopoll_conn_is_ok (conn) && client_ready (conn));
	free (text);
	n = 1024L * 1024;
	text = (char *) calloc ((size_t) n, 1);
	CHECK (text != NULL);
	CHECK_INT (nopoll_conn_send_binary (conn, text, n), n);
	while (nopoll_conn_is_ok (conn)) {
		noPollMsg * msg = wait_msg (conn, scaled (10000, 60000));
		CHECK (msg == NULL);
		if (msg == NULL)
			break;
		nopoll_msg_unref (msg);
	}
	CHECK_INT (nopoll_conn_get_close_status (conn), 1009);
	nopoll_conn_close (conn);
	free (text);

	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	nopoll_ctx_unref (cctx);
}

static void client_refuses_what_it_did_not_get (void)
{
	int lfd, port_n, sfd;
	char port[16], head[2048];
	noPollCtx * cctx = nopoll_ctx_new ();
	noPollConn * conn;
	note ("client: an answer without the asked no_context_takeover fails");
	lfd = raw_listen (4, &port_n);
	CHECK (lfd >= 0);
	sprintf (port, "%d", port_n);
	/* the handshake runs in nopoll_conn_new_opts; the raw server answers
	 * after accept, which the kernel completes without us */
	conn = deflate_client (cctx, port, nopoll_true);
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0);
	CHECK (raw_server_handshake (sfd, head, sizeof (head), "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
	CHECK (strstr (head, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits\r\n") != NULL);
	CHECK (! client_ready (conn));
	CHECK (! nopoll_conn_is_permessage_deflate (conn));
	nopoll_conn_close (conn);
	close (sfd);
	close (lfd);
	nopoll_ctx_unref (cctx);
}

int main (void)
{
	check_init ("deflate", 120);
	/* NULL handles are ignored */
	nopoll_ctx_set_permessage_deflate (NULL, nopoll_true);
	nopoll_ctx_set_permessage_deflate_no_context_takeover (NULL, nopoll_true);
	nopoll_ctx_set_permessage_deflate_level (NULL, 1);
	nopoll_conn_opts_set_permessage_deflate (NULL, nopoll_true, nopoll_true);
	CHECK (! nopoll_conn_is_permessage_deflate (NULL));
	off_by_default ();
	raw_peer ();
	both_ends ();
	client_refuses_what_it_did_not_get ();
	return check_done ();
}
