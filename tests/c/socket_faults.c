/*
 * socket_faults: the library under a hostile socket layer.
 *
 * Before any other nopoll call, nopoll_install_socket_ops installs a table
 * that wraps nopoll_default_socket_ops () and injects, at pseudo-random
 * points (fixed seed, so a failure replays the same way):
 * - short reads: recv of 1..n bytes when n were asked for;
 * - short writes: send / sendmsg of 1..n bytes;
 * - EAGAIN storms: several -1/EAGAIN in a row from recv, send, sendmsg
 *   and accept (the sockets are still readable/writable: level-triggered
 *   readiness brings the library back);
 * - connection resets (a phase of their own): ECONNRESET on one chosen
 *   client connection and on one chosen server connection.
 * Phase 1: a server (loop thread, echoing every message) and clients
 * exchange messages of many sizes (1 B .. 256 KiB, text and binary) in
 * batches: every echo must come back whole, in order, with the right type,
 * size and checksum, none lost or duplicated. Each fault kind must have
 * been injected at least once.
 * Phase 2: the reset connections are reported closed with status 1006 and
 * the other connections keep being served.
 */
#include "check.h"

#define MAX_MSG    (256L * 1024L)
#define BATCH      4
#define NCLIENTS   3

/* ------------------------------------------------------------ the wrapper */

static noPollSocketOps faulty;
static const noPollSocketOps * real;

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long rng_state = 12345UL;
static int faults_on = 0;        /* phase 1 */
static int storm_recv = 0, storm_send = 0, storm_accept = 0;
static int reset_fd[2] = { -1, -1 };

/* counters (under fault_lock) */
static long n_short_reads = 0, n_short_writes = 0, n_eagain = 0, n_storms = 0, n_resets = 0;
/* storms started, per call: recv, send (and sendmsg), accept */
static long n_storms_of[3] = { 0, 0, 0 };
static long n_recv_calls = 0, n_send_calls = 0, n_accept_calls = 0;

static unsigned long rnd (void)
{
	rng_state = rng_state * 1103515245UL + 12345UL;
	return (rng_state >> 16) & 0x7fffUL;
}

/* Under fault_lock: whether this call is to fail with EAGAIN; a storm
 * starts with `percent` % probability and lasts 2..8 calls. Callers force
 * one now and then (percent 100) so that every kind occurs in a short run. */
static int eagain_now (int * storm, int kind, unsigned long percent)
{
	if (! faults_on)
		return 0;
	if (*storm > 0) {
		(*storm)--;
		n_eagain++;
		return 1;
	}
	if (rnd () % 100 < percent) {
		*storm = 1 + (int) (rnd () % 7);   /* this one plus 1..7 more */
		n_storms++;
		n_storms_of[kind]++;
		n_eagain++;
		return 1;
	}
	return 0;
}

/* Under fault_lock: whether fd is a connection to reset. */
static int reset_now (int fd)
{
	if (fd >= 0 && (fd == reset_fd[0] || fd == reset_fd[1])) {
		n_resets++;
		return 1;
	}
	return 0;
}

/* Under fault_lock: the length to pass on (shortened at times). */
static size_t short_len (size_t len, long * counter)
{
	if (faults_on && len > 1 && rnd () % 100 < 30) {
		(*counter)++;
		return 1 + (size_t) (rnd () * 32768UL + rnd ()) % (len - 1);
	}
	return len;
}

/* The fault of one recv (dir 0) or send/sendmsg (dir 1) call on fd for
 * `*len` bytes: an errno value set and returned (a reset, or EAGAIN in a
 * storm), or 0 with `*len` possibly shortened. */
static int io_fault (int fd, int dir, size_t * len)
{
	long * calls = dir == 0 ? &n_recv_calls : &n_send_calls;
	int err = 0;
	pthread_mutex_lock (&fault_lock);
	(*calls)++;
	if (reset_now (fd))
		err = ECONNRESET;
	else if (eagain_now (dir == 0 ? &storm_recv : &storm_send, dir, *calls % 50 == 10 ? 100 : 3))
		err = EAGAIN;
	else
		*len = short_len (*len, dir == 0 ? &n_short_reads : &n_short_writes);
	pthread_mutex_unlock (&fault_lock);
	if (err != 0)
		errno = err;
	return err;
}

static ssize_t f_recv (int fd, void * buf, size_t len, int flags)
{
	if (io_fault (fd, 0, &len) != 0)
		return -1;
	return real->recv (fd, buf, len, flags);
}

static ssize_t f_send (int fd, const void * buf, size_t len, int flags)
{
	if (io_fault (fd, 1, &len) != 0)
		return -1;
	return real->send (fd, buf, len, flags);
}

