/*
 * fidelity: what upstream nopoll programs (its regression client and
 * listener) do, and what they expect back (issue 17):
 *
 * - subprotocols: a server answering a subprotocol the client did not
 *   offer ("hello-protocol" offered, "hello-protocol-response" answered,
 *   as upstream's listener does from on_open) is accepted with a warning
 *   in the log; nopoll_conn_get_accepted_protocol says what it answered.
 *   Against a raw server and against a nopoll listener;
 * - close codes: nopoll_conn_close_ext sends the application's code and
 *   reason verbatim for 1000-4999 (1004, 1012, 1048, 2000, ... included)
 *   but 1005, 1006 and 1015, which never go on the wire (an empty close
 *   frame goes instead); a reason longer than a close frame holds, or not
 *   UTF-8, is cut to what fits (upstream sends it whole: peers fail the
 *   connection); a peer's close with a code that must be rejected
 *   (upstream's listener closes with 1048) is answered with 1002, and
 *   nopoll_conn_get_close_status / _get_close_reason still report what
 *   the peer sent;
 * - fragments: a listener's nopoll_conn_send_text_fragment /
 *   _binary_fragment followed by a final send put continuation opcodes on
 *   the wire after the first frame; a client sending every fragment with
 *   the message's opcode (upstream's way) gets 1002 and a log line naming
 *   nopoll_ctx_set_legacy_fragments, which, once set, makes the listener
 *   take those frames as continuations.
 */
#include "check.h"

static noPollCtx * ctx;
static int lfd;
static char port[16];
static char head[4096];

/* ------------------------------------------------------------ log capture */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];

static void log_handler (noPollCtx * c, noPollDebugLevel level, const char * log_msg, noPollPtr user_data)
{
	size_t have, add;
	(void) c;
	(void) level;
	(void) user_data;
	pthread_mutex_lock (&log_lock);
	have = strlen (log_text);
	add = strlen (log_msg);
	if (have + add + 2 < sizeof (log_text)) {
		memcpy (log_text + have, log_msg, add);
		log_text[have + add] = '\n';
		log_text[have + add + 1] = '\0';
	}
	pthread_mutex_unlock (&log_lock);
}

static void log_clear (void)
{
	pthread_mutex_lock (&log_lock);
	log_text[0] = '\0';
	pthread_mutex_unlock (&log_lock);
}

/* Waits (bounded) for a log line containing `what`. */
static int log_has (const char * what, long timeout_ms)
{
	double end = now_ms () + (double) timeout_ms;
	int found;
	for (;;) {
		pthread_mutex_lock (&log_lock);
		found = strstr (log_text, what) != NULL;
		pthread_mutex_unlock (&log_lock);
		if (found || now_ms () > end)
			return found;
		sleep_ms (1);
	}
}

/* ------------------------------------------------------------ listener */

static noPollCtx * lctx;
static noPollConn * listener;
static char lport[16];
static LoopThread lt;

static char got_msg[256];
static int got_opcode = -1;
static int got_msgs = 0;

/* As upstream's regression listener: answers "hello-protocol" with
 * "hello-protocol-response". */
static nopoll_bool on_open (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	const char * p = nopoll_conn_get_requested_protocol (conn);
	(void) c;
	(void) user_data;
	if (p != NULL && nopoll_cmp (p, "hello-protocol"))
		nopoll_conn_set_accepted_protocol (conn, "hello-protocol-response");
	return nopoll_true;
}

static void on_msg (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * text = (const char *) nopoll_msg_get_payload (msg);
	int size = nopoll_msg_get_payload_size (msg);
	(void) c;
	(void) user_data;
	if (size == 17 && memcmp (text, "close with reason", 17) == 0) {
		/* upstream's listener does exactly this */
		nopoll_conn_close_ext (conn, 1048, "Hey, this is a very reasonable error message", 44);
		return;
	}
	if (size == 11 && memcmp (text, "fragment me", 11) == 0) {
		CHECK_INT (nopoll_conn_send_text_fragment (conn, "one ", 4), 4);
		CHECK_INT (nopoll_conn_send_text_fragment (conn, "two ", 4), 4);
		CHECK_INT (nopoll_conn_send_text (conn, "three", 5), 5);
		CHECK_INT (nopoll_conn_send_binary_fragment (conn, "\001\002", 2), 2);
		CHECK_INT (nopoll_conn_send_binary (conn, "\003", 1), 1);
		return;
	}
	pthread_mutex_lock (&log_lock);
	if (size >= 0 && size < (int) sizeof (got_msg)) {
		memcpy (got_msg, text, (size_t) size);
		got_msg[size] = '\0';
	}
	got_opcode = nopoll_msg_opcode (msg);
	pthread_mutex_unlock (&log_lock);
	shared_add (&got_msgs, 1);
}

