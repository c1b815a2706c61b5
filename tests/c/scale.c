/*
 * scale: the extensions for running behind load balancers, through the C API.
 *
 * - nopoll_loop_watch_fd: a socket of the application (one end of a
 *   socketpair) watched by nopoll_loop_wait; its handler runs on the loop's
 *   thread when readable, reads the byte, and stops the loop; unwatched,
 *   it no longer fires; bad arguments refused;
 * - nopoll_listener_set_proxy_protocol: a PROXY v1 header before the
 *   upgrade gives nopoll_conn_host / nopoll_conn_port the client's address
 *   and nopoll_conn_proxy_host the proxy's; a malformed one closes the
 *   connection without an answer;
 * - nopoll_ctx_set_trusted_proxies: X-Forwarded-For honoured from a
 *   trusted peer; malformed lists refused;
 * - nopoll_ctx_drain: a raw client (on a thread of its own) gets a close
 *   frame with 1001 and the reason; answering it completes the drain with
 *   nothing forced; bad arguments refused.
 */
#include "check.h"
#include <sys/socket.h>

static int watch_calls = 0;
static char watch_byte = 0;

static void on_fd (noPollCtx * ctx, NOPOLL_SOCKET fd, nopoll_bool readable, nopoll_bool writable, noPollPtr user_data)
{
	(void) writable;
	CHECK (user_data == (noPollPtr) &watch_calls);
	if (readable && read (fd, &watch_byte, 1) == 1)
		watch_calls++;
	nopoll_loop_stop (ctx);
}

static char seen_host[64], seen_port[16], seen_proxy[64];

static nopoll_bool on_open (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	const char * p = nopoll_conn_proxy_host (conn);
	(void) ctx; (void) user_data;
	strncpy (seen_host, nopoll_conn_host (conn), sizeof (seen_host) - 1);
	strncpy (seen_port, nopoll_conn_port (conn), sizeof (seen_port) - 1);
	strncpy (seen_proxy, p ? p : "(null)", sizeof (seen_proxy) - 1);
	return nopoll_true;
}

