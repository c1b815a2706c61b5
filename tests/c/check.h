/*
 * check.h: the tiny test framework of the C API suite (the programs of tests/c).
 *
 * C89 only (the programs are built with -ansi -Wall -Werror
 * -Wstrict-prototypes). Include it first: it includes nopoll.h, which
 * defines _GNU_SOURCE before any libc header.
 *
 *   CHECK (expr)              counts a pass or prints the failed expression
 *   CHECK_INT (a, b)          a == b, printing both values on failure
 *   CHECK_STR (a, b)          strings equal (NULL-safe)
 *   check_init ("name", secs) starts a watchdog that aborts a stuck program
 *   return check_done ();     prints "N passed, M failed", the exit code
 *
 * Helpers: time (now_ms), slow mode (NOPOLL_TEST_SLOW=1 under valgrind:
 * test_slow, scaled), raw sockets speaking just enough WebSocket to play
 * the other side (raw_*), a loop thread (loop_thread_*), shared counters
 * (shared_*). Only loopback addresses and OS-chosen ports are used.
 */
#ifndef NOPOLL_TEST_CHECK_H
#define NOPOLL_TEST_CHECK_H

#include <nopoll.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <dirent.h>

#if defined(__GNUC__)
#define CHECK_UNUSED __attribute__ ((unused))
#else
#define CHECK_UNUSED
#endif

/* The key of RFC 6455 section 1.3 and its accept value. */
#define RAW_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define RAW_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Exported by nopoll without a prototype in any header: callers declare
 * it themselves (NOPOLL-API.md section 7). */
char * nopoll_conn_produce_accept_key (noPollCtx * ctx, const char * websocket_key);

static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
static int check_passed = 0;
static int check_failed = 0;
static const char * check_name = "test";

static CHECK_UNUSED void check_record (int ok, const char * expr, const char * file, int line)
{
	pthread_mutex_lock (&check_lock);
	if (ok)
		check_passed++;
	else {
		check_failed++;
		printf ("FAIL %s:%d: %s\n", file, line, expr);
		fflush (stdout);
	}
	pthread_mutex_unlock (&check_lock);
}

static CHECK_UNUSED void check_record_int (long a, long b, const char * ea, const char * eb, const char * file, int line)
{
	if (a == b) {
		check_record (1, ea, file, line);
		return;
	}
	pthread_mutex_lock (&check_lock);
	check_failed++;
	printf ("FAIL %s:%d: %s == %s (%ld != %ld)\n", file, line, ea, eb, a, b);
	fflush (stdout);
	pthread_mutex_unlock (&check_lock);
}

static CHECK_UNUSED void check_record_str (const char * a, const char * b, const char * ea, const char * eb, const char * file, int line)
{
	if ((a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp (a, b) == 0)) {
		check_record (1, ea, file, line);
		return;
	}
	pthread_mutex_lock (&check_lock);
	check_failed++;
	printf ("FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", file, line, ea, eb,
		a ? a : "(null)", b ? b : "(null)");
	fflush (stdout);
	pthread_mutex_unlock (&check_lock);
}

#define CHECK(expr) check_record ((expr) ? 1 : 0, #expr, __FILE__, __LINE__)
#define CHECK_INT(a, b) check_record_int ((long) (a), (long) (b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(a, b) check_record_str ((a), (b), #a, #b, __FILE__, __LINE__)

/* Prints a progress line (section names help reading a failure). */
static CHECK_UNUSED void note (const char * what)
{
	printf ("-- %s: %s\n", check_name, what);
	fflush (stdout);
}

static CHECK_UNUSED int test_slow (void)
{
	const char * v = getenv ("NOPOLL_TEST_SLOW");
	return v != NULL && v[0] != '\0' && strcmp (v, "0") != 0;
}

/* `normal`, or `slow` under NOPOLL_TEST_SLOW (valgrind). */
static CHECK_UNUSED long scaled (long normal, long slow)
{
	return test_slow () ? slow : normal;
}

static CHECK_UNUSED double now_ms (void)
{
	struct timeval tv;
	gettimeofday (&tv, NULL);
	return (double) tv.tv_sec * 1000.0 + (double) tv.tv_usec / 1000.0;
}

