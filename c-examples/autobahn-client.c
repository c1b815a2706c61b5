/* autobahn-client: the Autobahn|Testsuite client protocol over the nopoll
 * client API (used by conformance/run.sh against `wstest -m fuzzingserver`).
 *
 *   autobahn-client [URL [AGENT [CASE_COUNT]]]
 *
 *   URL         ws://127.0.0.1:9001 (default; also $AUTOBAHN_URL)
 *   AGENT       agent name in the reports (default "nopoll"; also $AUTOBAHN_AGENT)
 *   CASE_COUNT  skip /getCaseCount and run cases 1..CASE_COUNT
 *
 * AUTOBAHN_DEFLATE=1 offers permessage-deflate (RFC 7692) on every
 * connection (nopoll_conn_opts_set_permessage_deflate).
 *
 * Protocol: read N from URL/getCaseCount (one text message), then for
 * i = 1..N open URL/runCase?case=i&agent=AGENT and echo every message (text
 * as text, binary as binary) until the server closes, then open
 * URL/updateReports?agent=AGENT. Each connection is bounded in time
 * (CASE_SECONDS, 60 s; AUTOBAHN_CASE_SECONDS overrides it: the largest
 * permessage-deflate cases take longer), so the program always ends by
 * itself.
 *
 * Messages arrive whole (the library reassembles fragments); sends never
 * block: a short send leaves the rest pending, which nopoll_conn_flush_writes
 * pushes out (the loop would also flush it by itself). */
#include <nopoll.h>

static int case_seconds = 60;
#define MAX_FRAME (20L * 1024L * 1024L)

static char host[256] = "127.0.0.1";
static char port[16]  = "9001";

/* State of the one connection in flight. */
static int          closed;      /* on_close fired */
static int          echo_mode;   /* echo every message back */
static char         first_text[64]; /* first text message (getCaseCount) */
static int          got_text;
static long         echoed;
static int          send_errors;
static int          deflate;     /* offer permessage-deflate */

static int          tls; /* wss:// */

static int parse_url (const char * url)
{
	const char * p;
	const char * colon;
	const char * end;
	size_t       n;

	if (strncmp (url, "ws://", 5) == 0)
		p = url + 5;
	else if (strncmp (url, "wss://", 6) == 0) {
		tls = 1;
		p = url + 6;
	} else
		return 0;
	end = strchr (p, '/');
	if (end == NULL)
		end = p + strlen (p);
	colon = memchr (p, ':', (size_t) (end - p));
	if (colon == NULL) {
		n = (size_t) (end - p);
		if (n == 0 || n >= sizeof (host))
			return 0;
		memcpy (host, p, n);
		host[n] = 0;
		strcpy (port, tls ? "443" : "80");
		return 1;
	}
	n = (size_t) (colon - p);
	if (n == 0 || n >= sizeof (host) || (size_t) (end - colon - 1) >= sizeof (port) || end - colon - 1 == 0)
		return 0;
	memcpy (host, p, n);
	host[n] = 0;
	memcpy (port, colon + 1, (size_t) (end - colon - 1));
	port[end - colon - 1] = 0;
	return 1;
}

static void on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) conn;
	(void) user_data;
	closed = 1;
	nopoll_loop_stop (ctx);
}

static void on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * payload = (const char *) nopoll_msg_get_payload (msg);
	long         size    = nopoll_msg_get_payload_size (msg);
	int          sent;
	(void) ctx;
	(void) user_data;

	if (payload == NULL)
		payload = "";
	if (! echo_mode) {
		if (! got_text && nopoll_msg_opcode (msg) == NOPOLL_TEXT_FRAME) {
			size_t n = size < (long) sizeof (first_text) - 1 ? (size_t) size : sizeof (first_text) - 1;
			memcpy (first_text, payload, n);
			first_text[n] = 0;
			got_text = 1;
		}
		return;
	}
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		sent = nopoll_conn_send_binary (conn, payload, size);
	else
		sent = nopoll_conn_send_text (conn, payload, size);
	if (sent == -1) {
		/* the connection is closing (or failed): nothing to echo into */
		send_errors++;
		return;
	}
	if (sent < size || nopoll_conn_pending_write_bytes (conn) > 0)
		nopoll_conn_flush_writes (conn, 10L * 1000000L, sent > 0 ? sent : 0);
	echoed++;
}

/* Opens ws://host:port/path, runs the loop until the server closes (or
 * case_seconds pass). Returns 1 if the handshake succeeded. */
