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
 * the other side (raw_*, from raw.h, shared with tests/compat), a loop
 * thread (loop_thread_*), shared counters (shared_*). Only loopback addresses and OS-chosen ports are used.
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

/* Waits (bounded) until `ctx` has `n` registered connections, listeners
 * included: a loop must have dropped the connections whose peers went away
 * before it is stopped, or they stay registered (and their sockets open). */
static CHECK_UNUSED int wait_ctx_conns (noPollCtx * ctx, int n)
{
	double end = now_ms () + (double) scaled (5000, 30000);
	while (nopoll_ctx_conns (ctx) != n) {
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
	/* Bounded: the loop gives up by itself after 120 s. */
	lt->result = nopoll_loop_wait (lt->ctx, 120L * 1000000L);
	shared_set (&lt->done, 1);
	return NULL;
}

/* Runs nopoll_loop_wait (ctx) in a new thread. */
static CHECK_UNUSED int loop_thread_start (LoopThread * lt, noPollCtx * ctx)
{
	lt->ctx = ctx;
	lt->result = 99;
	lt->done = 0;
	lt->running = spawn (&lt->thread, loop_thread_main, lt);
	return lt->running;
}

/* Stops the loop from this thread and joins it; the loop's result. A stop
 * that comes before the thread has entered nopoll_loop_wait is lost (the
 * loop starts by clearing it, as upstream's does), which a busy machine
 * makes likely: it is repeated until the loop has returned. */
static CHECK_UNUSED int loop_thread_stop (LoopThread * lt)
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

#define RAW_IO_TIMEOUT_MS scaled (5000, 30000)
#define RAW_WAIT_MS(t) (t)
#include "raw.h"

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
