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
	int         done;     /* nopoll_loop_wait returned (shared_get) */
} LoopThread;

static void * loop_thread_main (void * arg)
{
	LoopThread * lt = (LoopThread *) arg;
	/* Bounded: the loop returns by itself after 120 s. */
	lt->result = nopoll_loop_wait (lt->ctx, 120L * 1000000L);
	shared_set (&lt->done, 1);
	return NULL;
}

static COMPAT_UNUSED int loop_start (LoopThread * lt, noPollCtx * ctx)
{
	lt->ctx = ctx;
	lt->result = 99;
	lt->done = 0;
	lt->running = spawn (&lt->thread, loop_thread_main, lt);
	return lt->running;
}

/* Stops the loop and joins its thread; the loop's result. A stop that
 * comes before the thread has entered nopoll_loop_wait is lost (the loop
 * starts by clearing it, as upstream's does): repeated until it returned. */
static COMPAT_UNUSED int loop_stop (LoopThread * lt)
{
	if (! lt->running)
		return 99;
	while (! shared_get (&lt->done)) {
		nopoll_loop_stop (lt->ctx);
		sleep_ms (1);
	}
	pthread_join (lt->thread, NULL);
	lt->running = 0;
	return lt->result;
}

/* ------------------------------------------------------------ raw sockets */

#define RAW_IO_TIMEOUT_MS ms (5000)
#define RAW_WAIT_MS(t) ms (t)
#include "../c/raw.h"

/* raw_listen with the port as text (room for 6 bytes); -1 on failure. */
static COMPAT_UNUSED int raw_listen_text (char * port)
{
	int num = 0;
	int fd = raw_listen (16, &num);
	if (fd >= 0 && port != NULL)
		sprintf (port, "%d", num);
	return fd;
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

static COMPAT_UNUSED int is_blocking (int fd)
{
	int flags = fcntl (fd, F_GETFL, 0);
	return flags >= 0 && (flags & O_NONBLOCK) == 0;
}

#endif /* NOPOLL_COMPAT_H */