static ssize_t f_sendmsg (int fd, const struct msghdr * msg, int flags)
{
	struct msghdr copy;
	struct iovec iov[64];
	size_t total = 0, want, i, n;
	for (i = 0; i < (size_t) msg->msg_iovlen; i++)
		total += msg->msg_iov[i].iov_len;
	want = total;
	if (io_fault (fd, 1, &want) != 0)
		return -1;
	if (want == total || msg->msg_iovlen > 64)
		return real->sendmsg (fd, msg, flags);
	/* the first `want` bytes of the vector */
	copy = *msg;
	for (n = 0; n < (size_t) msg->msg_iovlen && want > 0; n++) {
		iov[n] = msg->msg_iov[n];
		if (iov[n].iov_len > want)
			iov[n].iov_len = want;
		want -= iov[n].iov_len;
	}
	copy.msg_iov = iov;
	copy.msg_iovlen = n;
	return real->sendmsg (fd, &copy, flags);
}

static int f_accept (int fd, struct sockaddr * addr, socklen_t * len)
{
	int storm;
	pthread_mutex_lock (&fault_lock);
	/* the first accept always meets a storm (few accepts happen) */
	storm = eagain_now (&storm_accept, 2, faults_on && n_accept_calls++ == 0 ? 100 : 50);
	pthread_mutex_unlock (&fault_lock);
	if (storm) {
		errno = EAGAIN;
		return -1;
	}
	return real->accept (fd, addr, len);
}

static int f_close (int fd)
{
	pthread_mutex_lock (&fault_lock);
	if (fd == reset_fd[0])
		reset_fd[0] = -1;
	if (fd == reset_fd[1])
		reset_fd[1] = -1;
	pthread_mutex_unlock (&fault_lock);
	return real->close (fd);
}

/* errno is set by the wrappers themselves, or by libc through real->... */
static int f_errno (void)
{
	return errno;
}

static void set_faults (int on)
{
	pthread_mutex_lock (&fault_lock);
	faults_on = on;
	storm_recv = storm_send = storm_accept = 0;
	pthread_mutex_unlock (&fault_lock);
}

static long counter (long * p)
{
	long v;
	pthread_mutex_lock (&fault_lock);
	v = *p;
	pthread_mutex_unlock (&fault_lock);
	return v;
}

/* ------------------------------------------------------------ payloads */

static unsigned long mix (unsigned long sum, const unsigned char * p, long n)
{
	long i;
	for (i = 0; i < n; i++)
		sum = sum * 31UL + p[i];
	return sum;
}

/* Message `seq` of client `c`: text (printable ASCII) or binary. */
static void fill (unsigned char * buf, long n, int c, int seq, int text)
{
	long i;
	for (i = 0; i < n; i++) {
		unsigned long v = (unsigned long) (i * 7 + seq * 131 + c * 17 + (i >> 9));
		buf[i] = (unsigned char) (text ? 'a' + v % 26 : v & 0xff);
	}
}

static const long edge_sizes[] = { 1, 2, 3, 124, 125, 126, 127, 128, 1000, 4095, 4096, 4097,
				   65534, 65535, 65536, 65537, 131072, 200000, MAX_MSG };

static long size_of (int c, int seq)
{
	int n = (int) (sizeof (edge_sizes) / sizeof (edge_sizes[0]));
	unsigned long h = (unsigned long) (seq * 2654435761UL + (unsigned long) c * 40503UL);
	if (seq % 2 == 0)
		return edge_sizes[(seq / 2 + c) % n];
	return 1 + (long) ((h >> 7) % (unsigned long) MAX_MSG);
}

/* ------------------------------------------------------------ server */

static int server_msgs = 0;
static int server_closes = 0;
static void * server_conns[NCLIENTS];
static int server_ready = 0;

static void on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) conn;
	(void) user_data;
	shared_add (&server_closes, 1);
}

static nopoll_bool on_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	int n;
	(void) ctx;
	(void) user_data;
	pthread_mutex_lock (&shared_lock);
	n = server_ready++;
	if (n < NCLIENTS)
		server_conns[n] = conn;
	pthread_mutex_unlock (&shared_lock);
	nopoll_conn_set_on_close (conn, on_close, NULL);
	return nopoll_true;
}

static void on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * p = (const char *) nopoll_msg_get_payload (msg);
	int n = nopoll_msg_get_payload_size (msg);
	(void) ctx;
	(void) user_data;
	shared_add (&server_msgs, 1);
	if (nopoll_msg_opcode (msg) == NOPOLL_TEXT_FRAME)
		nopoll_conn_send_text (conn, p, n);
	else
		nopoll_conn_send_binary (conn, p, n);
}

/* ------------------------------------------------------------ clients */