static int session (noPollCtx * ctx, const char * path, int echo)
{
	noPollConn * conn;
	int          waited = 0;

	closed = 0;
	echo_mode = echo;
	got_text = 0;
	first_text[0] = 0;

	if (tls || deflate) {
		noPollConnOpts * opts = nopoll_conn_opts_new ();
		if (deflate)
			nopoll_conn_opts_set_permessage_deflate (opts, nopoll_true, nopoll_false);
		if (tls) {
			/* wss://: the server verified against $AUTOBAHN_CA when set */
			const char * ca = getenv ("AUTOBAHN_CA");
			if (ca != NULL && *ca) {
				nopoll_conn_opts_set_ssl_certs (opts, NULL, NULL, NULL, ca);
				nopoll_conn_opts_ssl_peer_verify (opts, nopoll_true);
			}
			conn = nopoll_conn_tls_new (ctx, opts, host, port, NULL, path, NULL, NULL);
		} else
			conn = nopoll_conn_new_opts (ctx, opts, host, port, NULL, path, NULL, NULL);
	} else
		conn = nopoll_conn_new (ctx, host, port, NULL, path, NULL, NULL);
	if (! nopoll_conn_is_ok (conn)) {
		fprintf (stderr, "autobahn-client: cannot connect to %s:%s%s\n", host, port, path);
		if (conn != NULL)
			nopoll_conn_close (conn);
		return 0;
	}
	nopoll_conn_set_on_msg (conn, on_msg, NULL);
	nopoll_conn_set_on_close (conn, on_close, NULL);
	if (! nopoll_conn_wait_until_connection_ready (conn, 10)) {
		/* The 101 reply, messages and the server's close can arrive in one
		 * read (e.g. /getCaseCount): the messages were already handed to
		 * on_msg and on_close ran. Only a connection that never closed
		 * means the handshake did not complete in time. */
		int done = closed;
		if (! done)
			fprintf (stderr, "autobahn-client: handshake failed for %s\n", path);
		nopoll_conn_close (conn);
		return done;
	}
	/* Each loop_wait lasts at most 1 s; the on_close handler stops it early. */
	while (! closed && nopoll_conn_is_ok (conn) && waited < case_seconds) {
		nopoll_loop_wait (ctx, 1000000L);
		waited++;
	}
	if (waited >= case_seconds)
		fprintf (stderr, "autobahn-client: %s still open after %d s, closing\n", path, case_seconds);
	/* Releases our reference (and closes if the server did not). */
	nopoll_conn_close (conn);
	return 1;
}

int main (int argc, char ** argv)
{
	const char * url   = argc > 1 ? argv[1] : getenv ("AUTOBAHN_URL");
	const char * agent = argc > 2 ? argv[2] : getenv ("AUTOBAHN_AGENT");
	noPollCtx  * ctx;
	char         path[512];
	long         count = 0;
	long         i;

	if (url == NULL)
		url = "ws://127.0.0.1:9001";
	if (agent == NULL)
		agent = "nopoll";
	if (! parse_url (url)) {
		fprintf (stderr, "autobahn-client: bad URL '%s' (want ws:// or wss://HOST:PORT)\n", url);
		return 2;
	}
	if (strlen (agent) > 200 || strpbrk (agent, "&?#/ %") != NULL) {
		fprintf (stderr, "autobahn-client: bad agent name '%s'\n", agent);
		return 2;
	}

	if (getenv ("AUTOBAHN_CASE_SECONDS") != NULL && atoi (getenv ("AUTOBAHN_CASE_SECONDS")) > 0)
		case_seconds = atoi (getenv ("AUTOBAHN_CASE_SECONDS"));
	deflate = getenv ("AUTOBAHN_DEFLATE") != NULL && strcmp (getenv ("AUTOBAHN_DEFLATE"), "1") == 0;
	ctx = nopoll_ctx_new ();
	if (ctx == NULL)
		return 1;
	/* Case 9.1.6 / 9.2.6 send 16 MiB messages in one frame. */
	nopoll_ctx_set_max_frame_size (ctx, MAX_FRAME);

	if (argc > 3) {
		count = strtol (argv[3], NULL, 10);
	} else {
		if (! session (ctx, "/getCaseCount", 0) || ! got_text) {
			fprintf (stderr, "autobahn-client: no case count from %s/getCaseCount\n", url);
			nopoll_ctx_unref (ctx);
			return 1;
		}
		count = strtol (first_text, NULL, 10);
	}
	if (count <= 0) {
		fprintf (stderr, "autobahn-client: bad case count '%s'\n", first_text);
		nopoll_ctx_unref (ctx);
		return 1;
	}
	printf ("autobahn-client: %ld cases on %s as agent %s\n", count, url, agent);
	fflush (stdout);

	for (i = 1; i <= count; i++) {
		long before = echoed;
		sprintf (path, "/runCase?case=%ld&agent=%s", i, agent);
		if (! session (ctx, path, 1))
			fprintf (stderr, "autobahn-client: case %ld did not connect\n", i);
		printf ("case %ld: echoed %ld message(s)\n", i, echoed - before);
		fflush (stdout);
	}

	sprintf (path, "/updateReports?agent=%s", agent);
	session (ctx, path, 0);
	printf ("autobahn-client: done, %ld messages echoed, %d send(s) refused on closing connections\n",
		echoed, send_errors);
	nopoll_ctx_unref (ctx);
	return 0;
}
