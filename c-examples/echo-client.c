/* echo-client: connects, sends a message, waits for the echo and closes.
 *
 *   echo-client [PORT [MESSAGE]]   (default 1234, "Hello nopoll")
 *
 * Exits 0 when the echo matches. Written the way vendor SDK samples use
 * nopoll: blocking-style polling with nopoll_conn_get_msg. */
#include <nopoll.h>

int main (int argc, char ** argv)
{
	const char * port    = argc > 1 ? argv[1] : "1234";
	const char * message = argc > 2 ? argv[2] : "Hello nopoll";
	noPollCtx  * ctx;
	noPollConn * conn;
	noPollMsg  * msg = NULL;
	int          tries = 0;
	int          ok;

	ctx = nopoll_ctx_new ();
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", NULL, NULL);
	if (! nopoll_conn_is_ok (conn)) {
		fprintf (stderr, "echo-client: cannot connect to 127.0.0.1:%s\n", port);
		nopoll_ctx_unref (ctx);
		return 1;
	}
	if (! nopoll_conn_wait_until_connection_ready (conn, 5)) {
		fprintf (stderr, "echo-client: handshake failed\n");
		nopoll_conn_close (conn);
		nopoll_ctx_unref (ctx);
		return 1;
	}
	if (nopoll_conn_send_text (conn, message, -1) != (int) strlen (message)) {
		fprintf (stderr, "echo-client: send failed\n");
		return 1;
	}
	while (msg == NULL && tries < 5000 && nopoll_conn_is_ok (conn)) {
		msg = nopoll_conn_get_msg (conn);
		if (msg == NULL) {
			nopoll_sleep (1000);
			tries++;
		}
	}
	ok = msg != NULL && nopoll_msg_get_payload_size (msg) == (long) strlen (message)
		&& memcmp (nopoll_msg_get_payload (msg), message, strlen (message)) == 0;
	printf ("echo-client: %s (%s)\n", ok ? "echo received" : "no echo", msg ? (const char *) nopoll_msg_get_payload (msg) : "-");
	if (msg)
		nopoll_msg_unref (msg);
	nopoll_conn_close_ext (conn, 1000, "bye", 3);
	nopoll_ctx_unref (ctx);
	return ok ? 0 : 1;
}
