/* echo-listener: a WebSocket echo server written against the nopoll API.
 *
 *   echo-listener [PORT]        (default 1234; listens on 127.0.0.1)
 *
 * Text is echoed as text, binary as binary. SIGINT/SIGTERM stop it cleanly
 * (nopoll_loop_stop is safe from a signal handler). Used by the Autobahn
 * server run and by the tests. */
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
}

int main (int argc, char ** argv)
{
	const char * port = argc > 1 ? argv[1] : "1234";
	noPollConn * listener;

	ctx = nopoll_ctx_new ();
	if (ctx == NULL)
		return 1;
	/* Autobahn sends frames of up to 16 MiB in case 9. */
	nopoll_ctx_set_max_frame_size (ctx, 20 * 1024 * 1024);

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
