/*
 * Drop-in sample: a WebSocket server written against upstream nopoll's
 * API only, the way vendor SDK samples use it. It builds unchanged
 * against upstream nopoll or this library:
 *
 *     cc server.c $(pkg-config --cflags --libs nopoll) -o server
 *
 * Usage: server [PORT]   (default 0: the system picks a free port)
 *
 * Listens on 127.0.0.1, prints "LISTENING: <port>", and accepts a
 * connection only when its Origin is http://example.com (on_open). When
 * the client offers the "chat" subprotocol, it is accepted. Every text
 * message is answered with "echo: <text>"; the message "quit" stops the
 * server. It also stops by itself after 30 seconds.
 */
#include <nopoll.h>

static nopoll_bool on_open (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	const char * origin    = nopoll_conn_get_origin (conn);
	const char * protocols = nopoll_conn_get_requested_protocol (conn);

	if (! nopoll_cmp (origin, "http://example.com")) {
		printf ("REFUSED: origin %s from %s\n", origin ? origin : "(none)", nopoll_conn_host (conn));
		fflush (stdout);
		return nopoll_false;
	}

	/* pick our subprotocol when the client offers it */
	if (protocols != NULL && strstr (protocols, "chat") != NULL)
		nopoll_conn_set_accepted_protocol (conn, "chat");

	printf ("ACCEPTED: url=%s protocols=%s\n", nopoll_conn_get_requested_url (conn),
		protocols ? protocols : "(none)");
	fflush (stdout);
	return nopoll_true;
}

static void on_message (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * text = (const char *) nopoll_msg_get_payload (msg);
	char       * reply;

	if (text != NULL && strcmp (text, "quit") == 0) {
		printf ("QUIT\n");
		fflush (stdout);
		nopoll_conn_send_text (conn, "bye", 3);
		nopoll_loop_stop (ctx);
		return;
	}

	reply = nopoll_strdup_printf ("echo: %s", text ? text : "");
	if (reply == NULL)
		return;
	nopoll_conn_send_text (conn, reply, strlen (reply));
	nopoll_free (reply);
}

int main (int argc, char ** argv)
{
	noPollCtx  * ctx;
	noPollConn * listener;
	int          result;

	ctx = nopoll_ctx_new ();
	if (ctx == NULL) {
		printf ("ERROR: unable to create context\n");
		return 1;
	}

	listener = nopoll_listener_new (ctx, "127.0.0.1", argc > 1 ? argv[1] : "0");
	if (! nopoll_conn_is_ok (listener)) {
		printf ("ERROR: unable to listen\n");
		nopoll_ctx_unref (ctx);
		return 1;
	}
	printf ("LISTENING: %s\n", nopoll_conn_port (listener));
	fflush (stdout);

	nopoll_ctx_set_on_open (ctx, on_open, NULL);
	nopoll_ctx_set_on_msg (ctx, on_message, NULL);

	/* 30 seconds at most (microseconds) */
	result = nopoll_loop_wait (ctx, 30000000);
	printf ("STOPPED: %d\n", result);

	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	return result == 0 ? 0 : 1;
}
