/*
 * extensions: the calls this library adds to nopoll's API (README,
 * "Extensions beyond nopoll's API"), each checked by its effect:
 *
 * - nopoll_ctx_set_handshake_timeout: a peer that connects and says
 *   nothing is dropped after the timeout (and not before it);
 * - nopoll_ctx_set_listen_backlog: with backlog 1 and nobody accepting,
 *   only a couple of 10 connects complete; with the default all do;
 * - nopoll_ctx_set_max_message_size: a fragmented message over the limit
 *   (every frame under the frame limit) is closed with 1009;
 * - nopoll_ctx_set_fragment_delivery: a message in two frames reaches
 *   on_msg as two pieces (is_final / is_fragment), whole messages otherwise.
 *
 * The HTTP request extension is checked by tests/interop (chat server).
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

static void handshake_timeout (void)
{
	noPollConn * listener;
	char port[16];
	LoopThread lt;
	noPollCtx * ctx = new_server (&listener, port);
	int fd, fd2;
	char buf[64];
	double start, took;
	note ("nopoll_ctx_set_handshake_timeout");
	nopoll_ctx_set_handshake_timeout (ctx, 300000);
	CHECK (loop_thread_start (&lt, ctx));
	fd = raw_connect (port);
	CHECK (fd >= 0);
	start = now_ms ();
	/* the server closes the silent connection: recv sees the end */
	CHECK (recv (fd, buf, sizeof (buf), 0) == 0);
	took = now_ms () - start;
	printf ("   silent peer dropped after %.0f ms\n", took);
	CHECK (took >= 250.0);
	CHECK (took < (double) scaled (3000, 20000));
	close (fd);
	/* Lowered while a peer is waiting out a long timeout: a new silent
	 * peer is still dropped after the new, shorter one. */
	nopoll_ctx_set_handshake_timeout (ctx, 5000000);
	fd = raw_connect (port);
	CHECK (fd >= 0);
	sleep_ms (50);
	nopoll_ctx_set_handshake_timeout (ctx, 200000);
	fd2 = raw_connect (port);
	CHECK (fd2 >= 0);
	start = now_ms ();
	CHECK (recv (fd2, buf, sizeof (buf), 0) == 0);
	took = now_ms () - start;
	printf ("   after lowering the timeout, a new silent peer dropped after %.0f ms\n", took);
	CHECK (took < (double) scaled (2500, 4500));
	close (fd2);
	close (fd);
	CHECK (wait_ctx_conns (ctx, 1));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
}