/* ------------------------------------------------------------ subprotocols */

static void subprotocols (void)
{
	noPollConn * conn;
	RawFrame f;
	unsigned char buf[256];
	int sfd;

	note ("a raw server answers a subprotocol that was not offered");
	log_clear ();
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", "hello-protocol", NULL);
	CHECK (conn != NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0);
	CHECK (raw_server_handshake (sfd, head, sizeof (head), "Sec-WebSocket-Protocol: hello-protocol-response\r\n"));
	CHECK (strstr (head, "\r\nSec-WebSocket-Protocol: hello-protocol\r\n") != NULL);
	CHECK (client_ready (conn));
	CHECK (nopoll_conn_is_ok (conn));
	CHECK_STR (nopoll_conn_get_accepted_protocol (conn), "hello-protocol-response");
	CHECK (log_has ("not offered", 1000));
	/* and the connection works */
	CHECK_INT (nopoll_conn_send_text (conn, "after", 5), 5);
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK (f.opcode == 1 && f.len == 5 && memcmp (buf, "after", 5) == 0);
	nopoll_conn_close (conn);
	close (sfd);

	note ("... and when none was offered");
	log_clear ();
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", NULL, NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (raw_server_handshake (sfd, head, sizeof (head), "Sec-WebSocket-Protocol: chat\r\n"));
	CHECK (client_ready (conn));
	CHECK_STR (nopoll_conn_get_accepted_protocol (conn), "chat");
	CHECK (log_has ("not offered", 1000));
	nopoll_conn_close (conn);
	close (sfd);

	note ("an offered subprotocol answered: no warning");
	log_clear ();
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", "a, b", NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (raw_server_handshake (sfd, head, sizeof (head), "Sec-WebSocket-Protocol: b\r\n"));
	CHECK (client_ready (conn));
	CHECK_STR (nopoll_conn_get_accepted_protocol (conn), "b");
	CHECK (! log_has ("not offered", 0));
	nopoll_conn_close (conn);
	close (sfd);

	note ("a nopoll listener answering hello-protocol-response (upstream's listener)");
	conn = nopoll_conn_new (ctx, "127.0.0.1", lport, NULL, "/", "hello-protocol", NULL);
	CHECK (client_ready (conn));
	CHECK_STR (nopoll_conn_get_accepted_protocol (conn), "hello-protocol-response");
	nopoll_conn_close (conn);
}

/* ------------------------------------------------------------ close codes */

/* Closes a fresh client with close_ext (code, reason) and returns what the
 * raw server read: the status (1005 for an empty close frame); the reason
 * into `reason`. */
static int close_on_the_wire (int code, const char * reason, char * got_reason, int cap)
{
	noPollConn * conn;
	RawFrame f;
	unsigned char buf[256];
	int sfd, status = -1;
	got_reason[0] = '\0';
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", NULL, NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0 && raw_server_handshake (sfd, head, sizeof (head), NULL));
	CHECK (client_ready (conn));
	nopoll_conn_close_ext (conn, code, reason, reason ? (int) strlen (reason) : 0);
	if (raw_read_frame (sfd, &f, buf, sizeof (buf))) {
		status = raw_close_status (&f, buf);
		if (f.len > 2 && f.len - 2 < cap) {
			memcpy (got_reason, buf + 2, (size_t) (f.len - 2));
			got_reason[f.len - 2] = '\0';
		}
		if (status == 1005)
			CHECK_INT (f.len, 0);
	}
	close (sfd);
	return status;
}