/* Sends one message completely (the rest of a short send is pending
 * output, flushed here). */
static int send_whole (noPollConn * conn, const unsigned char * buf, long n, int text)
{
	int rc = text ? nopoll_conn_send_text (conn, (const char *) buf, n)
		: nopoll_conn_send_binary (conn, (const char *) buf, n);
	double end = now_ms () + (double) scaled (10000, 60000);
	if (rc == -1)
		return 0;
	while (nopoll_conn_pending_write_bytes (conn) > 0 && now_ms () < end) {
		nopoll_conn_complete_pending_write (conn);
		if (nopoll_conn_pending_write_bytes (conn) > 0)
			sleep_ms (1);
	}
	return nopoll_conn_pending_write_bytes (conn) == 0;
}

typedef struct {
	long messages, bytes, bad_size, bad_type, bad_sum, lost, send_fail;
} Tally;

/* Client c sends `count` messages in batches and reads every echo. */
static void exchange (noPollConn * conn, int c, int count, unsigned char * out, Tally * t)
{
	int seq = 0, got, k;
	while (seq < count) {
		int first = seq;
		for (k = 0; k < BATCH && seq < count; k++, seq++) {
			long n = size_of (c, seq);
			fill (out, n, c, seq, seq % 3 == 0);
			if (! send_whole (conn, out, n, seq % 3 == 0))
				t->send_fail++;
		}
		for (got = first; got < seq; got++) {
			long n = size_of (c, got);
			noPollMsg * msg = wait_msg (conn, scaled (10000, 60000));
			if (msg == NULL) {
				t->lost++;
				continue;
			}
			fill (out, n, c, got, got % 3 == 0);
			if (nopoll_msg_get_payload_size (msg) != n)
				t->bad_size++;
			else if (memcmp (nopoll_msg_get_payload (msg), out, (size_t) n) != 0
				 || mix (0, nopoll_msg_get_payload (msg), n) != mix (0, out, n))
				t->bad_sum++;
			if (nopoll_msg_opcode (msg) != (got % 3 == 0 ? NOPOLL_TEXT_FRAME : NOPOLL_BINARY_FRAME))
				t->bad_type++;
			t->messages++;
			t->bytes += nopoll_msg_get_payload_size (msg);
			nopoll_msg_unref (msg);
		}
	}
}

/* The server-side socket of client conn `conn` (its local port is the
 * server socket's peer port); -1 if not found. */
static int server_peer_of (noPollConn * conn)
{
	struct sockaddr_in mine, theirs;
	socklen_t len = sizeof (mine);
	int k, fd = -1;
	if (real->getsockname (nopoll_conn_socket (conn), (struct sockaddr *) &mine, &len) != 0)
		return -1;
	pthread_mutex_lock (&shared_lock);
	for (k = 0; k < NCLIENTS && fd < 0; k++) {
		int s = nopoll_conn_socket ((noPollConn *) server_conns[k]);
		len = sizeof (theirs);
		if (s >= 0 && real->getpeername (s, (struct sockaddr *) &theirs, &len) == 0
		    && theirs.sin_port == mine.sin_port)
			fd = s;
	}
	pthread_mutex_unlock (&shared_lock);
	return fd;
}

/* One echo round trip of a small message on conn; 1 on success. */
static int echo_ok (noPollConn * conn, const char * text)
{
	noPollMsg * msg;
	int ok;
	if (nopoll_conn_send_text (conn, text, (long) strlen (text)) != (int) strlen (text))
		return 0;
	msg = wait_msg (conn, scaled (5000, 30000));
	if (msg == NULL)
		return 0;
	ok = nopoll_msg_get_payload_size (msg) == (int) strlen (text)
		&& memcmp (nopoll_msg_get_payload (msg), text, strlen (text)) == 0;
	nopoll_msg_unref (msg);
	return ok;
}

