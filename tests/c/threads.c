/*
 * threads: a conn used from several threads at once.
 *
 * The server ctx runs nopoll_loop_wait in thread L. While it runs:
 * - thread S sends 1,000 messages on the accepted conn (the one L serves);
 * - the main thread (client ctx) sends 1,000 messages to the server, which
 *   L delivers to on_msg, and reads the 1,000 from S with get_msg.
 * Every message arrives, in order, on both sides. Run first without
 * thread handlers, then with pthread mutex handlers installed through
 * nopoll_thread_handlers (before any object is created).
 */
#include "check.h"

static int mutexes_created = 0;
static int mutexes_destroyed = 0;

static noPollPtr m_create (void)
{
	pthread_mutex_t * m = (pthread_mutex_t *) malloc (sizeof (pthread_mutex_t));
	pthread_mutex_init (m, NULL);
	shared_add (&mutexes_created, 1);
	return m;
}

static void m_destroy (noPollPtr p)
{
	pthread_mutex_destroy ((pthread_mutex_t *) p);
	free (p);
	shared_add (&mutexes_destroyed, 1);
}

static void m_lock (noPollPtr p)
{
	pthread_mutex_lock ((pthread_mutex_t *) p);
}

static void m_unlock (noPollPtr p)
{
	pthread_mutex_unlock ((pthread_mutex_t *) p);
}

typedef struct {
	noPollCtx  * sctx;
	void       * server_conn;   /* noPollConn *, set by on_ready */
	int          received;      /* messages the server got, in order */
	int          out_of_order;
	int          count;
	int          sent_by_s;
	int          send_errors;
} Shared;

static Shared sh;

static nopoll_bool on_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	shared_set_ptr (&sh.server_conn, conn);
	return nopoll_true;
}

static void on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	char expect[32];
	int n = shared_get (&sh.received);
	(void) ctx;
	(void) conn;
	(void) user_data;
	sprintf (expect, "c%d", n);
	if (strcmp ((const char *) nopoll_msg_get_payload (msg), expect) != 0)
		shared_add (&sh.out_of_order, 1);
	shared_add (&sh.received, 1);
}

static void * sender (void * arg)
{
	noPollConn * conn = (noPollConn *) arg;
	char text[32];
	int i, rc;
	for (i = 0; i < sh.count; i++) {
		sprintf (text, "s%d", i);
		rc = nopoll_conn_send_text (conn, text, -1);
		/* a short or would-block send keeps the rest as pending output */
		if (rc == -1)
			shared_add (&sh.send_errors, 1);
		shared_add (&sh.sent_by_s, 1);
		if (i % 50 == 0)
			sleep_ms (1);
	}
	return NULL;
}

static void run (const char * label)
{
	noPollCtx * cctx;
	noPollConn * listener, * conn, * srv;
	LoopThread lt;
	pthread_t s;
	double end;
	char text[32];
	int i, got = 0, bad = 0, rc;
	note (label);
	memset (&sh, 0, sizeof (sh));
	sh.count = 1000;
	sh.sctx = nopoll_ctx_new ();
	cctx = nopoll_ctx_new ();
	nopoll_ctx_set_on_ready (sh.sctx, on_ready, NULL);
	nopoll_ctx_set_on_msg (sh.sctx, on_msg, NULL);
	listener = nopoll_listener_new (sh.sctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (listener));
	CHECK (loop_thread_start (&lt, sh.sctx));

	conn = nopoll_conn_new (cctx, "127.0.0.1", nopoll_conn_port (listener), NULL, NULL, NULL, NULL);
	CHECK (client_ready (conn));
	end = now_ms () + (double) scaled (5000, 30000);
	while ((srv = (noPollConn *) shared_get_ptr (&sh.server_conn)) == NULL && now_ms () < end)
		sleep_ms (1);
	CHECK (srv != NULL);
	CHECK (spawn (&s, sender, srv));

	/* main: send ours and read S's, interleaved */
	end = now_ms () + (double) scaled (20000, 120000);
	for (i = 0; (i < sh.count || got < sh.count) && now_ms () < end;) {
		noPollMsg * msg;
		if (i < sh.count) {
			sprintf (text, "c%d", i);
			rc = nopoll_conn_send_text (conn, text, -1);
			CHECK (rc != -1);
			i++;
		}
		while ((msg = nopoll_conn_get_msg (conn)) != NULL) {
			sprintf (text, "s%d", got);
			if (strcmp ((const char *) nopoll_msg_get_payload (msg), text) != 0)
				bad++;
			got++;
			nopoll_msg_unref (msg);
		}
		if (i >= sh.count && got < sh.count)
			sleep_ms (1);
		/* keep our own output moving */
		nopoll_conn_complete_pending_write (conn);
	}
	nopoll_conn_flush_writes (conn, 1000000, 0);
	pthread_join (s, NULL);
	CHECK (wait_for (&sh.received, sh.count, scaled (10000, 60000)));
	printf ("%s: client got %d (%d out of order), server got %d (%d out of order), %d send errors\n",
		label, got, bad, shared_get (&sh.received), shared_get (&sh.out_of_order), shared_get (&sh.send_errors));
	CHECK_INT (got, sh.count);
	CHECK_INT (bad, 0);
	CHECK_INT (shared_get (&sh.received), sh.count);
	CHECK_INT (shared_get (&sh.out_of_order), 0);
	CHECK_INT (shared_get (&sh.sent_by_s), sh.count);
	CHECK_INT (shared_get (&sh.send_errors), 0);
	CHECK (nopoll_conn_is_ok (conn));

	nopoll_conn_close (conn);
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (cctx);
	nopoll_ctx_unref (sh.sctx);
}

int main (void)
{
	check_init ("threads", 60);
	run ("without thread handlers");
	nopoll_thread_handlers (m_create, m_destroy, m_lock, m_unlock);
	run ("with pthread mutex handlers");
	printf ("mutex callbacks: %d created, %d destroyed\n", shared_get (&mutexes_created),
		shared_get (&mutexes_destroyed));
	nopoll_thread_handlers (NULL, NULL, NULL, NULL);
	return check_done ();
}
