/*
 * lifetimes: references and what a stale handle does.
 *
 * - a new client conn has ref_count 2 (caller + ctx), 3 after
 *   nopoll_conn_ref, 2 after nopoll_conn_unref; the ctx counts one ref per
 *   registered conn;
 * - after nopoll_conn_close the handle is a dead token: nopoll_conn_is_ok
 *   is false, every call returns its failure value, nothing crashes, and a
 *   new conn never answers to the old handle;
 * - an on_msg handler that closes its own conn (server side from the loop
 *   thread, client side from the caller's loop); a server conn closed from
 *   another thread while the loop serves it;
 * - nopoll_conn_shutdown fires on_close once, keeps the conn allocated;
 * - unref'ing the ctx before closing its conns: they keep working and the
 *   ctx goes away with the last of them;
 * - a message kept with nopoll_msg_ref outlives its handler;
 * - the handler's message and conn answer from another thread while the
 *   handler runs (calls from the handler's own thread skip the handle
 *   table), and the message handle is dead once the handler returned;
 * - a handler sending its own text back skips the UTF-8 check for exactly
 *   that text: a cut through a character or another buffer is checked.
 */
#include "check.h"

static int closes = 0;

static void count_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) conn;
	CHECK (user_data == (noPollPtr) &closes);
	shared_add (&closes, 1);
}

static void ref_counts (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l, * c, * c2;
	char buf[8];
	note ("reference counts");
	l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK_INT (nopoll_ctx_ref_count (ctx), 2);
	c = nopoll_conn_new (ctx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
	CHECK (c != NULL);
	CHECK_INT (nopoll_conn_ref_count (c), 2);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 3);
	CHECK_INT (nopoll_ctx_conns (ctx), 2);
	CHECK (nopoll_conn_ref (c));
	CHECK_INT (nopoll_conn_ref_count (c), 3);
	nopoll_conn_unref (c);
	CHECK_INT (nopoll_conn_ref_count (c), 2);

	note ("a closed conn is a dead handle");
	nopoll_conn_close (c);
	CHECK (! nopoll_conn_is_ok (c));
	CHECK (! nopoll_conn_is_ready (c));
	CHECK_INT (nopoll_conn_ref_count (c), -1);
	CHECK (! nopoll_conn_ref (c));
	CHECK_INT (nopoll_conn_get_id (c), -1);
	CHECK (nopoll_conn_ctx (c) == NULL);
	CHECK (nopoll_conn_host (c) == NULL);
	CHECK_INT (nopoll_conn_socket (c), -1);
	CHECK_INT (nopoll_conn_send_text (c, "x", 1), -1);
	CHECK (nopoll_conn_get_msg (c) == NULL);
	CHECK_INT (nopoll_conn_read (c, buf, 1, nopoll_false, 0), -1);
	CHECK_INT (nopoll_conn_get_close_status (c), 0);
	nopoll_conn_set_on_close (c, count_close, &closes);
	nopoll_conn_close (c);
	nopoll_conn_close_ext (c, 1000, "again", 5);
	nopoll_conn_shutdown (c);
	nopoll_conn_unref (c);
	CHECK_INT (nopoll_ctx_conns (ctx), 1);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 2);
	CHECK_INT (shared_get (&closes), 0);

	/* a new conn, possibly in the same slot, is not reachable through c */
	c2 = nopoll_conn_new (ctx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
	CHECK (c2 != NULL && c2 != c);
	CHECK (nopoll_conn_is_ok (c2));
	CHECK (! nopoll_conn_is_ok (c));
	CHECK_INT (nopoll_conn_ref_count (c2), 2);
	nopoll_conn_close (c2);

	nopoll_conn_close (l);
	CHECK (! nopoll_conn_is_ok (l));
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);
	nopoll_ctx_unref (ctx);
}

