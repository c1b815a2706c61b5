/*
 * compat.h: the small test framework of the compatibility programs in
 * tests/compat/ (coverage.c). C89 (built with -ansi -Wall -Werror
 * -Wstrict-prototypes); include it first: nopoll.h defines _GNU_SOURCE
 * before any libc header.
 *
 *   CHECK (expr)             counts a pass, or prints the failed expression
 *   CHECK_INT (a, b)         a == b (as long), both values printed on failure
 *   CHECK_STR (a, b)         strings equal (NULL-safe)
 *   compat_init ("name", s)  starts a watchdog that ends a stuck run
 *   return compat_done ();   prints "N passed, M failed"; the exit code
 *
 * Only loopback addresses (127.0.0.1, ::1) and OS-chosen ports are used.
 * COMPAT_SLOW=1 (valgrind) multiplies every timeout by 10.
 */
#ifndef NOPOLL_COMPAT_H
#define NOPOLL_COMPAT_H

#include <nopoll.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>

#if defined(__GNUC__)
#define COMPAT_UNUSED __attribute__ ((unused))
#else
#define COMPAT_UNUSED
#endif

/* RFC 6455 section 1.3: a key and its accept value. */
#define RFC_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Exported by nopoll without a prototype in any header: callers declare
 * it themselves (NOPOLL-API.md section 7). */
char * nopoll_conn_produce_accept_key (noPollCtx * ctx, const char * websocket_key);

static pthread_mutex_t compat_lock = PTHREAD_MUTEX_INITIALIZER;
static int compat_passed = 0;
static int compat_failed = 0;
static const char * compat_name = "compat";
static const char * compat_section = "";

static COMPAT_UNUSED void compat_record (int ok, const char * expr, const char * file, int line)
{
	pthread_mutex_lock (&compat_lock);
	if (ok)
		compat_passed++;
	else {
		compat_failed++;
		printf ("FAIL [%s] %s:%d: %s\n", compat_section, file, line, expr);
		fflush (stdout);
	}
	pthread_mutex_unlock (&compat_lock);
}

static COMPAT_UNUSED void compat_record_int (long a, long b, const char * ea, const char * eb,
					     const char * file, int line)
{
	if (a == b) {
		compat_record (1, ea, file, line);
		return;
	}
	pthread_mutex_lock (&compat_lock);
	compat_failed++;
	printf ("FAIL [%s] %s:%d: %s == %s (%ld != %ld)\n", compat_section, file, line, ea, eb, a, b);
	fflush (stdout);
	pthread_mutex_unlock (&compat_lock);
}

static COMPAT_UNUSED void compat_record_str (const char * a, const char * b, const char * ea,
					     const char * eb, const char * file, int line)
{
	if ((a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp (a, b) == 0)) {
		compat_record (1, ea, file, line);
		return;
	}
	pthread_mutex_lock (&compat_lock);
	compat_failed++;
	printf ("FAIL [%s] %s:%d: %s == %s (\"%s\" != \"%s\")\n", compat_section, file, line, ea, eb,
		a ? a : "(null)", b ? b : "(null)");
	fflush (stdout);
	pthread_mutex_unlock (&compat_lock);
}

#define CHECK(expr) compat_record ((expr) ? 1 : 0, #expr, __FILE__, __LINE__)
#define CHECK_INT(a, b) compat_record_int ((long) (a), (long) (b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(a, b) compat_record_str ((a), (b), #a, #b, __FILE__, __LINE__)

/* Names the part of the program that runs (printed with failures). */
static COMPAT_UNUSED void section (const char * name)
{
	compat_section = name;
	printf ("-- %s: %s\n", compat_name, name);
	fflush (stdout);
}

static COMPAT_UNUSED int compat_slow (void)
{
	const char * v = getenv ("COMPAT_SLOW");
	return v != NULL && v[0] != '\0' && strcmp (v, "0") != 0;
}

