/*
 * bad_input: what a listener does with broken peers (raw sockets), and
 * that it keeps serving normal clients afterwards.
 *
 * - garbage instead of a handshake: HTTP/1.1 400, logged through the
 *   nopoll_log_set_handler callback; a plain HTTP GET: 400; a wrong
 *   Sec-WebSocket-Version: 426;
 * - a frame above nopoll_ctx_set_max_frame_size: close frame 1009;
 *   an unmasked client frame: 1002; invalid UTF-8 in a text message: 1007
 *   (also split across fragments); reserved opcode, oversized ping,
 *   invalid close code: 1002;
 * - close status and reason as the server records them (on_close):
 *   code + reason, empty close frame (1005), peer vanished (1006); the
 *   server answers a close with a close;
 * - after each, a normal nopoll client on the same listener still works.
 */
#include "check.h"

static noPollCtx * sctx;
static noPollCtx * cctx;
static char port[16];

static int log_lines = 0;
static int log_warnings = 0;
static int closes = 0;
static int close_status = 0;
static char close_reason[64];

static void log_handler (noPollCtx * ctx, noPollDebugLevel level, const char * log_msg, noPollPtr user_data)
{
	(void) user_data;
	CHECK (ctx == sctx);
	CHECK (log_msg != NULL && log_msg[0] != '\0');
	shared_add (&log_lines, 1);
	if (level != NOPOLL_LEVEL_DEBUG)
		shared_add (&log_warnings, 1);
}

static void on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	const char * r = nopoll_conn_get_close_reason (conn);
	(void) ctx;
	(void) user_data;
	pthread_mutex_lock (&shared_lock);
	close_status = nopoll_conn_get_close_status (conn);
	strncpy (close_reason, r ? r : "(null)", sizeof (close_reason) - 1);
	close_reason[sizeof (close_reason) - 1] = '\0';
	closes++;
	pthread_mutex_unlock (&shared_lock);
}

static nopoll_bool on_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	nopoll_conn_set_on_close (conn, on_close, NULL);
	return nopoll_true;
}

static void on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * text = (const char *) nopoll_msg_get_payload (msg);
	(void) ctx;
	(void) user_data;
	nopoll_conn_send_text (conn, text ? text : "", nopoll_msg_get_payload_size (msg));
}

/* A normal client still gets an echo. */
static int normal_client_works (void)
{
	noPollConn * conn = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	noPollMsg * msg;
	int ok = 0;
	if (client_ready (conn) && nopoll_conn_send_text (conn, "normal", 6) == 6) {
		msg = wait_msg (conn, scaled (5000, 30000));
		ok = msg != NULL && strcmp ((const char *) nopoll_msg_get_payload (msg), "normal") == 0;
		if (msg)
			nopoll_msg_unref (msg);
	}
	nopoll_conn_close (conn);
	return ok;
}

/* Sends `data` on a new raw connection and returns what comes back
 * until the server closes (in buf). */
static int raw_exchange (const char * data, char * buf, int cap)
{
	int fd = raw_connect (port);
	int n;
	if (fd < 0)
		return -1;
	raw_send_all (fd, data, (long) strlen (data));
	n = raw_read_to_eof (fd, buf, cap);
	close (fd);
	return n;
}

