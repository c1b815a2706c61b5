/*
 * two_readers: one connection read by two threads at once, the loop
 * (on_msg) and the application (poll, then nopoll_conn_get_msg), as a
 * program that polls its client while a loop thread serves the context
 * does. Reading must be exclusive: bytes reach the engine in the order
 * the socket gave them, so every message arrives whole, exactly once, and
 * in order for each reader; the connection is never failed for a
 * protocol error the peer did not make.
 *
 * To make an overlap certain rather than lucky, a socket table installed
 * before any other nopoll call wraps recv: on the loop thread, a recv
 * that got data returns only after a short pause, so the application's
 * thread reads the next bytes in the meantime. (Without exclusive
 * reading, those later bytes were fed to the engine first.)
 */
#include "check.h"

#define MSGS 4000

static noPollSocketOps slow_loop;
static const noPollSocketOps * real;
static pthread_t app_thread;
static int watched_fd = -1;
static int paused = 0;

static ssize_t s_recv (int fd, void * buf, size_t len, int flags)
{
	ssize_t n = real->recv (fd, buf, len, flags);
	if (n > 0 && fd == shared_get (&watched_fd) && ! pthread_equal (pthread_self (), app_thread)) {
		shared_add (&paused, 1);
		sleep_ms (2);
	}
	return n;
}

static int got_by_loop = 0;
static int got_by_app = 0;
static int bad = 0;
static int last_loop = -1;
static int last_app = -1;

/* Message i is "m<i>:" followed by (i % 97) + 1 copies of 'a' + i % 26;
 * each reader sees increasing numbers. */
static int check_msg (const char * p, long size, int * last)
{
	int i, k, pre;
	if (p == NULL || sscanf (p, "m%d:%n", &i, &pre) != 1 || i <= *last || i >= MSGS)
		return 0;
	if (size != pre + (i % 97) + 1)
		return 0;
	for (k = pre; k < size; k++)
		if (p[k] != 'a' + i % 26)
			return 0;
	*last = i;
	return 1;
}

static void on_msg (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) c;
	(void) conn;
	(void) user_data;
	if (! check_msg ((const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg), &last_loop))
		shared_add (&bad, 1);
	shared_add (&got_by_loop, 1);
}

static void * sender (void * arg)
{
	int fd = *(int *) arg;
	unsigned char * buf = (unsigned char *) malloc (16 * 1024);
	char text[160];
	long n = 0;
	int i, k, pre;
	for (i = 0; i < MSGS && buf != NULL; i++) {
		pre = sprintf (text, "m%d:", i);
		for (k = 0; k <= i % 97; k++)
			text[pre + k] = (char) ('a' + i % 26);
		n += raw_frame (buf + n, 1, NOPOLL_TEXT_FRAME, 0, text, pre + (i % 97) + 1);
		if (n > 15 * 1024 || i == MSGS - 1) {
			if (! raw_send_all (fd, buf, n))
				break;
			n = 0;
		}
	}
	free (buf);
	return NULL;
}

static char head[4096];

int main (void)
{
	noPollCtx * ctx;
	noPollConn * conn;
	noPollMsg * msg;
	LoopThread lt;
	pthread_t st;
	double end;
	char port[16];
	int p = 0, lfd, fd;

	check_init ("two_readers", 300);
	app_thread = pthread_self ();
	real = nopoll_default_socket_ops ();
	CHECK (real != NULL);
	slow_loop = *real;
	slow_loop.recv = s_recv;
	CHECK (nopoll_install_socket_ops (&slow_loop));

	ctx = nopoll_ctx_new ();
	test_log (ctx, "two readers");
	/* small reads: many of them, from both threads */
	nopoll_ctx_set_recv_buffer_size (ctx, 256);
	lfd = raw_listen (4, &p);
	CHECK (lfd >= 0);
	sprintf (port, "%d", p);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	fd = raw_accept (lfd, 5000);
	CHECK (fd >= 0);
	CHECK (raw_server_handshake (fd, head, sizeof (head), NULL));
	CHECK (client_ready (conn));
	nopoll_conn_set_on_msg (conn, on_msg, NULL);
	shared_set (&watched_fd, nopoll_conn_socket (conn));
	CHECK (loop_thread_start (&lt, ctx));
	CHECK (spawn (&st, sender, &fd));
	end = now_ms () + (double) scaled (30000, 240000);
	/* The loop's first message before the application reads: the loop
	 * then surely read (and paused) at least once, however the threads
	 * are scheduled; the sender is still far from done, so both go on
	 * reading side by side. */
	while (shared_get (&got_by_loop) == 0 && nopoll_conn_is_ok (conn) && now_ms () < end)
		sleep_ms (1);
	while (shared_get (&got_by_loop) + shared_get (&got_by_app) < MSGS
	       && nopoll_conn_is_ok (conn) && now_ms () < end) {
		/* as the manual's clients do: wait for the socket, then read */
		struct pollfd pf;
		pf.fd = nopoll_conn_socket (conn);
		pf.events = POLLIN;
		pf.revents = 0;
		poll (&pf, 1, 10);
		msg = nopoll_conn_get_msg (conn);
		if (msg == NULL)
			continue;
		if (! check_msg ((const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg), &last_app))
			shared_add (&bad, 1);
		shared_add (&got_by_app, 1);
		nopoll_msg_unref (msg);
	}
	pthread_join (st, NULL);
	printf ("%d by the loop, %d by get_msg, %d bad, %d paused loop reads, conn ok %d\n",
		shared_get (&got_by_loop), shared_get (&got_by_app), shared_get (&bad),
		shared_get (&paused), (int) nopoll_conn_is_ok (conn));
	/* the loop read (waited for above); how many messages each thread
	 * got depends on scheduling and is only printed */
	CHECK (shared_get (&paused) > 0);
	CHECK_INT (shared_get (&got_by_loop) + shared_get (&got_by_app), MSGS);
	CHECK_INT (shared_get (&bad), 0);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (conn);
	close (fd);
	close (lfd);
	nopoll_ctx_unref (ctx);
	return check_done ();
}
