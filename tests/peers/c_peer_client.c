/* c_peer_client: nopoll client side of the interop tests (tests/peers/).
 *
 *   c_peer_client PORT PATH echo
 *       Echoes every message (text as text, binary as binary) until the
 *       server closes, then prints "closed STATUS REASON".
 *   c_peer_client PORT PATH script CODE REASON
 *       Sends a fixed sequence and checks each echo: text, binary, a text
 *       and a binary message in three fragments each, 1 MiB binary, 1 MiB
 *       text, a ping (then one more text to prove the connection is fine),
 *       and finally closes with nopoll_conn_close_ext (CODE, REASON).
 *       Prints "ok NAME" / "FAIL NAME ..." per step and "done FAILURES".
 *   c_peer_client PORT PATH close CODE REASON
 *       One text message and its echo, then nopoll_conn_close_ext (CODE, REASON).
 *
 * PEER_DEFLATE=1 offers permessage-deflate (RFC 7692) and prints
 * "deflate 1" (negotiated) or "deflate 0" after the handshake.
 *
 * Connects to 127.0.0.1 only. Every wait is bounded (30 s); the exit status
 * is 0 when every step passed. Uses only the nopoll client API. */
#include <nopoll.h>

#define WAIT_SECONDS 30
#define BIG (1024L * 1024L)

static noPollCtx * ctx;
static int         failures;

/* Sends; a short send leaves the rest pending: flush it. */
static int send_all (noPollConn * conn, int binary, int fin, const char * data, long size)
{
	int n;
	if (binary)
		n = fin ? nopoll_conn_send_binary (conn, data, size)
			: nopoll_conn_send_binary_fragment (conn, data, size);
	else
		n = fin ? nopoll_conn_send_text (conn, data, size)
			: nopoll_conn_send_text_fragment (conn, data, size);
	if (n == -1)
		return 0;
	if (n < size || nopoll_conn_pending_write_bytes (conn) > 0)
		nopoll_conn_flush_writes (conn, WAIT_SECONDS * 1000000L, n > 0 ? n : 0);
	return nopoll_conn_pending_write_bytes (conn) == 0;
}

/* Next message within WAIT_SECONDS (NULL on close or timeout). */
static noPollMsg * next_msg (noPollConn * conn)
{
	long waited = 0;
	while (nopoll_conn_is_ok (conn) && waited < WAIT_SECONDS * 10000L) {
		noPollMsg * msg = nopoll_conn_get_msg (conn);
		if (msg != NULL)
			return msg;
		nopoll_sleep (100);
		waited++;
	}
	return nopoll_conn_get_msg (conn);  /* may have arrived with the close */
}

static void check_echo (noPollConn * conn, const char * name, int binary, const char * data, long size)
{
	noPollMsg * msg = next_msg (conn);
	int         want = binary ? NOPOLL_BINARY_FRAME : NOPOLL_TEXT_FRAME;
	if (msg == NULL) {
		printf ("FAIL %s: no echo\n", name);
		failures++;
	} else if (nopoll_msg_opcode (msg) != want || nopoll_msg_get_payload_size (msg) != size
		   || (size > 0 && memcmp (nopoll_msg_get_payload (msg), data, (size_t) size) != 0)) {
		printf ("FAIL %s: echo differs (opcode %d, %ld bytes)\n", name,
			(int) nopoll_msg_opcode (msg), nopoll_msg_get_payload_size (msg));
		failures++;
	} else {
		printf ("ok %s\n", name);
	}
	if (msg != NULL)
		nopoll_msg_unref (msg);
	fflush (stdout);
}

static void step (noPollConn * conn, const char * name, int binary, const char * data, long size)
{
	if (! send_all (conn, binary, 1, data, size)) {
		printf ("FAIL %s: send\n", name);
		failures++;
		return;
	}
	check_echo (conn, name, binary, data, size);
}

static void fragmented (noPollConn * conn, const char * name, int binary)
{
	const char * parts[3] = { "frag-one|", "frag-two|", "frag-three" };
	const char * whole = "frag-one|frag-two|frag-three";
	int          i, ok = 1;
	for (i = 0; i < 3; i++)
		ok = ok && send_all (conn, binary, i == 2, parts[i], (long) strlen (parts[i]));
	if (! ok) {
		printf ("FAIL %s: send\n", name);
		failures++;
		return;
	}
	check_echo (conn, name, binary, whole, (long) strlen (whole));
}