/* A timeout in ms, x10 under COMPAT_SLOW. */
static COMPAT_UNUSED long ms (long normal)
{
	return compat_slow () ? normal * 10 : normal;
}

static COMPAT_UNUSED double now_ms (void)
{
	struct timeval tv;
	gettimeofday (&tv, NULL);
	return (double) tv.tv_sec * 1000.0 + (double) tv.tv_usec / 1000.0;
}

static COMPAT_UNUSED void sleep_ms (long msecs)
{
	struct timespec ts;
	ts.tv_sec = msecs / 1000;
	ts.tv_nsec = (msecs % 1000) * 1000000L;
	while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Starts a thread with every signal blocked. */
static COMPAT_UNUSED int spawn (pthread_t * t, void * (*fn) (void *), void * arg)
{
	sigset_t all, old;
	int rc;
	sigfillset (&all);
	pthread_sigmask (SIG_SETMASK, &all, &old);
	rc = pthread_create (t, NULL, fn, arg);
	pthread_sigmask (SIG_SETMASK, &old, NULL);
	return rc == 0;
}

static int compat_watchdog_secs = 0;

static void * compat_watchdog (void * arg)
{
	(void) arg;
	sleep_ms ((long) compat_watchdog_secs * 1000);
	printf ("FAIL [%s] %s: watchdog: still running after %d s\n", compat_section, compat_name,
		compat_watchdog_secs);
	printf ("%d passed, %d failed\n", compat_passed, compat_failed + 1);
	fflush (stdout);
	_exit (3);
	return NULL;
}

/* Names the program and bounds its run time (`seconds`, x10 slow). */
static COMPAT_UNUSED void compat_init (const char * name, int seconds)
{
	pthread_t t;
	compat_name = name;
	setvbuf (stdout, NULL, _IOLBF, 0);
	signal (SIGPIPE, SIG_IGN);
	compat_watchdog_secs = compat_slow () ? seconds * 10 : seconds;
	if (spawn (&t, compat_watchdog, NULL))
		pthread_detach (t);
}

/* The final line the harness reads; the exit code. No check = failure. */
static COMPAT_UNUSED int compat_done (void)
{
	int passed, failed;
	pthread_mutex_lock (&compat_lock);
	passed = compat_passed;
	failed = compat_failed;
	pthread_mutex_unlock (&compat_lock);
	if (passed == 0 && failed == 0) {
		printf ("FAIL %s: no check ran\n", compat_name);
		failed = 1;
	}
	printf ("%d passed, %d failed\n", passed, failed);
	fflush (stdout);
	return failed == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ shared state */

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static COMPAT_UNUSED int shared_get (int * p)
{
	int v;
	pthread_mutex_lock (&shared_lock);
	v = *p;
	pthread_mutex_unlock (&shared_lock);
	return v;
}

static COMPAT_UNUSED void shared_set (int * p, int v)
{
	pthread_mutex_lock (&shared_lock);
	*p = v;
	pthread_mutex_unlock (&shared_lock);
}

static COMPAT_UNUSED void shared_add (int * p, int d)
{
	pthread_mutex_lock (&shared_lock);
	*p += d;
	pthread_mutex_unlock (&shared_lock);
}

/* Copies `src` (NULL-safe) into a fixed buffer under the shared lock. */
static COMPAT_UNUSED void shared_str_set (char * dst, int cap, const char * src)
{
	pthread_mutex_lock (&shared_lock);
	if (src == NULL)
		strcpy (dst, "(null)");
	else {
		strncpy (dst, src, (size_t) cap - 1);
		dst[cap - 1] = '\0';
	}
	pthread_mutex_unlock (&shared_lock);
}

/* Waits until *p >= value (1) or timeout_ms passes (0). */
static COMPAT_UNUSED int wait_for (int * p, int value, long timeout_ms)
{
	double end = now_ms () + (double) ms (timeout_ms);
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
	/* Bounded: the loop returns by itself after 120 s. */
	lt->result = nopoll_loop_wait (lt->ctx, 120L * 1000000L);
	return NULL;
}

static COMPAT_UNUSED int loop_start (LoopThread * lt, noPollCtx * ctx)
{
	lt->ctx = ctx;
	lt->result = 99;
	lt->running = spawn (&lt->thread, loop_thread_main, lt);
	return lt->running;
}

/* Stops the loop and joins its thread; the loop's result. */
static COMPAT_UNUSED int loop_stop (LoopThread * lt)
{
	if (! lt->running)
		return 99;
	nopoll_loop_stop (lt->ctx);
	pthread_join (lt->thread, NULL);
	lt->running = 0;
	return lt->result;
}

/* ------------------------------------------------------------ raw sockets */

static COMPAT_UNUSED void raw_timeouts (int fd, long msecs)
{
	struct timeval tv;
	tv.tv_sec = msecs / 1000;
	tv.tv_usec = (msecs % 1000) * 1000;
	setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
	setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof (tv));
}

/* A listening socket on 127.0.0.1 with an OS-chosen port (written to
 * port, as text); -1 on failure. */
static COMPAT_UNUSED int raw_listen (char * port, int cap)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof (sa);
	int fd = socket (AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset (&sa, 0, sizeof (sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	if (bind (fd, (struct sockaddr *) &sa, sizeof (sa)) != 0 || listen (fd, 16) != 0
	    || getsockname (fd, (struct sockaddr *) &sa, &len) != 0) {
		close (fd);
		return -1;
	}
	if (port != NULL)
		sprintf (port, "%d", (int) ntohs (sa.sin_port));
	(void) cap;
	return fd;
}

/* Accepts one connection within timeout_ms (with I/O timeouts); -1 else. */
static COMPAT_UNUSED int raw_accept (int lfd, long timeout_ms)
{
	struct pollfd p;
	int fd;
	p.fd = lfd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll (&p, 1, (int) ms (timeout_ms)) <= 0)
		return -1;
	fd = accept (lfd, NULL, NULL);
	if (fd >= 0)
		raw_timeouts (fd, ms (5000));
	return fd;
}

/* A blocking connection to 127.0.0.1:port with I/O timeouts; -1 on failure. */
static COMPAT_UNUSED int raw_connect (const char * port)
{
	struct sockaddr_in sa;
	int fd = socket (AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset (&sa, 0, sizeof (sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	sa.sin_port = htons ((unsigned short) atoi (port));
	raw_timeouts (fd, ms (5000));
	if (connect (fd, (struct sockaddr *) &sa, sizeof (sa)) != 0) {
		close (fd);
		return -1;
	}
	return fd;
}

static COMPAT_UNUSED int raw_send_all (int fd, const void * data, long len)
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

static COMPAT_UNUSED int raw_recv_all (int fd, void * data, long len)
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

/* Reads an HTTP head (through the blank line) byte by byte into buf,
 * NUL-terminated; its length or -1. */
static COMPAT_UNUSED int raw_read_head (int fd, char * buf, int cap)
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

/* Reads until EOF or the socket's timeout; bytes read, NUL-terminated. */
static COMPAT_UNUSED int raw_read_all (int fd, char * buf, int cap)
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

/* The value of header `name` (case-insensitive) of an HTTP head; 0 if absent. */
static COMPAT_UNUSED int raw_header (const char * head, const char * name, char * out, int cap)
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

/* Builds one frame into out (room for len + 14); its size. Masked frames
 * use the key 37 fa 21 3d. */
static COMPAT_UNUSED long raw_frame (unsigned char * out, int fin, int opcode, int masked,
				     const void * payload, long len)
{
	static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
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
		memcpy (out + n, key, 4);
		n += 4;
	}
	for (i = 0; i < len; i++)
		out[n + i] = (unsigned char) (masked ? p[i] ^ key[i % 4] : p[i]);
	return n + len;
}

static COMPAT_UNUSED int raw_send_frame (int fd, int fin, int opcode, int masked,
					 const void * payload, long len)
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
	long len;
	unsigned char mask[4];
} RawFrame;

/* Reads one frame header (and mask key). */
static COMPAT_UNUSED int raw_read_frame_header (int fd, RawFrame * f)
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
	if (f->masked && ! raw_recv_all (fd, f->mask, 4))
		return 0;
	return 1;
}

/* Reads one frame, unmasked, payload NUL-terminated into buf (cap bytes). */
static COMPAT_UNUSED int raw_read_frame (int fd, RawFrame * f, unsigned char * buf, long cap)
{
	long i;
	if (! raw_read_frame_header (fd, f))
		return 0;
	if (f->len > cap - 1)
		return 0;
	if (! raw_recv_all (fd, buf, f->len))
		return 0;
	if (f->masked)
		for (i = 0; i < f->len; i++)
			buf[i] ^= f->mask[i % 4];
	buf[f->len] = '\0';
	return 1;
}

/* Server side of a handshake on a raw socket: reads the request into head
 * and answers 101 (with `extra` header lines, "Name: v\r\n"..., or NULL). */
static COMPAT_UNUSED int raw_server_handshake (int fd, char * head, int cap, const char * extra)
{
	char key[128];
	char reply[1024];
	char * accept_key;
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
	return raw_send_all (fd, reply, (long) strlen (reply));
}

/* Client side of a handshake on a raw socket: sends a request with the
 * given extra header lines ("Name: v\r\n"... or "") and checks the 101. */
static COMPAT_UNUSED int raw_client_handshake (int fd, const char * port, const char * extra)
{
	char req[1024];
	char head[2048];
	char value[128];
	sprintf (req, "GET /raw?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY "\r\n"
		 "Sec-WebSocket-Version: 13\r\n%s\r\n", port, extra);
	if (! raw_send_all (fd, req, (long) strlen (req)))
		return 0;
	if (raw_read_head (fd, head, sizeof (head)) < 0)
		return 0;
	if (strncmp (head, "HTTP/1.1 101", 12) != 0)
		return 0;
	if (! raw_header (head, "Sec-WebSocket-Accept", value, sizeof (value)))
		return 0;
	return strcmp (value, RFC_ACCEPT) == 0;
}

/* Polls nopoll_conn_get_msg up to timeout_ms; NULL if nothing came. */
static COMPAT_UNUSED noPollMsg * wait_msg (noPollConn * conn, long timeout_ms)
{
	double end = now_ms () + (double) ms (timeout_ms);
	noPollMsg * msg;
	while ((msg = nopoll_conn_get_msg (conn)) == NULL) {
		if (! nopoll_conn_is_ok (conn) || now_ms () > end)
			return NULL;
		sleep_ms (1);
	}
	return msg;
}

/* Polls until the connection is no longer ok (the peer closed), reading
 * what comes; 1 if it closed within timeout_ms. */
static COMPAT_UNUSED int wait_closed (noPollConn * conn, long timeout_ms)
{
	double end = now_ms () + (double) ms (timeout_ms);
	noPollMsg * msg;
	while (nopoll_conn_is_ok (conn)) {
		msg = nopoll_conn_get_msg (conn);
		if (msg != NULL)
			nopoll_msg_unref (msg);
		if (now_ms () > end)
			return 0;
		sleep_ms (1);
	}
	return 1;
}

/* IPv6 loopback usable here? */
static COMPAT_UNUSED int ipv6_available (void)
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

static COMPAT_UNUSED int is_blocking (int fd)
{
	int flags = fcntl (fd, F_GETFL, 0);
	return flags >= 0 && (flags & O_NONBLOCK) == 0;
}

#endif /* NOPOLL_COMPAT_H */
