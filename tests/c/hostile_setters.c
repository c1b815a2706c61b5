/*
 * hostile_setters: every size, count and timeout setter of the C API
 * given LONG_MAX, LONG_MIN, -1 and 0 (INT_MAX, INT_MIN for int ones),
 * on a real context and on NULL, then the loop runs (with a LONG_MAX
 * timeout, ended by nopoll_loop_stop) and a client gets its echo
 * (issue 18, item 4). Every setter validates or clamps: before, a
 * receive buffer of LONG_MAX aborted the process in nopoll_loop_wait.
 */
#include "check.h"
#include <limits.h>

static void on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
	else
		nopoll_conn_send_text (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
}

typedef struct {
	noPollCtx * ctx;
	pthread_t   thread;
	int         result;
} Loop;

static void * loop_main (void * arg)
{
	Loop * l = (Loop *) arg;
	l->result = nopoll_loop_wait (l->ctx, LONG_MAX);
	return NULL;
}

static void set_all (noPollCtx * ctx, long v, int iv)
{
	nopoll_ctx_set_recv_buffer_size (ctx, v);
	nopoll_ctx_set_max_pending_output (ctx, v);
	nopoll_ctx_set_max_idle_buffers (ctx, v);
	nopoll_ctx_set_max_message_size (ctx, v);
	nopoll_ctx_set_max_frame_size (ctx, v);
	nopoll_ctx_set_handshake_timeout (ctx, v);
	nopoll_conn_connect_timeout (ctx, v);
	nopoll_ctx_set_listen_backlog (ctx, iv);
	if (iv != 0) /* 0 is a version number: it would (rightly) break the handshake */
		nopoll_ctx_set_protocol_version (ctx, iv);
}

static int echo (noPollConn * conn, const char * data, long len, int binary)
{
	noPollMsg * msg;
	int ok;
	int sent = binary ? nopoll_conn_send_binary (conn, data, len) : nopoll_conn_send_text (conn, data, len);
	if (sent != (int) len && ! (sent >= 0 && nopoll_conn_flush_writes (conn, 5000000, sent) == (int) len))
		return 0;
	msg = wait_msg (conn, scaled (5000, 30000));
	if (msg == NULL)
		return 0;
	ok = nopoll_msg_get_payload_size (msg) == (int) len && memcmp (nopoll_msg_get_payload (msg), data, (size_t) len) == 0;
	nopoll_msg_unref (msg);
	return ok;
}

static void run (long v, int iv, const char * label)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollCtx * cctx = nopoll_ctx_new ();
	noPollConn * listener;
	noPollConn * client;
	noPollConnOpts * opts;
	Loop l;
	char port[16];
	char * big;
	long big_len = 200 * 1024;
	note (label);
	set_all (NULL, v, iv);
	set_all (ctx, v, iv);
	nopoll_ctx_set_on_msg (ctx, on_msg, NULL);
	listener = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (listener));
	strcpy (port, nopoll_conn_port (listener));
	l.ctx = ctx;
	l.result = 99;
	CHECK (spawn (&l.thread, loop_main, &l));

	/* The client context: a hostile connect timeout and frame limit. */
	nopoll_conn_connect_timeout (cctx, v);
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_set_max_frame_size (opts, v);
	nopoll_conn_opts_set_max_frame_size (NULL, v);
	client = nopoll_conn_new_opts (cctx, opts, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (nopoll_conn_is_ok (client));
	CHECK (client_ready (client));
	CHECK (echo (client, "hello", 5, 0));
	big = (char *) malloc ((size_t) big_len);
	memset (big, 'b', (size_t) big_len);
	CHECK (echo (client, big, big_len, 1));
	free (big);
	/* Hostile arguments to calls on a live connection. */
	CHECK (nopoll_conn_send_text (client, "x", LONG_MIN) < 0);
	CHECK (nopoll_conn_send_binary (client, "x", -5) < 0);
	CHECK (nopoll_conn_send_text (client, NULL, LONG_MAX) < 0);
	CHECK (nopoll_conn_flush_writes (client, LONG_MIN, 0) >= 0);
	CHECK (echo (client, "still", 5, 0));
	nopoll_conn_close (client);

	nopoll_loop_stop (ctx);
	pthread_join (l.thread, NULL);
	CHECK_INT (l.result, 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	nopoll_ctx_unref (cctx);
}

int main (void)
{
	check_init ("hostile_setters", 120);
	run (LONG_MAX, INT_MAX, "LONG_MAX / INT_MAX");
	run (LONG_MIN, INT_MIN, "LONG_MIN / INT_MIN");
	run (-1, -1, "-1");
	run (0, 0, "0");
	return check_done ();
}
