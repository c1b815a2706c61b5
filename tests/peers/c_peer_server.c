/* c_peer_server: nopoll server side of the close-code interop tests
 * (tests/peers/). An echo server on 127.0.0.1 that also
 *
 *   - prints "closed ID STATUS REASON" when a connection ends, with the
 *     status and reason the peer's close frame carried (1005 without a
 *     status, 1006 without a close frame);
 *   - on the text message "close CODE REASON", closes that connection
 *     with nopoll_conn_close_ext (CODE, REASON) instead of echoing.
 *
 *   c_peer_server [PORT [KEEPALIVE_MS]]
 *
 * PORT: default 0, any free port (prints "ready PORT"). KEEPALIVE_MS:
 * turns the keepalive extension on (nopoll_ctx_set_keepalive: a ping
 * after that long without input, closed with 1006 when nothing answers
 * within as long again).
 *
 * SIGTERM/SIGINT stop it. */
#include <nopoll.h>
#include <signal.h>

static noPollCtx * ctx;

static void on_signal (int sig)
{
	(void) sig;
	nopoll_loop_stop (ctx);
}

static void on_close (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	const char * reason = nopoll_conn_get_close_reason (conn);
	(void) c;
	(void) user_data;
	printf ("closed %d %d %s\n", nopoll_conn_get_id (conn), nopoll_conn_get_close_status (conn),
		reason ? reason : "");
	fflush (stdout);
}

static nopoll_bool on_ready (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	nopoll_conn_set_on_close (conn, on_close, NULL);
	return nopoll_true;
}

static void on_msg (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * p    = (const char *) nopoll_msg_get_payload (msg);
	long         size = nopoll_msg_get_payload_size (msg);
	(void) c;
	(void) user_data;
	if (p == NULL)
		p = "";
	if (nopoll_msg_opcode (msg) == NOPOLL_TEXT_FRAME && size > 6 && strncmp (p, "close ", 6) == 0) {
		int          code   = atoi (p + 6);
		const char * reason = strchr (p + 6, ' ');
		reason = reason ? reason + 1 : "";
		nopoll_conn_close_ext (conn, code, reason, (int) strlen (reason));
		return;
	}
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, p, size);
	else
		nopoll_conn_send_text (conn, p, size);
}

int main (int argc, char ** argv)
{
	noPollConn * listener;

	ctx = nopoll_ctx_new ();
	nopoll_ctx_set_max_frame_size (ctx, 20L * 1024L * 1024L);
	if (argc > 2)
		nopoll_ctx_set_keepalive (ctx, atol (argv[2]), atol (argv[2]));
	listener = nopoll_listener_new (ctx, "127.0.0.1", argc > 1 ? argv[1] : "0");
	if (! nopoll_conn_is_ok (listener)) {
		fprintf (stderr, "c_peer_server: cannot listen\n");
		return 1;
	}
	nopoll_ctx_set_on_ready (ctx, on_ready, NULL);
	nopoll_ctx_set_on_msg (ctx, on_msg, NULL);
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);
	printf ("ready %s\n", nopoll_conn_port (listener));
	fflush (stdout);
	nopoll_loop_wait (ctx, 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	return 0;
}
