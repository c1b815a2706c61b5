/*
 * hooks: the firmware hooks and buffer settings (README, "Extensions
 * beyond nopoll's API"), each checked by its effect on a std build:
 *
 * - nopoll_install_random: with a hook that fills 0x5A, the client's
 *   Sec-WebSocket-Key is base64 of sixteen 0x5A bytes and its frames are
 *   masked with 5A 5A 5A 5A; after uninstalling (NULL) they are not;
 * - nopoll_install_clock: with a clock running 10 times slower than real
 *   time (and wrapping around on the way), nopoll_loop_wait with a 200 ms
 *   timeout returns -3 after about 2 s; with NULL, after 200 ms again;
 *   read by eight threads at once, it never jumps ahead;
 * - nopoll_ctx_set_recv_buffer_size: a 300-byte loop buffer still echoes a
 *   64 KiB message intact;
 * - nopoll_ctx_set_max_pending_output: with a peer that never reads, the
 *   output a client queues stays within the limit plus one message; with
 *   the default it grows to megabytes;
 * - nopoll_ctx_set_max_idle_buffers: after echoing 512 KiB a server keeps
 *   its buffers by default and gives them back with a limit of 0;
 * - nopoll_loop_stop on a context created after 4,100 others (beyond the
 *   lock-free stop cells) still stops its loop;
 * - nopoll_ctx_set_memory_budget: with a 256 KiB budget, a raw peer's
 *   endless fragmented message is closed with 1009, the memory in use
 *   (nopoll_ctx_get_memory_in_use) goes back to where it was, and another
 *   client's echo still works;
 * - nopoll_ctx_set_keepalive: a raw peer that completes the handshake and
 *   goes silent gets a ping, then is closed: its on_close sees 1006;
 *   nopoll_ctx_set_idle_timeout: a silent peer gets a close frame 1001.
 */
#include "check.h"
#include <sys/resource.h>
#include <malloc.h>

static int random_calls = 0;

static void fill_5a (unsigned char * buffer, size_t size)
{
	memset (buffer, 0x5a, size);
	shared_add (&random_calls, 1);
}

/* A client against a raw server: returns the key it sent and the mask of
 * its first frame. */
static void client_key_and_mask (char * key, int cap, unsigned char mask[4])
{
	int port_num = 0;
	int lfd = raw_listen (4, &port_num);
	char port[16];
	char head[2048];
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * conn;
	RawFrame f;
	int fd;
	sprintf (port, "%d", port_num);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", NULL, NULL);
	CHECK (nopoll_conn_is_ok (conn));
	fd = raw_accept (lfd, 5000);
	CHECK (fd >= 0);
	CHECK (raw_server_handshake (fd, head, sizeof (head), NULL));
	CHECK (raw_header (head, "Sec-WebSocket-Key", key, cap));
	CHECK (nopoll_conn_wait_until_connection_ready (conn, 5));
	CHECK_INT (nopoll_conn_send_text (conn, "hi", 2), 2);
	CHECK (raw_read_frame_header (fd, &f));
	CHECK (f.masked);
	memcpy (mask, f.mask, 4);
	close (fd);
	close (lfd);
	nopoll_conn_close (conn);
	nopoll_ctx_unref (ctx);
}

static void random_hook (void)
{
	char key[64];
	unsigned char mask[4];
	note ("nopoll_install_random");
	nopoll_install_random (fill_5a);
	client_key_and_mask (key, sizeof (key), mask);
	printf ("   key with the hook: %s, mask %02x%02x%02x%02x\n", key, mask[0], mask[1], mask[2], mask[3]);
	CHECK_STR (key, "WlpaWlpaWlpaWlpaWlpaWg==");
	CHECK (mask[0] == 0x5a && mask[1] == 0x5a && mask[2] == 0x5a && mask[3] == 0x5a);
	CHECK (shared_get (&random_calls) >= 2);
	nopoll_install_random (NULL);
	client_key_and_mask (key, sizeof (key), mask);
	printf ("   key without: %s\n", key);
	CHECK (strcmp (key, "WlpaWlpaWlpaWlpaWlpaWg==") != 0);
}

