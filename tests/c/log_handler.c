/*
 * log_handler: log lines of the library reach the C handler set with
 * nopoll_log_set_handler (issue 18, item 5), not only the Rust `log`
 * crate: here the refusal of nopoll_msg_unref on the message an on_msg
 * handler is running with (the library's reference), which used to go
 * to the `log` crate alone. The message stays usable after the refused
 * unref, and the echo still arrives.
 */
#include "check.h"

static int refusals = 0;
static int lines = 0;

static void log_handler (noPollCtx * ctx, noPollDebugLevel level, const char * line, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	shared_add (&lines, 1);
	if (strstr (line, "running handler's message") != NULL) {
		CHECK_INT (level, NOPOLL_LEVEL_CRITICAL);
		shared_add (&refusals, 1);
	}
}

static void on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	nopoll_msg_unref (msg); /* the library's reference: refused, logged */
	nopoll_conn_send_text (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
}

int main (void)
{
	noPollCtx * ctx;
	noPollCtx * cctx;
	noPollConn * listener;
	noPollConn * client;
	noPollMsg * msg;
	LoopThread lt;
	char port[16];

	check_init ("log_handler", 30);
	ctx = nopoll_ctx_new ();
	cctx = nopoll_ctx_new ();
	nopoll_log_set_handler (ctx, log_handler, NULL);
	nopoll_ctx_set_on_msg (ctx, on_msg, NULL);
	listener = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (listener));
	strcpy (port, nopoll_conn_port (listener));
	CHECK (loop_thread_start (&lt, ctx));

	client = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (client_ready (client));
	CHECK (nopoll_conn_send_text (client, "hello", 5) == 5);
	msg = wait_msg (client, scaled (5000, 30000));
	CHECK (msg != NULL);
	if (msg != NULL) {
		CHECK_STR ((const char *) nopoll_msg_get_payload (msg), "hello");
		nopoll_msg_unref (msg);
	}
	CHECK_INT (shared_get (&refusals), 1);
	CHECK (shared_get (&lines) >= 1);

	nopoll_conn_close (client);
	CHECK (wait_ctx_conns (ctx, 1));
	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	nopoll_ctx_unref (cctx);
	return check_done ();
}
