/* wake: in the build without std, nopoll_loop_stop from another thread
 * wakes a loop blocked in nopoll_loop_wait (ctx, 0) even when the socket
 * table says kernel_fds = 1 (a libc table handed to the no_std build).
 * Without std the library makes no eventfd or pipe and calls no write():
 * its waker is always a UDP socket of the table, and a stop must send its
 * datagram through the table whatever kernel_fds says (it once wrote
 * nothing, and such a loop slept for good).
 *
 * Built and run by tests/nostd/wake.sh (make check-nostd) against the
 * no_std libnopoll.a and the libc table of tools/footprint/socket_ops.c.
 * Prints "wake: N passed, 0 failed" and exits 0 when every check passed;
 * bounded: a loop that does not return within 10 s fails the run. */
#include <nopoll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

extern const noPollSocketOps footprint_socket_ops;

static int passed, failed;

static void check (int ok, const char * what)
{
	printf ("%s %s\n", ok ? "PASS" : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

/* ------------------------------------------------ mutex hooks (pthread) */

static noPollPtr m_create (void)
{
	pthread_mutex_t * m = malloc (sizeof (*m));
	if (m != NULL)
		pthread_mutex_init (m, NULL);
	return m;
}

static void m_destroy (noPollPtr p)
{
	pthread_mutex_destroy (p);
	free (p);
}

static void m_lock (noPollPtr p)
{
	pthread_mutex_lock (p);
}

static void m_unlock (noPollPtr p)
{
	pthread_mutex_unlock (p);
}

/* -------------------------------------------------------------- the loop */

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static int done = 0;
static int loop_result = -100;

static void * run_loop (void * ctx)
{
	int r = nopoll_loop_wait ((noPollCtx *) ctx, 0); /* no timeout */
	pthread_mutex_lock (&done_lock);
	loop_result = r;
	done = 1;
	pthread_mutex_unlock (&done_lock);
	return NULL;
}

static int is_done (void)
{
	int d;
	pthread_mutex_lock (&done_lock);
	d = done;
	pthread_mutex_unlock (&done_lock);
	return d;
}

static void sleep_ms (long ms)
{
	struct timespec t;
	t.tv_sec = ms / 1000;
	t.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep (&t, NULL);
}

int main (void)
{
	noPollSocketOps ops = footprint_socket_ops;
	noPollCtx * ctx;
	noPollConn * listener;
	pthread_t t;
	int i;

	ops.kernel_fds = 1;
	check (nopoll_install_socket_ops (&ops), "a libc table with kernel_fds = 1 installed");
	nopoll_thread_handlers (m_create, m_destroy, m_lock, m_unlock);
	ctx = nopoll_ctx_new ();
	check (ctx != NULL, "context");
	if (ctx == NULL)
		return 1;
	listener = nopoll_listener_new (ctx, "127.0.0.1", "0");
	check (nopoll_conn_is_ok (listener), "listener on 127.0.0.1");
	check (pthread_create (&t, NULL, run_loop, ctx) == 0, "loop thread started");
	/* Stop asked every 100 ms for up to 10 s: the first may come before
	 * the loop waits; a loop that no stop wakes never returns. */
	for (i = 0; i < 100 && ! is_done (); i++) {
		nopoll_loop_stop (ctx);
		sleep_ms (100);
	}
	check (is_done (), "nopoll_loop_stop from another thread woke the loop");
	if (! is_done ()) {
		printf ("wake: %d passed, %d failed\n", passed, failed);
		return 1; /* the loop thread is stuck: exiting ends it */
	}
	pthread_join (t, NULL);
	check (loop_result == 0, "nopoll_loop_wait returned 0 (stopped)");
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	printf ("wake: %d passed, %d failed\n", passed, failed);
	return failed == 0 && passed > 0 ? 0 : 1;
}