static double clock_origin = 0;

/* Ten times slower than real time, starting 50 ms (of its own) before the
 * wrap-around of unsigned long. */
static unsigned long slow_clock (void)
{
	return (unsigned long) ((now_ms () - clock_origin) / 10.0) + ((unsigned long) -1 - 50UL);
}

static void clock_hook (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * listener = nopoll_listener_new (ctx, "127.0.0.1", "0");
	double start, took;
	note ("nopoll_install_clock");
	CHECK (nopoll_conn_is_ok (listener));
	clock_origin = now_ms ();
	nopoll_install_clock (slow_clock);
	start = now_ms ();
	CHECK_INT (nopoll_loop_wait (ctx, 200000L), -3);
	took = now_ms () - start;
	printf ("   200 ms loop timeout on the slow clock (wrapping) took %.0f ms\n", took);
	CHECK (took >= 1500.0 && took < 6000.0);
	nopoll_install_clock (NULL);
	start = now_ms ();
	CHECK_INT (nopoll_loop_wait (ctx, 200000L), -3);
	took = now_ms () - start;
	printf ("   200 ms loop timeout on the real clock took %.0f ms\n", took);
	CHECK (took >= 150.0 && took < 1500.0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
}

/* The real clock in milliseconds, read by many threads at once. */
static unsigned long real_clock (void)
{
	return (unsigned long) now_ms ();
}

static void * timed_loops (void * arg)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	double * shortest = (double *) arg;
	int i;
	*shortest = 1e9;
	for (i = 0; i < 4; i++) {
		double start = now_ms (), took;
		if (nopoll_loop_wait (ctx, 150000L) != -3)
			*shortest = -1.0;
		took = now_ms () - start;
		if (took < *shortest)
			*shortest = took;
	}
	nopoll_ctx_unref (ctx);
	return NULL;
}

/* Eight threads reading a hook clock concurrently: a reading stored out
 * of order must not look like a wrap-around (time jumping to the end). */
static void clock_hook_threads (void)
{
	pthread_t t[8];
	double shortest[8];
	int i;
	note ("nopoll_install_clock from many threads");
	nopoll_install_clock (real_clock);
	for (i = 0; i < 8; i++)
		CHECK (spawn (&t[i], timed_loops, &shortest[i]));
	for (i = 0; i < 8; i++) {
		pthread_join (t[i], NULL);
		CHECK (shortest[i] >= 120.0);
	}
	nopoll_install_clock (NULL);
}