static void shutdown_fires_on_close (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l, * c;
	int id;
	note ("nopoll_conn_shutdown");
	l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	c = nopoll_conn_new (ctx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
	id = nopoll_conn_get_id (c);
	shared_set (&closes, 0);
	nopoll_conn_set_on_close (c, count_close, &closes);
	nopoll_conn_shutdown (c);
	CHECK_INT (shared_get (&closes), 1);
	CHECK (! nopoll_conn_is_ok (c));
	/* still allocated: the caller's reference */
	CHECK_INT (nopoll_conn_get_id (c), id);
	CHECK (nopoll_conn_ref_count (c) >= 1);
	CHECK_INT (nopoll_conn_socket (c), -1);
	nopoll_conn_shutdown (c);
	nopoll_conn_close (c);
	CHECK_INT (shared_get (&closes), 1);
	CHECK_INT (nopoll_conn_ref_count (c), -1);
	nopoll_conn_close (l);
	nopoll_ctx_unref (ctx);
}

/* ---------------------------------------------------------------- handlers */

static noPollCtx * sctx;
static noPollMsg * kept = NULL;
static int server_msgs = 0;
static void * last_server_conn = NULL;
static void * seen_in_handler = NULL;
static void * kept_elsewhere = NULL;

typedef struct {
	noPollCtx * ctx; noPollConn * conn; noPollMsg * msg;
	long size; int opcode; int ok; int conns; const char * text;
} HandlerPeek;

static void * keep_from_thread (void * arg)
{
	return nopoll_msg_ref ((noPollMsg *) arg) ? arg : NULL;
}

static void * peek_from_thread (void * arg)
{
	HandlerPeek * p = (HandlerPeek *) arg;
	p->size   = nopoll_msg_get_payload_size (p->msg);
	p->opcode = (int) nopoll_msg_opcode (p->msg);
	p->text   = (const char *) nopoll_msg_get_payload (p->msg);
	p->ok     = nopoll_conn_is_ok (p->conn);
	p->conns  = nopoll_ctx_conns (p->ctx);
	return NULL;
}

static nopoll_bool server_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	shared_set_ptr (&last_server_conn, conn);
	return nopoll_true;
}

static void server_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * text = (const char *) nopoll_msg_get_payload (msg);
	(void) ctx;
	(void) user_data;
	shared_add (&server_msgs, 1);
	if (text != NULL && strcmp (text, "close me") == 0) {
		nopoll_conn_close (conn);
		/* the conn is gone for us, the msg is still valid */
		CHECK (! nopoll_conn_is_ok (conn));
		CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "close me");
		return;
	}
	if (text != NULL && strcmp (text, "keep") == 0) {
		CHECK_INT (nopoll_msg_ref_count (msg), 1);
		CHECK (nopoll_msg_ref (msg));
		CHECK_INT (nopoll_msg_ref_count (msg), 2);
		shared_set_ptr ((void **) &kept, msg);
	}
	if (text != NULL && strcmp (text, "keep elsewhere") == 0) {
		pthread_t t;
		void * got = NULL;
		/* the handler's own reference is the library's: refused */
		nopoll_msg_unref (msg);
		CHECK_INT (nopoll_msg_ref_count (msg), 1);
		CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "keep elsewhere");
		/* kept by another thread while the handler runs */
		CHECK (pthread_create (&t, NULL, keep_from_thread, msg) == 0);
		pthread_join (t, &got);
		CHECK (got == (void *) msg);
		CHECK_INT (nopoll_msg_ref_count (msg), 2);
		shared_set_ptr (&kept_elsewhere, msg);
	}
	if (text != NULL && strcmp (text, "other thread") == 0) {
		HandlerPeek p;
		pthread_t t;
		memset (&p, 0, sizeof (p));
		p.ctx = ctx;
		p.conn = conn;
		p.msg = msg;
		CHECK (pthread_create (&t, NULL, peek_from_thread, &p) == 0);
		pthread_join (t, NULL);
		CHECK_INT (p.size, 12);
		CHECK_INT (p.opcode, NOPOLL_TEXT_FRAME);
		CHECK (p.text != NULL && strcmp (p.text, "other thread") == 0);
		CHECK (p.ok);
		CHECK (p.conns >= 2);
		/* the same answers on this thread */
		CHECK_INT (nopoll_ctx_conns (ctx), p.conns);
		CHECK_INT (nopoll_msg_get_payload_size (msg), 12);
		CHECK_INT (nopoll_msg_opcode (msg), NOPOLL_TEXT_FRAME);
		shared_set_ptr (&seen_in_handler, msg);
	}
	if (text != NULL && strcmp (text, "caf\xc3\xa9") == 0) {
		/* Sending the handler's own (validated) text skips a second
		 * check, but only for exactly that text: a cut through its last
		 * character, or another buffer, is still checked. */
		CHECK_INT (nopoll_conn_send_text (conn, text, 4), -1);
		CHECK_INT (nopoll_conn_send_text (conn, "\xff", 1), -1);
		CHECK_INT (nopoll_conn_send_text (conn, text + 4, 1), -1);
		CHECK_INT (nopoll_conn_send_text (conn, "other", 5), 5);
		/* bad arguments on the handler's own connection */
		CHECK_INT (nopoll_conn_send_text (conn, NULL, 3), -1);
		CHECK_INT (nopoll_conn_send_binary (conn, text, -2), -1);
		CHECK_INT (nopoll_conn_send_text_fragment (conn, NULL, 1), -1);
	}
	nopoll_conn_send_text (conn, text ? text : "", nopoll_msg_get_payload_size (msg));
}

