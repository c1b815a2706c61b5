/*
 * Drop-in sample: a WebSocket client written against upstream nopoll's
 * API only, the way vendor SDK samples use it. It builds unchanged
 * against upstream nopoll or this library:
 *
 *     cc client.c $(pkg-config --cflags --libs nopoll) -o client
 *
 * Usage: client HOST PORT MESSAGE [ORIGIN]
 *
 * Connects (asking for the "chat" subprotocol), sends MESSAGE as text,
 * waits up to 5 seconds for the reply, prints it and closes. Exit status
 * 0 on success, 1 on any failure.
 */
#include <nopoll.h>

static int wait_reply (noPollConn * conn, char * out, int out_size)
{
	noPollMsg * msg;
	int         iterator = 0;

	/* poll for the reply: 500 x 10 ms */
	while (iterator < 500) {
		if (! nopoll_conn_is_ok (conn)) {
			printf ("ERROR: connection lost while waiting for the reply\n");
			return 0;
		}
		msg = nopoll_conn_get_msg (conn);
		if (msg != NULL) {
			if (nopoll_msg_get_payload_size (msg) >= out_size) {
				printf ("ERROR: reply too long (%ld bytes)\n", nopoll_msg_get_payload_size (msg));
				nopoll_msg_unref (msg);
				return 0;
			}
			memcpy (out, nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
			out[nopoll_msg_get_payload_size (msg)] = 0;
			nopoll_msg_unref (msg);
			return 1;
		}
		nopoll_sleep (10000);
		iterator++;
	}
	printf ("ERROR: no reply received\n");
	return 0;
}

int main (int argc, char ** argv)
{
	noPollCtx  * ctx;
	noPollConn * conn;
	const char * origin = "http://example.com";
	char         reply[1024];
	int          result = 1;

	if (argc < 4) {
		printf ("usage: %s HOST PORT MESSAGE [ORIGIN]\n", argv[0]);
		return 1;
	}
	if (argc > 4)
		origin = argv[4];

	ctx = nopoll_ctx_new ();
	if (ctx == NULL) {
		printf ("ERROR: unable to create context\n");
		return 1;
	}

	/* connect: host, port, host header, url, protocols, origin */
	conn = nopoll_conn_new (ctx, argv[1], argv[2], NULL, "/echo", "chat", origin);
	if (! nopoll_conn_is_ok (conn)) {
		printf ("ERROR: unable to connect to %s:%s\n", argv[1], argv[2]);
		nopoll_conn_close (conn);
		nopoll_ctx_unref (ctx);
		return 1;
	}

	if (! nopoll_conn_wait_until_connection_ready (conn, 5)) {
		printf ("ERROR: websocket handshake with %s:%s failed\n", argv[1], argv[2]);
		goto finish;
	}
	printf ("CONNECTED: protocol=%s\n",
		nopoll_conn_get_accepted_protocol (conn) ? nopoll_conn_get_accepted_protocol (conn) : "(none)");

	if (nopoll_conn_send_text (conn, argv[3], strlen (argv[3])) != (int) strlen (argv[3])) {
		printf ("ERROR: unable to send the message\n");
		goto finish;
	}

	if (! wait_reply (conn, reply, sizeof (reply)))
		goto finish;
	printf ("REPLY: %s\n", reply);
	result = 0;

finish:
	nopoll_conn_close (conn);
	nopoll_ctx_unref (ctx);
	return result;
}