static void test_watch_fd (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	int sv[2];
	CHECK (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK (! nopoll_loop_watch_fd (NULL, sv[0], nopoll_true, nopoll_false, on_fd, NULL));
	CHECK (! nopoll_loop_watch_fd (ctx, -1, nopoll_true, nopoll_false, on_fd, NULL));
	CHECK (! nopoll_loop_watch_fd (ctx, sv[0], nopoll_true, nopoll_false, NULL, NULL));
	CHECK (nopoll_loop_watch_fd (ctx, sv[0], nopoll_true, nopoll_false, on_fd, &watch_calls));
	/* nothing to read: the loop times out, the handler never ran */
	CHECK_INT (nopoll_loop_wait (ctx, 50000), -3);
	CHECK_INT (watch_calls, 0);
	CHECK (write (sv[1], "x", 1) == 1);
	CHECK_INT (nopoll_loop_wait (ctx, 10L * 1000000L), 0);
	CHECK_INT (watch_calls, 1);
	CHECK (watch_byte == 'x');
	CHECK (nopoll_loop_unwatch_fd (ctx, sv[0]));
	CHECK (! nopoll_loop_unwatch_fd (ctx, sv[0]));
	CHECK (write (sv[1], "y", 1) == 1);
	CHECK_INT (nopoll_loop_wait (ctx, 50000), -3);
	CHECK_INT (watch_calls, 1);
	close (sv[0]);
	close (sv[1]);
	nopoll_ctx_unref (ctx);
}

static void test_proxy (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	LoopThread lt;
	char port[16], head[2048];
	const char * v1 = "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n";
	const char * bad = "PROXY TCP4 203.0.113.7 127.0.0.1 05555 80\r\n";
	int fd;
	CHECK (l != NULL);
	strcpy (port, nopoll_conn_port (l));
	CHECK (! nopoll_listener_set_proxy_protocol (NULL, nopoll_true));
	CHECK (nopoll_listener_set_proxy_protocol (l, nopoll_true));
	CHECK_INT (nopoll_ctx_set_trusted_proxies (ctx, "127.0.0.1, 10.0.0.0/8"), 2);
	CHECK_INT (nopoll_ctx_set_trusted_proxies (ctx, "127.0.0.1, not-an-address"), -1);
	CHECK_INT (nopoll_ctx_set_trusted_proxies (NULL, ""), -1);
	CHECK (nopoll_conn_proxy_host (NULL) == NULL);
	nopoll_ctx_set_on_open (ctx, on_open, NULL);
	CHECK (loop_thread_start (&lt, ctx));

	fd = raw_connect (port);
	CHECK (raw_send_all (fd, v1, (long) strlen (v1)));
	CHECK (raw_client_handshake (fd, port, "/", NULL));
	CHECK_STR (seen_host, "203.0.113.7");
	CHECK_STR (seen_port, "5555");
	CHECK_STR (seen_proxy, "127.0.0.1");
	close (fd);

	/* malformed: closed, no answer */
	fd = raw_connect (port);
	CHECK (raw_send_all (fd, bad, (long) strlen (bad)));
	CHECK_INT (raw_read_to_eof (fd, head, sizeof (head)), 0);
	close (fd);

	/* a listener without the option: X-Forwarded-For from a trusted peer */
	CHECK (nopoll_listener_set_proxy_protocol (l, nopoll_false));
	fd = raw_connect (port);
	CHECK (raw_client_handshake (fd, port, "/", "X-Forwarded-For: 198.51.100.4\r\n"));
	CHECK_STR (seen_host, "198.51.100.4");
	close (fd);
	/* the loop sees the clients go (bounded by the watchdog) */
	while (nopoll_ctx_conns (ctx) > 1)
		nopoll_sleep (10000);
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (l);
	nopoll_ctx_unref (ctx);
}

/* The client of the drain test, on its own thread: reads the close frame
 * (1001, "restart") and answers it. 0 when all was as expected. */
static int drain_peer_fd = -1;
static int drain_peer_result = -1;

static void * drain_peer (void * arg)
{
	RawFrame f;
	unsigned char payload[256];
	unsigned char reply[2] = { 0x03, 0xe9 };
	(void) arg;
	raw_set_timeout (drain_peer_fd, 10000);
	if (! raw_read_frame (drain_peer_fd, &f, payload, sizeof (payload)))
		drain_peer_result = 2;
	else if (f.opcode != 8 || raw_close_status (&f, payload) != 1001)
		drain_peer_result = 3;
	else if (f.len != 9 || memcmp (payload + 2, "restart", 7) != 0)
		drain_peer_result = 4;
	else
		drain_peer_result = raw_send_frame (drain_peer_fd, 1, 8, 1, reply, 2) ? 0 : 5;
	return NULL;
}

static void test_drain (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	LoopThread lt;
	pthread_t peer;
	char port[16];
	strcpy (port, nopoll_conn_port (l));
	CHECK_INT (nopoll_ctx_drain (NULL, 0, NULL, 0), -1);
	CHECK_INT (nopoll_ctx_drain (ctx, 0, NULL, -1), -1);
	CHECK_INT (nopoll_ctx_drain (ctx, 1005, NULL, 0), -1);
	CHECK (! nopoll_ctx_is_draining (ctx));
	CHECK (loop_thread_start (&lt, ctx));
	drain_peer_fd = raw_connect (port);
	CHECK (raw_client_handshake (drain_peer_fd, port, "/", NULL));
	nopoll_ctx_set_draining (ctx, nopoll_true);
	CHECK (nopoll_ctx_is_draining (ctx));
	/* The drain runs in this thread while the loop runs in its own; a
	 * third thread plays the client: it reads the close frame and answers
	 * it, which completes the close handshake before the deadline. */
	CHECK (spawn (&peer, drain_peer, NULL));
	CHECK_INT (nopoll_ctx_drain (ctx, 0, "restart", 10000), 0);
	pthread_join (peer, NULL);
	CHECK_INT (drain_peer_result, 0);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
	close (drain_peer_fd);
	CHECK_INT (loop_thread_stop (&lt), 0);
	/* closed by the drain; this lets go of the caller's reference */
	nopoll_conn_close (l);
	nopoll_ctx_unref (ctx);
}

int main (void)
{
	check_init ("scale", 60);
	test_watch_fd ();
	test_proxy ();
	test_drain ();
	return check_done ();
}