/* A handler that runs a second context's loop: the handler called there,
 * on the same thread, gets its own message handle, and the outer one
 * stays good. */
static noPollCtx * nest_b = NULL;
static noPollMsg * nest_outer = NULL;
static noPollMsg * nest_inner = NULL;
static int nest_calls = 0;

static void nest_inner_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) conn;
	(void) user_data;
	nest_calls++;
	CHECK (msg != nest_outer);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "inner");
	CHECK_STR ((const char *) nopoll_msg_get_payload (nest_outer), "outer");
	CHECK (nopoll_msg_ref (msg));
	CHECK_INT (nopoll_msg_ref_count (msg), 2);
	nest_inner = msg;
	nopoll_loop_stop (ctx);
}

static void nest_outer_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	noPollMsg * j;
	(void) conn;
	(void) user_data;
	nest_outer = msg;
	CHECK_INT (nopoll_loop_wait (nest_b, scaled (5000000L, 30000000L)), 0);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "outer");
	/* joined with itself: a new message, the handler's untouched */
	j = nopoll_msg_join (msg, msg);
	CHECK_STR ((const char *) nopoll_msg_get_payload (j), "outerouter");
	CHECK_INT (nopoll_msg_ref_count (j), 1);
	nopoll_msg_unref (j);
	CHECK_INT (nopoll_msg_ref_count (msg), 1);
	nopoll_loop_stop (ctx);
}

static int client_closed_itself = 0;

static void client_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) msg;
	CHECK (user_data == (noPollPtr) &client_closed_itself);
	/* releases the caller's reference from inside the handler */
	nopoll_conn_close (conn);
	/* the handle stays good until the handler returns: a send fails */
	CHECK_INT (nopoll_conn_send_text (conn, "late", 4), -1);
	CHECK (! nopoll_conn_is_ok (conn));
	client_closed_itself++;
	nopoll_loop_stop (ctx);
}