/* Connects `n` non-blocking sockets; how many complete within 300 ms. */
static int connects_completed (const char * port, int n)
{
	int fds[16];
	int i, done = 0;
	struct pollfd p;
	for (i = 0; i < n; i++) {
		struct sockaddr_in sa;
		fds[i] = socket (AF_INET, SOCK_STREAM, 0);
		fcntl (fds[i], F_SETFL, O_NONBLOCK);
		memset (&sa, 0, sizeof (sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
		sa.sin_port = htons ((unsigned short) atoi (port));
		connect (fds[i], (struct sockaddr *) &sa, sizeof (sa));
	}
	sleep_ms (300);
	for (i = 0; i < n; i++) {
		int err = -1;
		socklen_t len = sizeof (err);
		p.fd = fds[i];
		p.events = POLLOUT;
		p.revents = 0;
		if (poll (&p, 1, 0) == 1 && (p.revents & POLLOUT)
		    && getsockopt (fds[i], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
			done++;
		close (fds[i]);
	}
	return done;
}

static void listen_backlog (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * small;
	noPollConn * large;
	int n_small, n_large;
	note ("nopoll_ctx_set_listen_backlog");
	/* nobody accepts (no loop): the kernel queues about backlog + 1 */
	nopoll_ctx_set_listen_backlog (ctx, 0);    /* ignored */
	nopoll_ctx_set_listen_backlog (ctx, -5);   /* ignored */
	nopoll_ctx_set_listen_backlog (ctx, 1);
	small = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (small));
	n_small = connects_completed (nopoll_conn_port (small), 10);
	nopoll_ctx_set_listen_backlog (ctx, 1024);
	large = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (large));
	n_large = connects_completed (nopoll_conn_port (large), 10);
	printf ("   connects completed: %d of 10 with backlog 1, %d with 1024\n", n_small, n_large);
	CHECK (n_small <= 3);
	CHECK_INT (n_large, 10);
	nopoll_conn_close (small);
	nopoll_conn_close (large);
	nopoll_ctx_unref (ctx);
}

static void max_message_size (void)
{
	noPollConn * listener;
	char port[16];
	LoopThread lt;
	noPollCtx * ctx = new_server (&listener, port);
	unsigned char part[600];
	unsigned char buf[256];
	RawFrame f;
	int fd;
	note ("nopoll_ctx_set_max_message_size");
	nopoll_ctx_set_max_message_size (ctx, 0);      /* ignored */
	nopoll_ctx_set_max_message_size (ctx, 1000);
	nopoll_ctx_set_max_frame_size (ctx, 800);
	CHECK (loop_thread_start (&lt, ctx));
	memset (part, 'x', sizeof (part));
	/* 600 + 400 = the limit exactly: delivered (the server has no handler;
	 * it answers nothing), then 600 + 600: 1009 */
	fd = raw_connect (port);
	CHECK (fd >= 0 && raw_client_handshake (fd, port, "/", NULL));
	CHECK (raw_send_frame (fd, 0, 2, 1, part, 600));
	CHECK (raw_send_frame (fd, 1, 0, 1, part, 400));
	CHECK (raw_send_frame (fd, 0, 2, 1, part, 600));
	CHECK (raw_send_frame (fd, 1, 0, 1, part, 600));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1009);
	close (fd);
	CHECK (wait_ctx_conns (ctx, 1));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
}

static int pieces = 0;
static int first_final = -1, first_fragment = -1, last_final = -1, last_fragment = -1;
static int total_size = 0;

static void on_piece (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	int n = shared_add (&pieces, 1);
	(void) ctx; (void) conn; (void) user_data;
	if (n == 1) {
		shared_set (&first_final, nopoll_msg_is_final (msg));
		shared_set (&first_fragment, nopoll_msg_is_fragment (msg));
	}
	shared_set (&last_final, nopoll_msg_is_final (msg));
	shared_set (&last_fragment, nopoll_msg_is_fragment (msg));
	shared_add (&total_size, (int) nopoll_msg_get_payload_size (msg));
}

static void fragment_delivery (int enable)
{
	noPollConn * listener;
	char port[16];
	LoopThread lt;
	noPollCtx * ctx = new_server (&listener, port);
	int fd;
	note (enable ? "nopoll_ctx_set_fragment_delivery (on)" : "nopoll_ctx_set_fragment_delivery (off)");
	shared_set (&pieces, 0);
	shared_set (&total_size, 0);
	nopoll_ctx_set_fragment_delivery (ctx, enable);
	nopoll_ctx_set_on_msg (ctx, on_piece, NULL);
	CHECK (loop_thread_start (&lt, ctx));
	fd = raw_connect (port);
	CHECK (fd >= 0 && raw_client_handshake (fd, port, "/", NULL));
	CHECK (raw_send_frame (fd, 0, 1, 1, "ab", 2));
	sleep_ms (50);
	CHECK (raw_send_frame (fd, 1, 0, 1, "cd", 2));
	CHECK (wait_for (&total_size, 4, scaled (5000, 30000)));
	if (enable) {
		CHECK_INT (shared_get (&pieces), 2);
		CHECK_INT (shared_get (&first_final), 0);
		CHECK_INT (shared_get (&first_fragment), 1);
	} else {
		CHECK_INT (shared_get (&pieces), 1);
	}
	CHECK_INT (shared_get (&last_final), 1);
	CHECK_INT (shared_get (&last_fragment), 0);
	close (fd);
	CHECK (wait_ctx_conns (ctx, 1));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
}

int main (void)
{
	check_init ("extensions", 60);
	/* NULL contexts are ignored */
	nopoll_ctx_set_handshake_timeout (NULL, 1);
	nopoll_ctx_set_listen_backlog (NULL, 1);
	nopoll_ctx_set_max_message_size (NULL, 1);
	nopoll_ctx_set_fragment_delivery (NULL, nopoll_true);
	handshake_timeout ();
	listen_backlog ();
	max_message_size ();
	fragment_delivery (1);
	fragment_delivery (0);
	return check_done ();
}
