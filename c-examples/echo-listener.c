/* echo-listener: a WebSocket echo server written against the nopoll API.
 *
 *   echo-listener [PORT]        (default 1234; listens on 127.0.0.1)
 *
 * ECHO_DEFLATE=1 accepts permessage-deflate offers (RFC 7692);
 * ECHO_DEFLATE=no-takeover also insists on no context takeover.
 *
 * Text is echoed as text, binary as binary. SIGINT/SIGTERM stop it cleanly
 * (nopoll_loop_stop is safe from a signal handler). Used by the Autobahn
 * server run and by the tests.
 *
 * Built with -DECHO_UPSTREAM_FLUSH (benches/build-ours.sh), it flushes by
 * hand after each send for as long as nopoll_conn_pending_write_bytes
 * reports bytes pending, the way upstream nopoll's manual teaches: the
 * benchmark suite checks that such a program keeps the library's batching
 * of a handler's answers (issue 17 item 3). */
#include <nopoll.h>
#include <signal.h>

static noPollCtx * ctx = NULL;

static void on_signal (int sig)
{
	(void) sig;
	nopoll_loop_stop (ctx);
}

static void on_message (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * payload = (const char *) nopoll_msg_get_payload (msg);
	long         size    = nopoll_msg_get_payload_size (msg);
	(void) c;
	(void) user_data;

	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, payload, size);
	else
		nopoll_conn_send_text (conn, payload == NULL ? "" : payload, size);
#ifdef ECHO_UPSTREAM_FLUSH
	{
		int tries = 0;
		while (nopoll_conn_pending_write_bytes (conn) > 0 && tries++ < 1000)
			if (nopoll_conn_complete_pending_write (conn) < 0)
				break;
	}
#endif
}

int main (int argc, char ** argv)
{
	const char * port = argc > 1 ? argv[1] : "1234";
	noPollConn * listener;
	const char * deflate;

	ctx = nopoll_ctx_new ();
	if (ctx == NULL)
		return 1;
	/* Autobahn sends frames of up to 16 MiB in case 9. */
	nopoll_ctx_set_max_frame_size (ctx, 20 * 1024 * 1024);
	deflate = getenv ("ECHO_DEFLATE");
	if (deflate != NULL && strcmp (deflate, "1") == 0)
		nopoll_ctx_set_permessage_deflate (ctx, nopoll_true);
	else if (deflate != NULL && strcmp (deflate, "no-takeover") == 0)
		nopoll_ctx_set_permessage_deflate_no_context_takeover (ctx, nopoll_true);

	if (argc > 3) {
		/* echo-listener PORT CERT KEY: wss:// */
		listener = nopoll_listener_tls_new (ctx, "127.0.0.1", port);
		if (! nopoll_listener_set_certificate (listener, argv[2], argv[3], NULL)) {
			fprintf (stderr, "echo-listener: cannot use certificate %s and key %s\n", argv[2], argv[3]);
			return 1;
		}
	} else
		listener = nopoll_listener_new (ctx, "127.0.0.1", port);
	if (! nopoll_conn_is_ok (listener)) {
		fprintf (stderr, "echo-listener: cannot listen on 127.0.0.1:%s\n", port);
		return 1;
	}
	nopoll_ctx_set_on_msg (ctx, on_message, NULL);
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);

	printf ("echo-listener: ready on %s://127.0.0.1:%s/\n", argc > 3 ? "wss" : "ws", nopoll_conn_port (listener));
	fflush (stdout);
	nopoll_loop_wait (ctx, 0);

	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	return 0;
}