int main (void)
{
	noPollCtx * sctx, * cctx;
	noPollConn * listener, * conns[NCLIENTS];
	LoopThread lt;
	Tally t;
	unsigned char * out;
	int i, count = (int) scaled (40, 10), closes_before, srv1;

	check_init ("socket_faults", 90);

	/* before any other nopoll call */
	real = nopoll_default_socket_ops ();
	CHECK (real != NULL);
	faulty = *real;
	faulty.recv = f_recv;
	faulty.send = f_send;
	faulty.sendmsg = f_sendmsg;
	faulty.accept = f_accept;
	faulty.close = f_close;
	faulty.get_errno = f_errno;
	CHECK (! nopoll_install_socket_ops (NULL));
	CHECK (nopoll_install_socket_ops (&faulty));
	CHECK (! nopoll_install_socket_ops (&faulty));

	out = (unsigned char *) malloc (MAX_MSG);
	memset (&t, 0, sizeof (t));
	sctx = nopoll_ctx_new ();
	cctx = nopoll_ctx_new ();
	test_log (sctx, "server");
	test_log (cctx, "client");
	nopoll_ctx_set_on_ready (sctx, on_ready, NULL);
	nopoll_ctx_set_on_msg (sctx, on_msg, NULL);
	listener = nopoll_listener_new (sctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (listener));
	CHECK (loop_thread_start (&lt, sctx));

	note ("phase 1: short reads, short writes, EAGAIN storms");
	set_faults (1);
	for (i = 0; i < NCLIENTS; i++) {
		conns[i] = nopoll_conn_new (cctx, "127.0.0.1", nopoll_conn_port (listener), NULL, NULL, NULL, NULL);
		CHECK (client_ready (conns[i]));
	}
	CHECK (wait_for (&server_ready, NCLIENTS, scaled (5000, 30000)));
	for (i = 0; i < NCLIENTS; i++)
		exchange (conns[i], i, count, out, &t);
	set_faults (0);
	printf ("phase 1: %ld messages, %ld bytes echoed; %ld lost, %ld bad size, %ld bad checksum, %ld bad type, %ld send failures\n",
		t.messages, t.bytes, t.lost, t.bad_size, t.bad_sum, t.bad_type, t.send_fail);
	printf ("injected: %ld short reads, %ld short writes, %ld EAGAIN in %ld storms (%ld on recv, %ld on send, %ld on accept); %ld recv, %ld send calls\n",
		counter (&n_short_reads), counter (&n_short_writes), counter (&n_eagain), counter (&n_storms),
		counter (&n_storms_of[0]), counter (&n_storms_of[1]), counter (&n_storms_of[2]),
		counter (&n_recv_calls), counter (&n_send_calls));
	CHECK_INT (t.messages, (long) NCLIENTS * count);
	CHECK_INT (t.lost, 0);
	CHECK_INT (t.bad_size, 0);
	CHECK_INT (t.bad_sum, 0);
	CHECK_INT (t.bad_type, 0);
	CHECK_INT (t.send_fail, 0);
	CHECK_INT (shared_get (&server_msgs), NCLIENTS * count);
	CHECK (counter (&n_short_reads) > 0);
	CHECK (counter (&n_short_writes) > 0);
	CHECK (counter (&n_storms_of[0]) > 0);
	CHECK (counter (&n_storms_of[1]) > 0);
	CHECK (counter (&n_storms_of[2]) > 0);
	CHECK (counter (&n_eagain) >= 2 * counter (&n_storms));
	for (i = 0; i < NCLIENTS; i++)
		CHECK (nopoll_conn_is_ok (conns[i]));

	note ("phase 2: connection resets");
	closes_before = shared_get (&server_closes);
	CHECK_INT (closes_before, 0);
	/* client 0: its own socket resets on the next recv */
	pthread_mutex_lock (&fault_lock);
	reset_fd[0] = nopoll_conn_socket (conns[0]);
	pthread_mutex_unlock (&fault_lock);
	CHECK (wait_msg (conns[0], scaled (2000, 10000)) == NULL);
	CHECK (! nopoll_conn_is_ok (conns[0]));
	CHECK_INT (nopoll_conn_get_close_status (conns[0]), 1006);
	/* the server's peer of conn 0 sees the socket closed */
	CHECK (wait_for (&server_closes, 1, scaled (5000, 30000)));
	CHECK (echo_ok (conns[1], "still here 1"));
	CHECK (echo_ok (conns[2], "still here 2"));

	/* the server's connection to client 1 resets when it reads */
	srv1 = server_peer_of (conns[1]);
	CHECK (srv1 >= 0);
	pthread_mutex_lock (&fault_lock);
	reset_fd[1] = srv1;
	pthread_mutex_unlock (&fault_lock);
	CHECK (! echo_ok (conns[1], "reset you"));
	CHECK (wait_for (&server_closes, 2, scaled (5000, 30000)));
	CHECK (wait_msg (conns[1], scaled (5000, 30000)) == NULL);
	CHECK (! nopoll_conn_is_ok (conns[1]));
	CHECK_INT (nopoll_conn_get_close_status (conns[1]), 1006);

	CHECK (echo_ok (conns[2], "still here 3"));
	CHECK (nopoll_conn_is_ok (conns[2]));
	printf ("injected: %ld resets\n", counter (&n_resets));
	CHECK (counter (&n_resets) > 0);

	for (i = 0; i < NCLIENTS; i++)
		nopoll_conn_close (conns[i]);
	CHECK (wait_ctx_conns (sctx, 1));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (cctx);
	nopoll_ctx_unref (sctx);
	free (out);
	return check_done ();
}
