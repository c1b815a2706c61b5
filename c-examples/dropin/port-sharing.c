/*
 * Drop-in sample: one TCP port for plain HTTP and WebSocket, the "port
 * sharing" upstream nopoll documents. The application keeps its own
 * accept loop (here a tiny HTTP server); when a request asks for a
 * WebSocket upgrade, the socket is handed to nopoll with
 * nopoll_listener_from_socket + nopoll_conn_accept_complete. Written
 * against upstream's API only:
 *
 *     cc port-sharing.c $(pkg-config --cflags --libs nopoll) -o port-sharing
 *
 * Usage: port-sharing [PORT]   (default 0: the system picks a free port)
 *
 * Prints "LISTENING: <port>". GET requests without an upgrade get
 * "hello from the legacy server"; WebSocket text messages are answered
 * with "shared: <text>"; the message "quit" stops the program, which also
 * stops by itself after 30 seconds.
 */
#include <nopoll.h>

static int running = 1;

static void on_message (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * text = (const char *) nopoll_msg_get_payload (msg);
	char       * reply;

	if (text != NULL && strcmp (text, "quit") == 0) {
		nopoll_conn_send_text (conn, "bye", 3);
		running = 0;
		return;
	}
	reply = nopoll_strdup_printf ("shared: %s", text ? text : "");
	if (reply == NULL)
		return;
	nopoll_conn_send_text (conn, reply, strlen (reply));
	nopoll_free (reply);
}

/* Peeks at the request head (without consuming it) until it is complete;
 * 1 if it asks for a WebSocket upgrade. */
static int is_websocket (int fd)
{
	char           buffer[2048];
	struct timeval wait;
	int            size = 0;
	int            tries;
	int            i;

	/* a client that sends nothing must not stall the accept loop */
	wait.tv_sec  = 5;
	wait.tv_usec = 0;
	setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof (wait));

	for (tries = 0; tries < 200; tries++) {
		size = recv (fd, buffer, sizeof (buffer) - 1, MSG_PEEK);
		if (size <= 0)
			return 0;
		buffer[size] = 0;
		if (strstr (buffer, "\r\n\r\n") != NULL || size == (int) sizeof (buffer) - 1)
			break;
		nopoll_sleep (10000);
	}
	for (i = 0; i < size; i++)
		buffer[i] = (char) tolower ((unsigned char) buffer[i]);
	return strstr (buffer, "\r\nupgrade: websocket") != NULL;
}

/* The legacy protocol: read the request, answer, close. */
static void serve_http (int fd)
{
	char         request[2048];
	const char * body = "hello from the legacy server\n";
	char         answer[256];

	if (recv (fd, request, sizeof (request), 0) > 0) {
		sprintf (answer, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
			 (int) strlen (body), body);
		send (fd, answer, strlen (answer), 0);
	}
	close (fd);
}

int main (int argc, char ** argv)
{
	noPollCtx          * ctx;
	noPollConn         * nopoll_listener;
	noPollConn         * conn;
	struct sockaddr_in   address;
	socklen_t            length = sizeof (address);
	struct timeval       timeout;
	fd_set               readable;
	time_t               started = time (NULL);
	int                  listener_socket;
	int                  session;
	int                  on = 1;

	/* the application's own listener */
	listener_socket = socket (AF_INET, SOCK_STREAM, 0);
	setsockopt (listener_socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof (on));
	memset (&address, 0, sizeof (address));
	address.sin_family      = AF_INET;
	address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	address.sin_port        = htons (argc > 1 ? atoi (argv[1]) : 0);
	if (bind (listener_socket, (struct sockaddr *) &address, sizeof (address)) != 0 ||
	    listen (listener_socket, 16) != 0 ||
	    getsockname (listener_socket, (struct sockaddr *) &address, &length) != 0) {
		printf ("ERROR: unable to listen\n");
		return 1;
	}
	printf ("LISTENING: %d\n", ntohs (address.sin_port));
	fflush (stdout);

	ctx = nopoll_ctx_new ();
	nopoll_ctx_set_on_msg (ctx, on_message, NULL);

	/* a listener object for the accepted WebSocket connections, as in
	 * upstream's port sharing documentation */
	nopoll_listener = nopoll_listener_from_socket (ctx, listener_socket);

	while (running && time (NULL) - started < 30) {
		/* the application's accept loop: wait up to 10 ms */
		FD_ZERO (&readable);
		FD_SET (listener_socket, &readable);
		timeout.tv_sec  = 0;
		timeout.tv_usec = 10000;
		if (select (listener_socket + 1, &readable, NULL, NULL, &timeout) > 0) {
			session = accept (listener_socket, NULL, NULL);
			if (session >= 0) {
				if (! is_websocket (session)) {
					printf ("HTTP: served\n");
					fflush (stdout);
					serve_http (session);
				} else {
					conn = nopoll_listener_from_socket (ctx, session);
					if (! nopoll_conn_is_ok (conn)) {
						printf ("ERROR: nopoll_listener_from_socket failed\n");
						nopoll_conn_close (conn);
						close (session);
					} else if (! nopoll_conn_accept_complete (ctx, nopoll_listener, conn, session, nopoll_false)) {
						printf ("ERROR: nopoll_conn_accept_complete failed\n");
						nopoll_conn_close (conn);
					} else {
						printf ("WEBSOCKET: handed to nopoll\n");
					}
					fflush (stdout);
				}
			}
		}

		/* let nopoll serve its connections for up to 10 ms */
		nopoll_loop_wait (ctx, 10000);
	}
	printf ("STOPPED: %s\n", running ? "timeout" : "quit");

	/* close the listener object (and with it the listening socket) */
	nopoll_conn_close (nopoll_listener);
	nopoll_ctx_unref (ctx);
	return running ? 1 : 0;
}