static int run_echo (noPollConn * conn)
{
	const char * reason;
	while (nopoll_conn_is_ok (conn)) {
		noPollMsg * msg = next_msg (conn);
		const char * p;
		if (msg == NULL)
			break;
		p = (const char *) nopoll_msg_get_payload (msg);
		if (p == NULL)
			p = "";
		if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
			send_all (conn, 1, 1, p, nopoll_msg_get_payload_size (msg));
		else
			send_all (conn, 0, 1, p, nopoll_msg_get_payload_size (msg));
		nopoll_msg_unref (msg);
	}
	reason = nopoll_conn_get_close_reason (conn);
	printf ("closed %d %s\n", nopoll_conn_get_close_status (conn), reason ? reason : "");
	fflush (stdout);
	return 0;
}

static int run_script (noPollConn * conn, int full, int code, const char * reason)
{
	char * big;
	long   i;

	if (! full) {
		step (conn, "text", 0, "hello from nopoll", 17);
		goto close;
	}
	big = malloc ((size_t) BIG);
	if (big == NULL)
		return 1;

	step (conn, "text", 0, "hello from nopoll", 17);
	for (i = 0; i < 256; i++)
		big[i] = (char) i;
	step (conn, "binary", 1, big, 256);
	fragmented (conn, "fragmented-text", 0);
	fragmented (conn, "fragmented-binary", 1);
	for (i = 0; i < BIG; i++)
		big[i] = (char) ((i * 31 + 7) & 0xff);
	step (conn, "binary-1MiB", 1, big, BIG);
	for (i = 0; i < BIG; i++)
		big[i] = (char) ('a' + i % 26);
	step (conn, "text-1MiB", 0, big, BIG);
	free (big);

	if (nopoll_conn_send_ping (conn)) {
		printf ("ok ping-sent\n");
	} else {
		printf ("FAIL ping-sent\n");
		failures++;
	}
	step (conn, "text-after-ping", 0, "still here", 10);

close:
	nopoll_conn_close_ext (conn, code, reason, (int) strlen (reason));
	printf ("done %d\n", failures);
	fflush (stdout);
	return failures ? 1 : 0;
}

int main (int argc, char ** argv)
{
	noPollConn * conn;
	int          rc;

	if (argc < 4 || (strcmp (argv[3], "echo") != 0 && argc < 6)) {
		fprintf (stderr, "usage: c_peer_client PORT PATH echo | PORT PATH script|close CODE REASON\n");
		return 2;
	}
	ctx = nopoll_ctx_new ();
	nopoll_ctx_set_max_frame_size (ctx, 4L * BIG);
	if (getenv ("PEER_DEFLATE") != NULL && strcmp (getenv ("PEER_DEFLATE"), "1") == 0) {
		noPollConnOpts * opts = nopoll_conn_opts_new ();
		nopoll_conn_opts_set_permessage_deflate (opts, nopoll_true, nopoll_false);
		conn = nopoll_conn_new_opts (ctx, opts, "127.0.0.1", argv[1], NULL, argv[2], NULL, NULL);
	} else {
		conn = nopoll_conn_new (ctx, "127.0.0.1", argv[1], NULL, argv[2], NULL, NULL);
	}
	if (! nopoll_conn_is_ok (conn)) {
		printf ("FAIL connect\n");
		return 1;
	}
	if (! nopoll_conn_wait_until_connection_ready (conn, WAIT_SECONDS)) {
		/* in echo mode the server may greet and close at once */
		if (strcmp (argv[3], "echo") != 0) {
			printf ("FAIL handshake\n");
			return 1;
		}
	}
	if (getenv ("PEER_DEFLATE") != NULL)
		printf ("deflate %d\n", nopoll_conn_is_permessage_deflate (conn) ? 1 : 0);
	printf ("ready\n");
	fflush (stdout);
	if (strcmp (argv[3], "echo") == 0) {
		rc = run_echo (conn);
		nopoll_conn_close (conn);
	} else {
		rc = run_script (conn, strcmp (argv[3], "script") == 0, atoi (argv[4]), argv[5]);
	}
	nopoll_ctx_unref (ctx);
	return rc;
}