static void bad_handshakes (void)
{
	char buf[2048];
	char v[64];
	char req[512];
	int before;
	note ("garbage instead of a handshake");
	before = shared_get (&log_warnings);
	CHECK (raw_exchange ("GARBAGE GARBAGE GARBAGE\r\n\r\n", buf, sizeof (buf)) > 0);
	CHECK (strncmp (buf, "HTTP/1.1 400", 12) == 0);
	CHECK (shared_get (&log_warnings) > before);
	CHECK (normal_client_works ());

	note ("binary garbage");
	{
		char junk[300];
		int i;
		for (i = 0; i < (int) sizeof (junk) - 1; i++)
			junk[i] = (char) (1 + (i * 37) % 250);
		memcpy (junk + sizeof (junk) - 5, "\r\n\r\n", 5);
		CHECK (raw_exchange (junk, buf, sizeof (buf)) > 0);
		CHECK (strncmp (buf, "HTTP/1.1 4", 10) == 0);
	}
	CHECK (normal_client_works ());

	note ("a plain HTTP request");
	sprintf (req, "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n", port);
	CHECK (raw_exchange (req, buf, sizeof (buf)) > 0);
	CHECK (strncmp (buf, "HTTP/1.1 400", 12) == 0);
	CHECK (normal_client_works ());

	note ("a wrong Sec-WebSocket-Version");
	sprintf (req, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Key: " RAW_KEY "\r\nSec-WebSocket-Version: 7\r\n\r\n", port);
	CHECK (raw_exchange (req, buf, sizeof (buf)) > 0);
	CHECK (strncmp (buf, "HTTP/1.1 426", 12) == 0);
	CHECK (raw_header (buf, "Sec-WebSocket-Version", v, sizeof (v)) && strcmp (v, "13") == 0);
	CHECK (normal_client_works ());
}

/* Opens a raw client, sends `frames` after the handshake and expects a
 * close frame with `status`, then the end of the connection. */
static void expect_close (const char * what, const unsigned char * frames, long len, int status)
{
	unsigned char buf[4096];
	RawFrame f;
	int fd = raw_connect (port);
	int got_close = 0, frames_read = 0;
	note (what);
	CHECK (fd >= 0);
	CHECK (raw_client_handshake (fd, port, "/bad", NULL));
	CHECK (raw_send_all (fd, frames, len));
	/* skip anything before the close frame (echoes) */
	while (frames_read < 10 && raw_read_frame (fd, &f, buf, sizeof (buf))) {
		frames_read++;
		if (f.opcode == 8) {
			got_close = 1;
			CHECK (! f.masked);
			CHECK_INT (raw_close_status (&f, buf), status);
			break;
		}
	}
	CHECK (got_close);
	/* then the server closes the TCP connection */
	CHECK_INT (raw_read_to_eof (fd, (char *) buf, sizeof (buf)), 0);
	close (fd);
	CHECK (normal_client_works ());
}

static void bad_frames (void)
{
	static unsigned char frames[8192];
	unsigned char big[2000];
	long n;
	memset (big, 'x', sizeof (big));

	note ("a frame of exactly the max frame size is accepted");
	{
		unsigned char echo[2048];
		RawFrame f;
		int fd = raw_connect (port);
		CHECK (raw_client_handshake (fd, port, "/", NULL));
		CHECK (raw_send_frame (fd, 1, 1, 1, big, 1024));
		CHECK (raw_read_frame (fd, &f, echo, sizeof (echo)));
		CHECK (f.opcode == 1 && f.len == 1024 && echo[1023] == 'x');
		close (fd);
	}
	n = raw_frame (frames, 1, 1, 1, big, 1025);
	expect_close ("a frame one byte above the max frame size: 1009", frames, n, 1009);
	n = raw_frame (frames, 1, 2, 1, big, sizeof (big));
	expect_close ("frame above the max frame size: 1009", frames, n, 1009);

	n = raw_frame (frames, 1, 1, 0, "unmasked", 8);
	expect_close ("unmasked client frame: 1002", frames, n, 1002);

	n = raw_frame (frames, 1, 1, 1, "bad \xff\xfe utf8", 12);
	expect_close ("invalid UTF-8 text: 1007", frames, n, 1007);

	/* a 4-byte sequence split over two fragments is fine... */
	n = raw_frame (frames, 0, 1, 1, "ok \xf0\x9f", 5);
	n += raw_frame (frames + n, 1, 0, 1, "\x98\x80!", 3);
	/* ...but a truncated one at the end of the message is not */
	n += raw_frame (frames + n, 0, 1, 1, "bad \xf0\x9f", 6);
	n += raw_frame (frames + n, 1, 0, 1, "\x98", 1);
	expect_close ("invalid UTF-8 across fragments: 1007", frames, n, 1007);

	n = raw_frame (frames, 1, 3, 1, "x", 1);
	expect_close ("reserved opcode: 1002", frames, n, 1002);

	n = raw_frame (frames, 1, 9, 1, big, 126);
	expect_close ("control frame above 125 bytes: 1002", frames, n, 1002);

	n = raw_frame (frames, 1, 8, 1, "\x03\xe7", 2);
	expect_close ("invalid close code 999: 1002", frames, n, 1002);

	n = raw_frame (frames, 1, 0, 1, "orphan", 6);
	expect_close ("continuation without a message: 1002", frames, n, 1002);
}

/* Waits until the server only has its listener left. */
static int server_idle (void)
{
	return wait_ctx_conns (sctx, 1);
}

static void close_statuses (void)
{
	unsigned char buf[256];
	char reason[64];
	RawFrame f;
	int fd;
	note ("the server records the client's close: status and reason");
	CHECK (server_idle ());
	shared_set (&closes, 0);
	fd = raw_connect (port);
	CHECK (raw_client_handshake (fd, port, "/", NULL));
	CHECK (raw_send_frame (fd, 1, 8, 1, "\x03\xe9going away", 12));
	/* answered with a close frame */
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (f.opcode, 8);
	CHECK (wait_for (&closes, 1, scaled (5000, 30000)));
	CHECK_INT (shared_get (&close_status), 1001);
	pthread_mutex_lock (&shared_lock);
	strcpy (reason, close_reason);
	pthread_mutex_unlock (&shared_lock);
	CHECK_STR (reason, "going away");
	close (fd);

	note ("empty close frame: 1005");
	CHECK (server_idle ());
	fd = raw_connect (port);
	CHECK (raw_client_handshake (fd, port, "/", NULL));
	CHECK (raw_send_frame (fd, 1, 8, 1, "", 0));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	CHECK_INT (f.opcode, 8);
	CHECK (wait_for (&closes, 2, scaled (5000, 30000)));
	CHECK_INT (shared_get (&close_status), 1005);
	pthread_mutex_lock (&shared_lock);
	strcpy (reason, close_reason);
	pthread_mutex_unlock (&shared_lock);
	CHECK_STR (reason, "(null)");
	close (fd);

	note ("peer vanished: 1006");
	CHECK (server_idle ());
	fd = raw_connect (port);
	CHECK (raw_client_handshake (fd, port, "/", NULL));
	CHECK (raw_send_frame (fd, 1, 1, 1, "hi", 2));
	CHECK (raw_read_frame (fd, &f, buf, sizeof (buf)));
	close (fd);
	CHECK (wait_for (&closes, 3, scaled (5000, 30000)));
	CHECK_INT (shared_get (&close_status), 1006);
	CHECK (normal_client_works ());
}

int main (void)
{
	LoopThread lt;
	noPollConn * listener;
	check_init ("bad_input", 60);
	sctx = nopoll_ctx_new ();
	cctx = nopoll_ctx_new ();
	nopoll_ctx_set_max_frame_size (sctx, 1024);
	nopoll_ctx_set_on_msg (sctx, on_msg, NULL);
	nopoll_ctx_set_on_ready (sctx, on_ready, NULL);
	nopoll_log_set_handler (sctx, log_handler, NULL);
	listener = nopoll_listener_new (sctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (listener));
	strcpy (port, nopoll_conn_port (listener));
	CHECK (loop_thread_start (&lt, sctx));

	bad_handshakes ();
	bad_frames ();
	close_statuses ();

	CHECK_INT (loop_thread_stop (&lt), 0);
	CHECK (shared_get (&log_lines) > 0);
	printf ("server log handler: %d lines, %d warnings or worse\n", shared_get (&log_lines), shared_get (&log_warnings));
	nopoll_conn_close (listener);
	nopoll_ctx_unref (cctx);
	nopoll_ctx_unref (sctx);
	return check_done ();
}