/* A raw server closes with `payload` (code + reason); the nopoll client
 * answers 1002 and reports the peer's code and reason. */
static void peer_closes_with (int code, const char * reason)
{
	noPollConn * conn;
	RawFrame f;
	unsigned char payload[64], buf[256];
	long len = 2 + (long) strlen (reason);
	int sfd;
	conn = nopoll_conn_new (ctx, "127.0.0.1", port, NULL, "/", NULL, NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0 && raw_server_handshake (sfd, head, sizeof (head), NULL));
	CHECK (client_ready (conn));
	payload[0] = (unsigned char) (code >> 8);
	payload[1] = (unsigned char) (code & 0xff);
	memcpy (payload + 2, reason, strlen (reason));
	CHECK (raw_send_frame (sfd, 1, 8, 0, payload, len));
	CHECK (wait_msg (conn, scaled (5000, 30000)) == NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	/* our answer: a protocol error */
	CHECK (raw_read_frame (sfd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1002);
	/* what the peer said */
	CHECK_INT (nopoll_conn_get_close_status (conn), code);
	if (reason[0] != '\0')
		CHECK_STR (nopoll_conn_get_close_reason (conn), reason);
	else
		CHECK (nopoll_conn_get_close_reason (conn) == NULL);
	nopoll_conn_close (conn);
	close (sfd);
}

static void close_codes (void)
{
	static const int verbatim[] = { 1000, 1001, 1003, 1004, 1011, 1012, 1016, 1048, 2000, 2999, 3000, 4999 };
	static const int never[] = { 1005, 1006, 1015, 999, 5000, 65535 + 1001 };
	char reason[128];
	noPollConn * conn;
	unsigned i;

	note ("close_ext sends the application's code and reason verbatim");
	for (i = 0; i < sizeof (verbatim) / sizeof (verbatim[0]); i++) {
		CHECK_INT (close_on_the_wire (verbatim[i], "bye", reason, sizeof (reason)), verbatim[i]);
		CHECK_STR (reason, "bye");
	}
	note ("a reason beyond 123 bytes or UTF-8 is cut there; the code still goes");
	{
		char lng[201];
		memset (lng, 'x', 200);
		lng[200] = '\0';
		CHECK_INT (close_on_the_wire (4000, lng, reason, sizeof (reason)), 4000);
		CHECK_INT ((int) strlen (reason), 123);
		CHECK (reason[0] == 'x' && reason[122] == 'x');
		CHECK_INT (close_on_the_wire (4001, "ok\377zz", reason, sizeof (reason)), 4001);
		CHECK_STR (reason, "ok");
	}
	note ("1005, 1006, 1015 and codes outside 1000-4999 never go on the wire");
	for (i = 0; i < sizeof (never) / sizeof (never[0]); i++) {
		CHECK_INT (close_on_the_wire (never[i], "bye", reason, sizeof (reason)), 1005);
		CHECK_STR (reason, "");
	}

	note ("a peer closing with a code we reject: 1002 back, its code reported");
	peer_closes_with (1004, "odd");
	peer_closes_with (1048, "upstream listener");
	peer_closes_with (5000, "");
	peer_closes_with (999, "low");

	note ("upstream's listener closes with 1048 and a reason");
	conn = nopoll_conn_new (ctx, "127.0.0.1", lport, NULL, "/", NULL, NULL);
	CHECK (client_ready (conn));
	CHECK_INT (nopoll_conn_send_text (conn, "close with reason", 17), 17);
	CHECK (wait_msg (conn, scaled (5000, 30000)) == NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (nopoll_conn_get_close_status (conn), 1048);
	CHECK_STR (nopoll_conn_get_close_reason (conn), "Hey, this is a very reasonable error message");
	nopoll_conn_close (conn);
}

/* ------------------------------------------------------------ fragments */

/* A raw client connected to the listener. */
static int raw_client (void)
{
	int fd = raw_connect (lport);
	CHECK (fd >= 0);
	CHECK (raw_client_handshake (fd, lport, "/", NULL));
	return fd;
}

/* Waits for the listener's n-th message and checks it. */
static void expect_msg (int n, const char * text, int opcode)
{
	CHECK (wait_for (&got_msgs, n, scaled (5000, 30000)));
	pthread_mutex_lock (&log_lock);
	CHECK_STR (got_msg, text);
	CHECK_INT (got_opcode, opcode);
	pthread_mutex_unlock (&log_lock);
}

static void fragments (void)
{
	RawFrame f;
	unsigned char buf[256];
	int fd;

	note ("a listener's fragments: continuation opcodes after the first frame");
	fd = raw_client ();
	CHECK (raw_send_frame (fd, 1, 1, 1, "fragment me", 11));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (! f.fin && f.opcode == 1 && f.len == 4 && memcmp (buf, "one ", 4) == 0);
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (! f.fin && f.opcode == 0 && f.len == 4 && memcmp (buf, "two ", 4) == 0);
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 0 && f.len == 5 && memcmp (buf, "three", 5) == 0);
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (! f.fin && f.opcode == 2 && f.len == 2);
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK (f.fin && f.opcode == 0 && f.len == 1 && buf[0] == 3);
	close (fd);

	note ("upstream's fragments (the opcode repeated) get 1002 and a log line naming the switch");
	log_clear ();
	shared_set (&got_msgs, 0);
	fd = raw_client ();
	CHECK (raw_send_frame (fd, 0, 1, 1, "ab", 2));
	CHECK (raw_send_frame (fd, 1, 1, 1, "cd", 2));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1002);
	CHECK (log_has ("nopoll_ctx_set_legacy_fragments", scaled (2000, 20000)));
	CHECK_INT (shared_get (&got_msgs), 0);
	close (fd);

	note ("with nopoll_ctx_set_legacy_fragments they continue the message");
	nopoll_ctx_set_legacy_fragments (lctx, nopoll_true);
	fd = raw_client ();
	CHECK (raw_send_frame (fd, 0, 1, 1, "ab", 2));
	CHECK (raw_send_frame (fd, 0, 1, 1, "cd", 2));
	CHECK (raw_send_frame (fd, 1, 1, 1, "ef", 2));
	expect_msg (1, "abcdef", NOPOLL_TEXT_FRAME);
	/* binary the same way, and RFC 6455 continuations still work */
	CHECK (raw_send_frame (fd, 0, 2, 1, "gh", 2));
	CHECK (raw_send_frame (fd, 1, 2, 1, "ij", 2));
	expect_msg (2, "ghij", NOPOLL_BINARY_FRAME);
	CHECK (raw_send_frame (fd, 0, 1, 1, "kl", 2));
	CHECK (raw_send_frame (fd, 1, 0, 1, "mn", 2));
	expect_msg (3, "klmn", NOPOLL_TEXT_FRAME);
	/* a continuation without a message is still an error */
	CHECK (raw_send_frame (fd, 1, 0, 1, "op", 2));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (raw_close_status (&f, buf), 1002);
	close (fd);
	nopoll_ctx_set_legacy_fragments (lctx, nopoll_false);
	nopoll_ctx_set_legacy_fragments (NULL, nopoll_true);
}

int main (void)
{
	int p;
	check_init ("fidelity", 60);
	ctx = nopoll_ctx_new ();
	lctx = nopoll_ctx_new ();
	lfd = raw_listen (16, &p);
	CHECK (ctx != NULL && lctx != NULL && lfd >= 0);
	sprintf (port, "%d", p);
	nopoll_log_set_handler (ctx, log_handler, NULL);
	nopoll_log_set_handler (lctx, log_handler, NULL);
	nopoll_ctx_set_on_open (lctx, on_open, NULL);
	nopoll_ctx_set_on_msg (lctx, on_msg, NULL);
	listener = nopoll_listener_new (lctx, "127.0.0.1", "0");
	CHECK (listener != NULL);
	strcpy (lport, nopoll_conn_port (listener));
	CHECK (loop_thread_start (&lt, lctx));

	subprotocols ();
	close_codes ();
	fragments ();

	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	CHECK_INT (nopoll_ctx_conns (ctx), 0);
	nopoll_ctx_unref (ctx);
	nopoll_ctx_unref (lctx);
	close (lfd);
	return check_done ();
}