static CHECK_UNUSED void sleep_ms (long ms)
{
	struct timespec ts;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------ threads */

/* Starts a thread with every signal blocked (SIGALRM tests need the
 * signal delivered to the main thread). */
static CHECK_UNUSED int spawn (pthread_t * t, void * (*fn) (void *), void * arg)
{
	sigset_t all, old;
	int rc;
	sigfillset (&all);
	pthread_sigmask (SIG_SETMASK, &all, &old);
	rc = pthread_create (t, NULL, fn, arg);
	pthread_sigmask (SIG_SETMASK, &old, NULL);
	return rc == 0;
}

/* Open file descriptors of this process (-1 if unknown). */
static int open_fds (void)
{
	DIR * d = opendir ("/proc/self/fd");
	struct dirent * e;
	int n = 0;
	if (d == NULL)
		return -1;
	while ((e = readdir (d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir (d);
	return n - 1; /* the directory's own descriptor */
}

static int check_fds_at_start = -1;

static int check_watchdog_secs = 0;

static void * check_watchdog (void * arg)
{
	(void) arg;
	sleep_ms ((long) check_watchdog_secs * 1000);
	printf ("FAIL %s: watchdog: still running after %d s, aborting\n", check_name, check_watchdog_secs);
	printf ("%d passed, %d failed\n", check_passed, check_failed + 1);
	fflush (stdout);
	_exit (3);
	return NULL;
}

/* Names the program and bounds its run time (`seconds`, x10 in slow
 * mode); stdout is line buffered so that a killed run still shows where
 * it was. */
static CHECK_UNUSED void check_init (const char * name, int seconds)
{
	pthread_t t;
	check_name = name;
	check_fds_at_start = open_fds ();
	setvbuf (stdout, NULL, _IOLBF, 0);
	signal (SIGPIPE, SIG_IGN);
	check_watchdog_secs = (int) scaled (seconds, seconds * 10L);
	if (spawn (&t, check_watchdog, NULL))
		pthread_detach (t);
}

/* The final line the harness looks for; the exit code. A program that
 * asserted nothing fails. Every ctx, conn and socket must be gone by then:
 * the open descriptors are those of the start (the watchdog opens none). */
static CHECK_UNUSED int check_done (void)
{
	int passed, failed, fds = open_fds ();
	if (check_fds_at_start >= 0 && fds >= 0) {
		if (fds != check_fds_at_start)
			printf ("open descriptors: %d at start, %d at the end\n", check_fds_at_start, fds);
		CHECK_INT (fds, check_fds_at_start);
	}
	pthread_mutex_lock (&check_lock);
	passed = check_passed;
	failed = check_failed;
	pthread_mutex_unlock (&check_lock);
	if (passed == 0 && failed == 0) {
		printf ("FAIL %s: no check ran\n", check_name);
		failed = 1;
	}
	printf ("%d passed, %d failed\n", passed, failed);
	fflush (stdout);
	return failed == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ shared ints */

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static CHECK_UNUSED int shared_get (int * p)
{
	int v;
	pthread_mutex_lock (&shared_lock);
	v = *p;
	pthread_mutex_unlock (&shared_lock);
	return v;
}

static CHECK_UNUSED void shared_set (int * p, int v)
{
	pthread_mutex_lock (&shared_lock);
	*p = v;
	pthread_mutex_unlock (&shared_lock);
}

static CHECK_UNUSED int shared_add (int * p, int d)
{
	int v;
	pthread_mutex_lock (&shared_lock);
	*p += d;
	v = *p;
	pthread_mutex_unlock (&shared_lock);
	return v;
}

static CHECK_UNUSED void * shared_get_ptr (void ** p)
{
	void * v;
	pthread_mutex_lock (&shared_lock);
	v = *p;
	pthread_mutex_unlock (&shared_lock);
	return v;
}

static CHECK_UNUSED void shared_set_ptr (void ** p, void * v)
{
	pthread_mutex_lock (&shared_lock);
	*p = v;
	pthread_mutex_unlock (&shared_lock);
}

/* Waits until *p >= value (true) or timeout_ms passes (false). */
static CHECK_UNUSED int wait_for (int * p, int value, long timeout_ms)
{
	double end = now_ms () + (double) timeout_ms;
	while (shared_get (p) < value) {
		if (now_ms () > end)
			return 0;
		sleep_ms (1);
	}
	return 1;
}

/* ------------------------------------------------------------ loop thread */

typedef struct {
	noPollCtx * ctx;
	pthread_t   thread;
	int         result;
	int         running;
} LoopThread;

static void * loop_thread_main (void * arg)
{
	LoopThread * lt = (LoopThread *) arg;
	/* Bounded: the loop gives up by itself after 120 s. */
	lt->result = nopoll_loop_wait (lt->ctx, 120L * 1000000L);
	return NULL;
}

/* Runs nopoll_loop_wait (ctx) in a new thread. */
static CHECK_UNUSED int loop_thread_start (LoopThread * lt, noPollCtx * ctx)
{
	lt->ctx = ctx;
	lt->result = 99;
	lt->running = spawn (&lt->thread, loop_thread_main, lt);
	return lt->running;
}

/* Stops the loop from this thread and joins it; the loop's result. */
static CHECK_UNUSED int loop_thread_stop (LoopThread * lt)
{
	if (! lt->running)
		return 99;
	nopoll_loop_stop (lt->ctx);
	pthread_join (lt->thread, NULL);
	lt->running = 0;
	return lt->result;
}

/* ------------------------------------------------------------ raw sockets */

static CHECK_UNUSED void raw_set_timeout (int fd, long ms)
{
	struct timeval tv;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
	setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof (tv));
}

/* A raw IPv4 listening socket on 127.0.0.1, OS-chosen port written to
 * *port; -1 on failure. */
static CHECK_UNUSED int raw_listen (int backlog, int * port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof (sa);
	int fd = socket (AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset (&sa, 0, sizeof (sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	sa.sin_port = 0;
	if (bind (fd, (struct sockaddr *) &sa, sizeof (sa)) != 0 || listen (fd, backlog) != 0
	    || getsockname (fd, (struct sockaddr *) &sa, &len) != 0) {
		close (fd);
		return -1;
	}
	*port = ntohs (sa.sin_port);
	return fd;
}

/* Accepts one connection within timeout_ms; -1 on timeout. */
static CHECK_UNUSED int raw_accept (int lfd, long timeout_ms)
{
	struct pollfd p;
	int fd;
	p.fd = lfd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll (&p, 1, (int) timeout_ms) <= 0)
		return -1;
	fd = accept (lfd, NULL, NULL);
	if (fd >= 0)
		raw_set_timeout (fd, scaled (5000, 30000));
	return fd;
}

/* A blocking connection to 127.0.0.1:port with I/O timeouts; -1 on failure. */
static CHECK_UNUSED int raw_connect (const char * port)
{
	struct sockaddr_in sa;
	int fd = socket (AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset (&sa, 0, sizeof (sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	sa.sin_port = htons ((unsigned short) atoi (port));
	raw_set_timeout (fd, scaled (5000, 30000));
	if (connect (fd, (struct sockaddr *) &sa, sizeof (sa)) != 0) {
		close (fd);
		return -1;
	}
	return fd;
}

static CHECK_UNUSED int raw_send_all (int fd, const void * data, long len)
{
	const char * p = (const char *) data;
	while (len > 0) {
		ssize_t n = send (fd, p, (size_t) len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (long) n;
	}
	return 1;
}

/* Reads exactly len bytes (within the socket's timeout). */
static CHECK_UNUSED int raw_recv_all (int fd, void * data, long len)
{
	char * p = (char *) data;
	while (len > 0) {
		ssize_t n = recv (fd, p, (size_t) len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (long) n;
	}
	return 1;
}

/* Reads an HTTP head (up to and including the blank line) into buf,
 * NUL-terminated; its length, or -1. Reads byte by byte so that nothing
 * after the head is consumed. */
static CHECK_UNUSED int raw_read_head (int fd, char * buf, int cap)
{
	int n = 0;
	while (n < cap - 1) {
		ssize_t r = recv (fd, buf + n, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n++;
		if (n >= 4 && memcmp (buf + n - 4, "\r\n\r\n", 4) == 0) {
			buf[n] = '\0';
			return n;
		}
	}
	buf[n] = '\0';
	return -1;
}

/* Reads until the peer closes (or the timeout); bytes read, buf NUL-terminated. */
static CHECK_UNUSED int raw_read_to_eof (int fd, char * buf, int cap)
{
	int n = 0;
	while (n < cap - 1) {
		ssize_t r = recv (fd, buf + n, (size_t) (cap - 1 - n), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (int) r;
	}
	buf[n] = '\0';
	return n;
}

/* The value of header `name` (case-insensitive) in an HTTP head, copied to
 * out; 0 if absent. */
static CHECK_UNUSED int raw_header (const char * head, const char * name, char * out, int cap)
{
	const char * p = head;
	size_t nl = strlen (name);
	while ((p = strstr (p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp (p, name, nl) == 0 && p[nl] == ':') {
			const char * v = p + nl + 1;
			int i = 0;
			while (*v == ' ')
				v++;
			while (v[i] != '\0' && v[i] != '\r' && i < cap - 1) {
				out[i] = v[i];
				i++;
			}
			out[i] = '\0';
			return 1;
		}
	}
	return 0;
}

/* Client side of a handshake over a raw socket: sends the upgrade request
 * for `path` and checks the 101 answer. */
static CHECK_UNUSED int raw_client_handshake (int fd, const char * port, const char * path)
{
	char req[512];
	char head[2048];
	char accept_value[128];
	sprintf (req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: " RAW_KEY "\r\n"
		 "Origin: http://127.0.0.1\r\nSec-WebSocket-Version: 13\r\n\r\n", path, port);
	if (! raw_send_all (fd, req, (long) strlen (req)))
		return 0;
	if (raw_read_head (fd, head, sizeof (head)) < 0)
		return 0;
	if (strncmp (head, "HTTP/1.1 101", 12) != 0)
		return 0;
	if (! raw_header (head, "Sec-WebSocket-Accept", accept_value, sizeof (accept_value)))
		return 0;
	return strcmp (accept_value, RAW_ACCEPT) == 0;
}

/* Server side of a handshake over a raw socket: reads the request into
 * head (cap bytes) and answers 101 with the right accept key, plus
 * `extra` header lines (NULL or "Name: value\r\n"...). */
static CHECK_UNUSED int raw_server_handshake (int fd, char * head, int cap, const char * extra)
{
	char key[128];
	char reply[1024];
	char * accept_key;
	int ok;
	if (raw_read_head (fd, head, cap) < 0)
		return 0;
	if (! raw_header (head, "Sec-WebSocket-Key", key, sizeof (key)))
		return 0;
	accept_key = nopoll_conn_produce_accept_key (NULL, key);
	if (accept_key == NULL)
		return 0;
	sprintf (reply, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n", accept_key, extra ? extra : "");
	nopoll_free (accept_key);
	ok = raw_send_all (fd, reply, (long) strlen (reply));
	return ok;
}

/* Builds one frame into out (which must hold len + 14 bytes); its size.
 * masked: client frames (mask 0x37 0xfa 0x21 0x3d). */
static CHECK_UNUSED long raw_frame (unsigned char * out, int fin, int opcode, int masked,
				    const void * payload, long len)
{
	static const unsigned char mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	const unsigned char * p = (const unsigned char *) payload;
	long n = 0, i;
	out[n++] = (unsigned char) ((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126)
		out[n++] = (unsigned char) ((masked ? 0x80 : 0) | len);
	else if (len < 65536) {
		out[n++] = (unsigned char) ((masked ? 0x80 : 0) | 126);
		out[n++] = (unsigned char) (len >> 8);
		out[n++] = (unsigned char) (len & 0xff);
	} else {
		out[n++] = (unsigned char) ((masked ? 0x80 : 0) | 127);
		for (i = 7; i >= 0; i--)
			out[n++] = (unsigned char) (i >= 4 ? 0 : ((unsigned long) len >> (8 * i)) & 0xff);
	}
	if (masked) {
		memcpy (out + n, mask, 4);
		n += 4;
	}
	for (i = 0; i < len; i++)
		out[n + i] = (unsigned char) (masked ? p[i] ^ mask[i % 4] : p[i]);
	return n + len;
}

/* Sends one frame (payload up to 64 KiB). */
static CHECK_UNUSED int raw_send_frame (int fd, int fin, int opcode, int masked, const void * payload, long len)
{
	unsigned char * buf = (unsigned char *) malloc ((size_t) len + 14);
	long n;
	int ok;
	if (buf == NULL)
		return 0;
	n = raw_frame (buf, fin, opcode, masked, payload, len);
	ok = raw_send_all (fd, buf, n);
	free (buf);
	return ok;
}

typedef struct {
	int  fin;
	int  opcode;
	int  masked;
	long len;     /* payload length */
} RawFrame;

/* Reads one frame header; 1 on success. */
static CHECK_UNUSED int raw_read_frame_header (int fd, RawFrame * f, unsigned char mask[4])
{
	unsigned char h[8];
	int i;
	if (! raw_recv_all (fd, h, 2))
		return 0;
	f->fin = (h[0] & 0x80) != 0;
	f->opcode = h[0] & 0x0f;
	f->masked = (h[1] & 0x80) != 0;
	f->len = h[1] & 0x7f;
	if (f->len == 126) {
		if (! raw_recv_all (fd, h, 2))
			return 0;
		f->len = ((long) h[0] << 8) | h[1];
	} else if (f->len == 127) {
		if (! raw_recv_all (fd, h, 8))
			return 0;
		f->len = 0;
		for (i = 0; i < 8; i++)
			f->len = (f->len << 8) | h[i];
	}
	if (f->masked && ! raw_recv_all (fd, mask, 4))
		return 0;
	return 1;
}

/* Reads one frame, unmasking it, payload into buf (NUL-terminated when
 * room); 1 on success, 0 on error or a payload larger than cap - 1. */
static CHECK_UNUSED int raw_read_frame (int fd, RawFrame * f, unsigned char * buf, long cap)
{
	unsigned char mask[4];
	long i;
	if (! raw_read_frame_header (fd, f, mask))
		return 0;
	if (f->len > cap - 1)
		return 0;
	if (! raw_recv_all (fd, buf, f->len))
		return 0;
	if (f->masked)
		for (i = 0; i < f->len; i++)
			buf[i] ^= mask[i % 4];
	buf[f->len] = '\0';
	return 1;
}

/* Close status of a close frame payload (1005 when it has none). */
static CHECK_UNUSED int raw_close_status (const RawFrame * f, const unsigned char * payload)
{
	if (f->opcode != 8)
		return -1;
	if (f->len < 2)
		return 1005;
	return (payload[0] << 8) | payload[1];
}

/* IPv6 loopback usable here? */
static CHECK_UNUSED int ipv6_available (void)
{
	struct sockaddr_in6 sa;
	int fd = socket (AF_INET6, SOCK_STREAM, 0);
	int ok;
	if (fd < 0)
		return 0;
	memset (&sa, 0, sizeof (sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	ok = bind (fd, (struct sockaddr *) &sa, sizeof (sa)) == 0;
	close (fd);
	return ok;
}

static void test_log_handler (noPollCtx * ctx, noPollDebugLevel level, const char * log_msg, noPollPtr user_data)
{
	(void) ctx;
	fprintf (stderr, "[%s %d] %s\n", (const char *) user_data, (int) level, log_msg);
}

/* With NOPOLL_TEST_LOG=1, the library's log lines of ctx go to stderr,
 * prefixed with `label` (a string literal). */
static CHECK_UNUSED void test_log (noPollCtx * ctx, const char * label)
{
	const char * v = getenv ("NOPOLL_TEST_LOG");
	if (v != NULL && v[0] == '1')
		nopoll_log_set_handler (ctx, test_log_handler, (noPollPtr) label);
}

/* Waits for a nopoll client handshake driven from this thread. */
static CHECK_UNUSED int client_ready (noPollConn * conn)
{
	return nopoll_conn_wait_until_connection_ready (conn, (int) scaled (5, 30));
}

/* Polls nopoll_conn_get_msg up to timeout_ms; NULL if nothing came. */
static CHECK_UNUSED noPollMsg * wait_msg (noPollConn * conn, long timeout_ms)
{
	double end = now_ms () + (double) timeout_ms;
	noPollMsg * msg;
	while ((msg = nopoll_conn_get_msg (conn)) == NULL) {
		if (! nopoll_conn_is_ok (conn) || now_ms () > end)
			return NULL;
		sleep_ms (1);
	}
	return msg;
}

#endif /* NOPOLL_TEST_CHECK_H */