static void handler_closes (void)
{
	noPollCtx * cctx = nopoll_ctx_new ();
	noPollConn * l, * c;
	noPollMsg * msg;
	LoopThread lt;
	double end;
	note ("an on_msg handler closes its own conn (server side)");
	sctx = nopoll_ctx_new ();
	nopoll_ctx_set_on_msg (sctx, server_on_msg, NULL);
	nopoll_ctx_set_on_ready (sctx, server_ready, NULL);
	l = nopoll_listener_new (sctx, "127.0.0.1", "0");
	CHECK (loop_thread_start (&lt, sctx));
	c = nopoll_conn_new (cctx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
	CHECK (client_ready (c));
	CHECK_INT (nopoll_conn_send_text (c, "close me", -1), 8);
	msg = wait_msg (c, scaled (5000, 30000));
	CHECK (msg == NULL);
	CHECK (! nopoll_conn_is_ok (c));
	CHECK_INT (nopoll_conn_get_close_status (c), 1005);
	nopoll_conn_close (c);
	end = now_ms () + (double) scaled (5000, 30000);
	while (nopoll_ctx_conns (sctx) != 1 && now_ms () < end)
		sleep_ms (1);
	CHECK_INT (nopoll_ctx_conns (sctx), 1);

	note ("a kept message outlives its handler");
	c = nopoll_conn_new (cctx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
	CHECK (client_ready (c));
	CHECK_INT (nopoll_conn_send_text (c, "keep", -1), 4);
	msg = wait_msg (c, scaled (5000, 30000));
	CHECK (msg != NULL);
	nopoll_msg_unref (msg);
	{
		noPollMsg * k = (noPollMsg *) shared_get_ptr ((void **) &kept);
		CHECK (k != NULL);
		CHECK_INT (nopoll_msg_ref_count (k), 1);
		CHECK_STR ((const char *) nopoll_msg_get_payload (k), "keep");
		nopoll_msg_unref (k);
		CHECK_INT (nopoll_msg_ref_count (k), -1);
	}

	note ("a message kept by another thread during its handler");
	CHECK_INT (nopoll_conn_send_text (c, "keep elsewhere", -1), 14);
	msg = wait_msg (c, scaled (5000, 30000));
	CHECK (msg != NULL);
	nopoll_msg_unref (msg);
	{
		const char * before;
		noPollMsg * k = (noPollMsg *) shared_get_ptr (&kept_elsewhere);
		CHECK (k != NULL);
		CHECK_INT (nopoll_msg_ref_count (k), 1);
		before = (const char *) nopoll_msg_get_payload (k);
		CHECK_STR (before, "keep elsewhere");
		/* later messages do not reuse it */
		CHECK_INT (nopoll_conn_send_text (c, "next", -1), 4);
		msg = wait_msg (c, scaled (5000, 30000));
		CHECK (msg != NULL);
		nopoll_msg_unref (msg);
		CHECK ((const char *) nopoll_msg_get_payload (k) == before);
		CHECK_STR (before, "keep elsewhere");
		nopoll_msg_unref (k);
		CHECK_INT (nopoll_msg_ref_count (k), -1);
		CHECK (nopoll_msg_get_payload (k) == NULL);
	}

	note ("a handler sends its own text, cuts of it and other text");
	CHECK_INT (nopoll_conn_send_text (c, "caf\xc3\xa9", -1), 5);
	msg = wait_msg (c, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "other");
	nopoll_msg_unref (msg);
	msg = wait_msg (c, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "caf\xc3\xa9");
	nopoll_msg_unref (msg);

	note ("a handler's handles from another thread; dead after the handler");
	CHECK_INT (nopoll_conn_send_text (c, "other thread", -1), 12);
	msg = wait_msg (c, scaled (5000, 30000));
	CHECK (msg != NULL && nopoll_msg_get_payload_size (msg) == 12);
	nopoll_msg_unref (msg);
	/* a second round trip: the first handler has returned by its echo */
	CHECK_INT (nopoll_conn_send_text (c, "next", -1), 4);
	msg = wait_msg (c, scaled (5000, 30000));
	CHECK (msg != NULL && nopoll_msg_get_payload_size (msg) == 4);
	nopoll_msg_unref (msg);
	{
		noPollMsg * gone = (noPollMsg *) shared_get_ptr (&seen_in_handler);
		CHECK (gone != NULL);
		CHECK_INT (nopoll_msg_get_payload_size (gone), -1);
		CHECK (nopoll_msg_get_payload (gone) == NULL);
		CHECK_INT (nopoll_msg_opcode (gone), NOPOLL_UNKNOWN_OP_CODE);
		CHECK_INT (nopoll_msg_ref_count (gone), -1);
	}

	note ("a server conn closed from another thread while the loop serves it");
	{
		noPollConn * srv = (noPollConn *) shared_get_ptr (&last_server_conn);
		int i, ok = 1;
		CHECK (srv != NULL);
		/* traffic while it closes */
		for (i = 0; i < 20; i++)
			nopoll_conn_send_text (c, "busy", 4);
		nopoll_conn_close_ext (srv, 4002, "from main", 9);
		end = now_ms () + (double) scaled (5000, 30000);
		while (nopoll_conn_is_ok (c) && now_ms () < end) {
			msg = nopoll_conn_get_msg (c);
			if (msg != NULL)
				nopoll_msg_unref (msg);
			else
				sleep_ms (1);
		}
		CHECK (! nopoll_conn_is_ok (c));
		CHECK_INT (nopoll_conn_get_close_status (c), 4002);
		CHECK_STR (nopoll_conn_get_close_reason (c), "from main");
		CHECK (! nopoll_conn_is_ok (srv));
		CHECK (ok);
	}
	note ("a handler inside another handler's nested loop");
	{
		noPollCtx * actx = nopoll_ctx_new ();
		noPollConn * a, * b;
		int before = nopoll_ctx_conns (sctx);
		nest_b = nopoll_ctx_new ();
		a = nopoll_conn_new (actx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
		b = nopoll_conn_new (nest_b, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
		CHECK (client_ready (a));
		CHECK (client_ready (b));
		nopoll_ctx_set_on_msg (actx, nest_outer_on_msg, NULL);
		nopoll_ctx_set_on_msg (nest_b, nest_inner_on_msg, NULL);
		CHECK_INT (nopoll_conn_send_text (b, "inner", -1), 5);
		CHECK_INT (nopoll_conn_send_text (a, "outer", -1), 5);
		CHECK_INT (nopoll_loop_wait (actx, scaled (5000000L, 30000000L)), 0);
		CHECK_INT (nest_calls, 1);
		CHECK (nest_inner != NULL);
		/* kept past its handler; the outer one died with its own */
		CHECK_INT (nopoll_msg_ref_count (nest_inner), 1);
		CHECK_STR ((const char *) nopoll_msg_get_payload (nest_inner), "inner");
		nopoll_msg_unref (nest_inner);
		CHECK_INT (nopoll_msg_ref_count (nest_inner), -1);
		CHECK (nopoll_msg_get_payload (nest_outer) == NULL);
		nopoll_conn_close (a);
		nopoll_conn_close (b);
		nopoll_ctx_unref (actx);
		nopoll_ctx_unref (nest_b);
		/* the server loop drops both server sides before it is stopped:
		 * a server conn it never saw closing would stay registered and
		 * keep its ctx (and socket) alive past nopoll_ctx_unref */
		end = now_ms () + (double) scaled (5000, 30000);
		while (nopoll_ctx_conns (sctx) > before && now_ms () < end)
			sleep_ms (1);
		CHECK_INT (nopoll_ctx_conns (sctx), before);
	}

	nopoll_conn_close (c);
	CHECK_INT (loop_thread_stop (&lt), 0);

	note ("an on_msg handler closes its own conn (client side)");
	{
		int sfd;
		char head[1024];
		unsigned char frame[32];
		long n;
		int lfd, p;
		char ps[16];
		lfd = raw_listen (2, &p);
		sprintf (ps, "%d", p);
		c = nopoll_conn_new (cctx, "127.0.0.1", ps, NULL, NULL, NULL, NULL);
		nopoll_conn_set_on_msg (c, client_on_msg, &client_closed_itself);
		sfd = raw_accept (lfd, 5000);
		CHECK (raw_server_handshake (sfd, head, sizeof (head), NULL));
		n = raw_frame (frame, 1, 1, 0, "bye", 3);
		CHECK (raw_send_all (sfd, frame, n));
		CHECK_INT (nopoll_loop_wait (cctx, scaled (5000000L, 30000000L)), 0);
		CHECK_INT (client_closed_itself, 1);
		CHECK (! nopoll_conn_is_ok (c));
		CHECK_INT (nopoll_conn_ref_count (c), -1);
		CHECK_INT (nopoll_ctx_conns (cctx), 0);
		close (sfd);
		close (lfd);
	}
	nopoll_conn_close (l);
	nopoll_ctx_unref (sctx);
	nopoll_ctx_unref (cctx);
}

static void ctx_unref_first (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l, * c, * srv;
	noPollMsg * msg;
	int i;
	note ("unref the ctx before closing its conns");
	l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	c = nopoll_conn_new (ctx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
	srv = nopoll_conn_accept (ctx, l);
	CHECK (srv != NULL);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 4);
	nopoll_ctx_unref (ctx);
	/* the conns keep it alive */
	CHECK_INT (nopoll_ctx_ref_count (ctx), 3);
	CHECK (nopoll_conn_ctx (c) == ctx);
	for (i = 0; i < 5000 && ! (nopoll_conn_is_ready (srv) && nopoll_conn_is_ready (c)); i++)
		sleep_ms (1);
	CHECK (nopoll_conn_is_ready (c));
	CHECK_INT (nopoll_conn_send_text (c, "still here", -1), 10);
	msg = wait_msg (srv, scaled (5000, 30000));
	CHECK (msg != NULL);
	CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "still here");
	nopoll_msg_unref (msg);
	/* the loop of a ctx nobody references any more still runs */
	CHECK_INT (nopoll_loop_wait (nopoll_conn_ctx (c), 20000), -3);
	nopoll_conn_close (c);
	nopoll_conn_close (srv);
	CHECK_INT (nopoll_ctx_ref_count (ctx), 1);
	nopoll_conn_close (l);
	/* the last conn took the ctx with it */
	CHECK_INT (nopoll_ctx_ref_count (ctx), -1);
	CHECK_INT (nopoll_ctx_conns (ctx), -1);
	nopoll_ctx_unref (ctx);
}

static void reclose (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	shared_add ((int *) user_data, 1);
	/* closing again from on_close is harmless */
	nopoll_conn_close (conn);
	nopoll_conn_shutdown (conn);
}

static nopoll_bool close_clients (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	if (nopoll_conn_role (conn) == NOPOLL_ROLE_CLIENT) {
		nopoll_conn_close (conn);
		(*(int *) user_data)++;
	}
	return nopoll_false;
}

typedef struct {
	noPollConn * conn;
	int          sent;
	int          failed;
} Spammer;

static void * spammer (void * arg)
{
	Spammer * sp = (Spammer *) arg;
	int i;
	for (i = 0; i < 20000; i++) {
		if (nopoll_conn_send_text (sp->conn, "spam", 4) == -1)
			sp->failed++;
		else
			sp->sent++;
	}
	return NULL;
}

static void concurrent_closes (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l, * l2, * c, * c2, * c3, * srv;
	Spammer sp;
	pthread_t t;
	int closed = 0, reclosed = 0;
	note ("nopoll_ctx_foreach_conn closing conns");
	l2 = nopoll_listener_new (ctx, "127.0.0.1", "0");
	c2 = nopoll_conn_new (ctx, "127.0.0.1", nopoll_conn_port (l2), NULL, NULL, NULL, NULL);
	c3 = nopoll_conn_new (ctx, "127.0.0.1", nopoll_conn_port (l2), NULL, NULL, NULL, NULL);
	CHECK_INT (nopoll_ctx_conns (ctx), 3);
	CHECK (nopoll_ctx_foreach_conn (ctx, close_clients, &closed) == NULL);
	CHECK_INT (closed, 2);
	CHECK (! nopoll_conn_is_ok (c2));
	CHECK (! nopoll_conn_is_ok (c3));
	CHECK_INT (nopoll_ctx_conns (ctx), 1);
	nopoll_conn_close (l2);

	note ("a conn closed while another thread sends on it");
	l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	c = nopoll_conn_new (ctx, "127.0.0.1", nopoll_conn_port (l), NULL, NULL, NULL, NULL);
	srv = nopoll_conn_accept (ctx, l);
	CHECK (srv != NULL);
	nopoll_conn_set_on_close (srv, reclose, &reclosed);
	CHECK (nopoll_conn_ref (c));
	{
		int i;
		for (i = 0; i < 5000 && ! (nopoll_conn_is_ready (srv) && nopoll_conn_is_ready (c)); i++)
			sleep_ms (1);
	}
	CHECK (nopoll_conn_is_ready (c));
	memset (&sp, 0, sizeof (sp));
	sp.conn = c;
	CHECK (spawn (&t, spammer, &sp));
	sleep_ms (2);
	nopoll_conn_close (c);
	pthread_join (t, NULL);
	printf ("spammer: %d sent, %d refused after the close\n", sp.sent, sp.failed);
	CHECK_INT (sp.sent + sp.failed, 20000);
	CHECK (! nopoll_conn_is_ok (c));
	/* our extra reference keeps the (closed) conn readable */
	CHECK_INT (nopoll_conn_ref_count (c), 1);
	nopoll_conn_unref (c);
	CHECK_INT (nopoll_conn_ref_count (c), -1);

	note ("on_close closing its conn again");
	{
		noPollMsg * msg;
		double end = now_ms () + (double) scaled (5000, 30000);
		while (nopoll_conn_is_ok (srv) && now_ms () < end) {
			msg = nopoll_conn_get_msg (srv);
			if (msg != NULL)
				nopoll_msg_unref (msg);
		}
	}
	CHECK (! nopoll_conn_is_ok (srv));
	CHECK_INT (shared_get (&reclosed), 1);
	nopoll_conn_close (srv);
	nopoll_conn_close (l);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
	nopoll_ctx_unref (ctx);
}

int main (void)
{
	check_init ("lifetimes", 60);
	ref_counts ();
	shutdown_fires_on_close ();
	handler_closes ();
	ctx_unref_first ();
	concurrent_closes ();
	return check_done ();
}