static void echo (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	nopoll_conn_send_binary (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
}

/* An echo server (its loop in a thread) and one client connected to it. */
typedef struct {
	noPollCtx  * sctx;
	noPollCtx  * cctx;
	noPollConn * listener;
	noPollConn * conn;
	LoopThread   lt;
} EchoPair;

static void echo_open (EchoPair * e)
{
	e->listener = nopoll_listener_new (e->sctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (e->listener));
	nopoll_ctx_set_on_msg (e->sctx, echo, NULL);
	CHECK (loop_thread_start (&e->lt, e->sctx));
	e->conn = nopoll_conn_new (e->cctx, "127.0.0.1", nopoll_conn_port (e->listener), NULL, "/", NULL, NULL);
	CHECK (client_ready (e->conn));
}

/* The client closes; once the server has dropped its side (registered
 * connections keep a context alive) its loop stops and all is freed. */
static void echo_close (EchoPair * e)
{
	double deadline = now_ms () + 5000.0;
	nopoll_conn_close (e->conn);
	while (nopoll_ctx_conns (e->sctx) > 1 && now_ms () < deadline)
		sleep_ms (1);
	CHECK_INT (nopoll_ctx_conns (e->sctx), 1);
	CHECK_INT (loop_thread_stop (&e->lt), 0);
	nopoll_conn_close (e->listener);
	nopoll_ctx_unref (e->cctx);
	nopoll_ctx_unref (e->sctx);
}

static void small_recv_buffer (void)
{
	EchoPair e;
	noPollMsg * msg;
	static char data[65536];
	int i;
	note ("nopoll_ctx_set_recv_buffer_size");
	e.sctx = nopoll_ctx_new ();
	e.cctx = nopoll_ctx_new ();
	nopoll_ctx_set_recv_buffer_size (NULL, 300);  /* ignored */
	nopoll_ctx_set_recv_buffer_size (e.sctx, 0);  /* ignored */
	nopoll_ctx_set_recv_buffer_size (e.sctx, 300);
	nopoll_ctx_set_recv_buffer_size (e.cctx, 300);
	echo_open (&e);
	for (i = 0; i < (int) sizeof (data); i++)
		data[i] = (char) (i * 7 + 3);
	CHECK_INT (nopoll_conn_send_binary (e.conn, data, sizeof (data)), (int) sizeof (data));
	msg = wait_msg (e.conn, scaled (10000, 30000));
	CHECK (msg != NULL);
	if (msg != NULL) {
		CHECK_INT (nopoll_msg_get_payload_size (msg), (int) sizeof (data));
		CHECK (memcmp (nopoll_msg_get_payload (msg), data, sizeof (data)) == 0);
		nopoll_msg_unref (msg);
	}
	echo_close (&e);
}

/* The most output a client keeps queued (nopoll_conn_pending_write_bytes)
 * while it tries to send 200 messages of 64 KiB to a raw peer that never
 * reads. */
static long most_pending (long limit)
{
	int port_num = 0;
	int lfd = raw_listen (4, &port_num);
	char port[16];
	char head[2048];
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * conn;
	static char data[65536];
	long most = 0;
	int fd, i;
	sprintf (port, "%d", port_num);
	if (limit > 0)
		nopoll_ctx_set_max_pending_output (ctx, limit);
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", NULL, NULL);
	fd = raw_accept (lfd, 5000);
	CHECK (fd >= 0);
	CHECK (raw_server_handshake (fd, head, sizeof (head), NULL));
	CHECK (nopoll_conn_wait_until_connection_ready (conn, 5));
	for (i = 0; i < 200; i++) {
		long pending;
		nopoll_conn_send_binary (conn, data, sizeof (data));
		pending = nopoll_conn_pending_write_bytes (conn);
		if (pending > most)
			most = pending;
	}
	close (fd);
	close (lfd);
	nopoll_conn_close (conn);
	nopoll_ctx_unref (ctx);
	return most;
}

static void max_pending_output (void)
{
	long small, large;
	note ("nopoll_ctx_set_max_pending_output");
	nopoll_ctx_set_max_pending_output (NULL, 1000);  /* ignored */
	small = most_pending (1000);
	large = most_pending (0);
	printf ("   most output queued: %ld bytes with a 1000-byte limit, %ld with the default\n",
		small, large);
	/* a message is refused once the queue is over the limit */
	CHECK (small <= 1000L + 65536L + 14L);
	CHECK (large >= 4L * 1024L * 1024L);
}

/* Heap in use (glibc: arena plus mmapped blocks). */
static long heap_in_use (void)
{
	struct mallinfo2 mi = mallinfo2 ();
	return (long) (mi.uordblks + mi.hblkhd);
}

/* Heap still held once a server has echoed one 512 KiB message and both
 * sides have read everything (the client's copy released). */
static long heap_after_echo (long idle_limit)
{
	EchoPair e;
	noPollMsg * msg;
	static char data[512 * 1024];
	long before, after;
	e.sctx = nopoll_ctx_new ();
	e.cctx = nopoll_ctx_new ();
	if (idle_limit >= 0)
		nopoll_ctx_set_max_idle_buffers (e.sctx, idle_limit);
	/* the client's own buffers must not count: it releases them at once */
	nopoll_ctx_set_max_idle_buffers (e.cctx, 0);
	echo_open (&e);
	sleep_ms (50);
	before = heap_in_use ();
	CHECK_INT (nopoll_conn_send_binary (e.conn, data, sizeof (data)), (int) sizeof (data));
	msg = wait_msg (e.conn, scaled (10000, 30000));
	CHECK (msg != NULL);
	if (msg != NULL) {
		CHECK_INT (nopoll_msg_get_payload_size (msg), (int) sizeof (data));
		nopoll_msg_unref (msg);
	}
	sleep_ms (50);
	after = heap_in_use ();
	echo_close (&e);
	return after - before;
}

static void max_idle_buffers (void)
{
	long kept_default, kept_zero;
	note ("nopoll_ctx_set_max_idle_buffers");
	nopoll_ctx_set_max_idle_buffers (NULL, 0);  /* ignored */
	if (heap_in_use () == 0) {
		/* valgrind's malloc: glibc's statistics stay at zero */
		printf ("   skipped: mallinfo2 reports no heap (valgrind?)\n");
		return;
	}
	kept_default = heap_after_echo (-1);
	kept_zero = heap_after_echo (0);
	printf ("   heap kept after a 512 KiB echo: %ld bytes by default, %ld with a 0 limit\n",
		kept_default, kept_zero);
	CHECK (kept_default >= 512L * 1024L);
	CHECK (kept_zero < 128L * 1024L);
}

/* nopoll_loop_stop for a context beyond the lock-free stop cells (4096
 * with std): created after 4,100 others, its loop still stops. */
static void many_contexts_stop (void)
{
	static noPollCtx * ctxs[4101];
	struct rlimit rl;
	LoopThread lt;
	double start;
	int i, n = 0;
	note ("nopoll_loop_stop beyond the stop cells");
	if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit (RLIMIT_NOFILE, &rl);
	}
	if (getrlimit (RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 8400) {
		printf ("   skipped: the open-file limit is below 8,400\n");
		return;
	}
	for (i = 0; i < 4101; i++) {
		ctxs[i] = nopoll_ctx_new ();
		if (ctxs[i] == NULL)
			break;
		n++;
	}
	CHECK_INT (n, 4101);
	if (n == 4101) {
		CHECK (loop_thread_start (&lt, ctxs[4100]));
		sleep_ms (50);
		start = now_ms ();
		CHECK_INT (loop_thread_stop (&lt), 0);
		printf ("   loop of context #4101 stopped in %.1f ms\n", now_ms () - start);
		CHECK (now_ms () - start < 2000.0);
	}
	for (i = 0; i < n; i++)
		nopoll_ctx_unref (ctxs[i]);
}

static int closed_status = 0;

static void record_close (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	shared_set (&closed_status, nopoll_conn_get_close_status (conn));
}

static nopoll_bool watch_close (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	nopoll_conn_set_on_close (conn, record_close, NULL);
	return nopoll_true;
}

/* A server with its loop running and a raw client that completed its
 * handshake; returns the raw socket. */
static int raw_peer_of (EchoPair * e)
{
	int fd;
	nopoll_ctx_set_on_ready (e->sctx, watch_close, NULL);
	e->listener = nopoll_listener_new (e->sctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (e->listener));
	nopoll_ctx_set_on_msg (e->sctx, echo, NULL);
	CHECK (loop_thread_start (&e->lt, e->sctx));
	fd = raw_connect (nopoll_conn_port (e->listener));
	CHECK (fd >= 0);
	raw_set_timeout (fd, scaled (10000, 30000));
	CHECK (raw_client_handshake (fd, nopoll_conn_port (e->listener), "/", NULL));
	return fd;
}

static void raw_peer_done (EchoPair * e, int fd)
{
	double deadline = now_ms () + 5000.0;
	close (fd);
	/* the server drops its side (a registered connection keeps the
	 * context alive) */
	while (nopoll_ctx_conns (e->sctx) > 1 && now_ms () < deadline)
		sleep_ms (1);
	CHECK_INT (nopoll_ctx_conns (e->sctx), 1);
	CHECK_INT (loop_thread_stop (&e->lt), 0);
	nopoll_conn_close (e->listener);
	nopoll_ctx_unref (e->sctx);
}

static void memory_budget (void)
{
	EchoPair e;
	RawFrame f;
	static unsigned char piece[32768];
	unsigned char buf[256];
	int fd, i, status = 0;
	long before;
	double deadline;
	note ("nopoll_ctx_set_memory_budget, nopoll_ctx_get_memory_in_use");
	nopoll_ctx_set_memory_budget (NULL, 1000);  /* ignored */
	CHECK_INT (nopoll_ctx_get_memory_in_use (NULL), -1);
	e.sctx = nopoll_ctx_new ();
	CHECK_INT (nopoll_ctx_get_memory_in_use (e.sctx), 0);
	nopoll_ctx_set_memory_budget (e.sctx, 256L * 1024L);
	nopoll_ctx_set_memory_budget (e.sctx, -5);  /* ignored */
	fd = raw_peer_of (&e);
	before = nopoll_ctx_get_memory_in_use (e.sctx);
	CHECK (raw_send_frame (fd, 0, 2, 1, piece, sizeof (piece)));
	/* up to 2 MiB, never finished: the server closes it at 256 KiB */
	for (i = 0; i < 64; i++)
		if (! raw_send_frame (fd, 0, 0, 1, piece, sizeof (piece)))
			break;
	while (raw_read_frame (fd, &f, buf, sizeof (buf)))
		if (f.opcode == 8) {
			status = raw_close_status (&f, buf);
			break;
		}
	CHECK_INT (status, 1009);
	deadline = now_ms () + 5000.0;
	while (shared_get (&closed_status) == 0 && now_ms () < deadline)
		sleep_ms (1);
	CHECK (shared_get (&closed_status) != 0);
	CHECK (nopoll_ctx_get_memory_in_use (e.sctx) <= before);
	shared_set (&closed_status, 0);
	raw_peer_done (&e, fd);
}

static void keepalive (void)
{
	EchoPair e;
	RawFrame f;
	unsigned char buf[256];
	int fd, pinged = 0, status = 0;
	double deadline;
	note ("nopoll_ctx_set_keepalive, nopoll_ctx_set_idle_timeout");
	nopoll_ctx_set_keepalive (NULL, 100, 100);  /* ignored */
	nopoll_ctx_set_idle_timeout (NULL, 100);     /* ignored */
	e.sctx = nopoll_ctx_new ();
	nopoll_ctx_set_keepalive (e.sctx, 100, 200);
	fd = raw_peer_of (&e);
	/* silent: pinged, never answers, dropped */
	while (raw_read_frame (fd, &f, buf, sizeof (buf)))
		if (f.opcode == 9)
			pinged = 1;
	CHECK (pinged);
	deadline = now_ms () + 5000.0;
	while (shared_get (&closed_status) == 0 && now_ms () < deadline)
		sleep_ms (1);
	CHECK_INT (shared_get (&closed_status), 1006);
	shared_set (&closed_status, 0);
	raw_peer_done (&e, fd);

	e.sctx = nopoll_ctx_new ();
	nopoll_ctx_set_idle_timeout (e.sctx, 150);
	fd = raw_peer_of (&e);
	while (raw_read_frame (fd, &f, buf, sizeof (buf)))
		if (f.opcode == 8) {
			status = raw_close_status (&f, buf);
			break;
		}
	CHECK_INT (status, 1001);
	raw_peer_done (&e, fd);
}

int main (void)
{
	check_init ("hooks", 60);
	random_hook ();
	clock_hook ();
	clock_hook_threads ();
	small_recv_buffer ();
	max_pending_output ();
	max_idle_buffers ();
	many_contexts_stop ();
	memory_budget ();
	keepalive ();
	return check_done ();
}
