/*
 * tls: wss:// through the C API, the way upstream's regression client
 * (nopoll-regression-client.c, tests 06/07/08/18/21) uses it, with
 * certificates generated at run time by the `openssl` command (nothing
 * private is committed):
 *
 * - a TLS listener (nopoll_listener_tls_new + nopoll_listener_set_certificate)
 *   served by nopoll_loop_wait in a thread; a client with
 *   nopoll_conn_opts_new + ssl_peer_verify(false) is ok at once, ready,
 *   tls_on, and echoes (06/07);
 * - a verifying client (CA given, host "localhost") echoes; the same CA
 *   with a name the certificate does not carry fails (host name check);
 *   NULL options (verification on) against an untrusted CA fail (21/1):
 *   each failure is a connection that is not ok, never NULL;
 * - a plain client on the TLS port is never ready (08);
 * - the post-TLS check sees the real SSL_CTX and SSL and can refuse;
 * - mutual TLS: a listener requiring client certificates refuses a client
 *   without one and serves one with a certificate of its CA (21/2);
 * - nopoll_ctx_set_certificate's default entry serves a listener that has
 *   no certificate of its own (tls_new_opts with NULL certs);
 * - a listener whose key does not match its certificate fails the
 *   connection (and says why in the log), the loop goes on;
 * - nopoll_conn_read over TLS, non-blocking and blocking;
 * - short writes over TLS: EWOULDBLOCK, pending bytes, drained by
 *   nopoll_conn_flush_writes, every byte received;
 * - a blocking socket: an echo ending with a full TLS record is read
 *   without waiting for bytes that never come;
 * - port sharing: the application accepts, nopoll_conn_accept_socket on a
 *   TLS listener and nopoll_conn_accept_complete (tls_on) run TLS;
 * - nopoll_ctx_set_ssl_context_creator: its SSL_CTX is used (and freed:
 *   valgrind), NULL from it fails the connection;
 * - a server that never answers the ClientHello: nopoll_conn_tls_new gives
 *   up after the connect timeout with a connection that is not ok.
 */
#include "check.h"
#include <openssl/ssl.h>

/* The certificates go to a private temporary folder (the program runs in
 * whatever directory its harness uses: never leave keys there). */
static char cert_dir[64];

static int enter_cert_dir (void)
{
	strcpy (cert_dir, "/tmp/nopoll-tls-test-XXXXXX");
	return mkdtemp (cert_dir) != NULL && chdir (cert_dir) == 0;
}

static void remove_cert_dir (void)
{
	char cmd[128];
	if (cert_dir[0] == 0 || chdir ("/") != 0)
		return;
	sprintf (cmd, "rm -rf '%s'", cert_dir);
	if (system (cmd) != 0)
		printf ("could not remove %s\n", cert_dir);
}

static int gen (void)
{
	/* CA, server leaf for localhost/127.0.0.1, client leaf, a second CA. */
	const char * script =
		"set -e; exec >tls_gen.log 2>&1;"
		"openssl req -x509 -newkey rsa:2048 -nodes -keyout tls_ca.key -out tls_ca.pem -days 2 -subj /CN=nopoll-test-ca"
		"  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign;"
		"openssl req -x509 -newkey rsa:2048 -nodes -keyout tls_ca2.key -out tls_ca2.pem -days 2 -subj /CN=other-ca"
		"  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign;"
		"openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls_server.key -out tls_server.csr -subj /CN=localhost;"
		"printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > tls_server.ext;"
		"openssl x509 -req -in tls_server.csr -CA tls_ca.pem -CAkey tls_ca.key -CAcreateserial -days 2 -extfile tls_server.ext -out tls_server.pem;"
		"openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls_client.key -out tls_client.csr -subj /CN=client;"
		"printf 'extendedKeyUsage=clientAuth\\n' > tls_client.ext;"
		"openssl x509 -req -in tls_client.csr -CA tls_ca.pem -CAkey tls_ca.key -CAcreateserial -days 2 -extfile tls_client.ext -out tls_client.pem;";
	return system (script) == 0;
}

static int binary_bytes = 0;
static int stall_ms = 0;

static void echo (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	/* binary: counted, not echoed (the short-write test) */
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME) {
		shared_add (&binary_bytes, nopoll_msg_get_payload_size (msg));
		return;
	}
	/* "stall": the loop sleeps a while (its peer's sends pile up) */
	if (nopoll_msg_get_payload_size (msg) == 5 && memcmp (nopoll_msg_get_payload (msg), "stall", 5) == 0) {
		sleep_ms (shared_get (&stall_ms));
		return;
	}
	nopoll_conn_send_text (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
}

static int post_calls = 0;
static int post_answer = 1;

static nopoll_bool post_check (noPollCtx * ctx, noPollConn * conn, noPollPtr ssl_ctx, noPollPtr ssl, noPollPtr user_data)
{
	(void) ctx;
	(void) conn;
	(void) user_data;
	/* the real objects: the SSL belongs to the SSL_CTX */
	if (ssl_ctx != NULL && ssl != NULL && SSL_get_SSL_CTX ((SSL *) ssl) == (SSL_CTX *) ssl_ctx)
		shared_add (&post_calls, 1);
	return (nopoll_bool) shared_get (&post_answer);
}

static int round_trip (noPollConn * conn, const char * text)
{
	noPollMsg * msg;
	int ok;
	if (! client_ready (conn))
		return 0;
	if (nopoll_conn_send_text (conn, text, (long) strlen (text)) != (int) strlen (text))
		return 0;
	msg = wait_msg (conn, scaled (5000, 30000));
	if (msg == NULL)
		return 0;
	ok = nopoll_msg_get_payload_size (msg) == (int) strlen (text)
	     && memcmp (nopoll_msg_get_payload (msg), text, strlen (text)) == 0;
	nopoll_msg_unref (msg);
	return ok;
}

static int creator_calls = 0;
static int creator_null = 0;

static noPollPtr creator (noPollCtx * ctx, noPollConn * conn, noPollConnOpts * opts, nopoll_bool is_client, noPollPtr user_data)
{
	(void) ctx;
	(void) conn;
	(void) opts;
	(void) user_data;
	shared_add (&creator_calls, 1);
	if (shared_get (&creator_null) || ! is_client)
		return NULL;
	return SSL_CTX_new (TLS_client_method ());
}

typedef struct {
	noPollCtx  * ctx;
	noPollConn * listener;
	int          lfd;
	int          complete; /* 0: accept_socket, 1: from_socket + accept_complete */
	int          ok;
} Sharer;

static void * share_main (void * arg)
{
	Sharer * sh = (Sharer *) arg;
	int fd = nopoll_listener_accept (sh->lfd);
	if (fd < 0)
		return NULL;
	if (sh->complete) {
		noPollConn * conn = nopoll_listener_from_socket (sh->ctx, fd);
		sh->ok = conn != NULL && nopoll_conn_accept_complete (sh->ctx, sh->listener, conn, fd, nopoll_true);
	} else
		sh->ok = nopoll_conn_accept_socket (sh->ctx, sh->listener, fd) != NULL;
	return NULL;
}

static void port_sharing (noPollCtx * sctx, noPollCtx * cctx, noPollConn * listener, int complete)
{
	Sharer sh;
	pthread_t t;
	char port[16];
	noPollConn * conn;
	struct sockaddr_in sa;
	socklen_t len = sizeof (sa);
	note (complete ? "port sharing: accept_complete with tls_on" : "port sharing: accept_socket on a TLS listener");
	memset (&sh, 0, sizeof (sh));
	sh.ctx = sctx;
	sh.listener = listener;
	sh.complete = complete;
	sh.lfd = nopoll_listener_sock_listen (sctx, "127.0.0.1", "0");
	CHECK (sh.lfd >= 0);
	CHECK (getsockname (sh.lfd, (struct sockaddr *) &sa, &len) == 0);
	sprintf (port, "%d", (int) ntohs (sa.sin_port));
	CHECK (spawn (&t, share_main, &sh));
	conn = nopoll_conn_tls_new (cctx, nopoll_conn_opts_new (), "localhost", port, NULL, NULL, NULL, NULL);
	pthread_join (t, NULL);
	CHECK (sh.ok);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK (round_trip (conn, "shared port"));
	nopoll_conn_close (conn);
	close (sh.lfd);
}

static void reads_and_writes (noPollCtx * cctx, const char * port)
{
	noPollConn * conn;
	char buf[64];
	char * big;
	int i, rc = 0, sent = 0, short_errno = 0, size = 1 << 20, small = 16384;
	double end;
	note ("nopoll_conn_read over TLS, non-blocking and blocking");
	conn = nopoll_conn_tls_new (cctx, nopoll_conn_opts_new (), "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (client_ready (conn));
	CHECK_INT (nopoll_conn_read (conn, buf, 4, nopoll_false, 0), -1);
	CHECK_INT (nopoll_conn_send_text (conn, "abcdef", 6), 6);
	CHECK_INT (nopoll_conn_read (conn, buf, 6, nopoll_true, scaled (5000, 30000)), 6);
	CHECK (memcmp (buf, "abcdef", 6) == 0);

	note ("short writes over TLS: EWOULDBLOCK, pending, flush_writes");
	setsockopt (nopoll_conn_socket (conn), SOL_SOCKET, SO_SNDBUF, &small, sizeof (small));
	shared_set (&binary_bytes, 0);
	shared_set (&stall_ms, (int) scaled (1000, 5000));
	CHECK_INT (nopoll_conn_send_text (conn, "stall", 5), 5);
	big = (char *) malloc ((size_t) size);
	memset (big, 'b', (size_t) size);
	for (i = 0; i < 64; i++) {
		errno = 0;
		rc = nopoll_conn_send_binary (conn, big, size);
		if (rc != size) {
			short_errno = errno;
			break;
		}
		sent += size;
	}
	free (big);
	printf ("   %d bytes sent whole, then %d (errno %d), %d pending\n", sent, rc, short_errno,
		nopoll_conn_pending_write_bytes (conn));
	CHECK (rc < size);
	CHECK_INT (short_errno, NOPOLL_EWOULDBLOCK);
	CHECK (nopoll_conn_pending_write_bytes (conn) > 0);
	nopoll_conn_flush_writes (conn, scaled (10000000L, 60000000L), 0);
	CHECK_INT (nopoll_conn_pending_write_bytes (conn), 0);
	end = now_ms () + (double) scaled (10000, 60000);
	while (shared_get (&binary_bytes) < sent + size && now_ms () < end)
		sleep_ms (5);
	CHECK_INT (shared_get (&binary_bytes), sent + size);
	nopoll_conn_close (conn);
}

static void blocking_socket_full_records (noPollCtx * cctx, const char * port)
{
	noPollConn * conn;
	noPollMsg * msg;
	char * text;
	int size = 2 * 16384 - 4; /* its echo: a frame of exactly two full TLS records */
	note ("a blocking socket: an echo that ends with a full TLS record is read without waiting for more");
	conn = nopoll_conn_tls_new (cctx, nopoll_conn_opts_new (), "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (client_ready (conn));
	text = (char *) malloc ((size_t) size);
	memset (text, 't', (size_t) size);
	CHECK_INT (nopoll_conn_send_text (conn, text, size), size);
	CHECK (nopoll_conn_set_sock_block (nopoll_conn_socket (conn), nopoll_true));
	/* A read goes on to the socket after a full record without waiting
	 * (MSG_DONTWAIT); a plain blocking read would wait here for bytes
	 * the server never sends. */
	msg = wait_msg (conn, scaled (10000, 60000));
	CHECK (msg != NULL);
	if (msg != NULL) {
		CHECK_INT (nopoll_msg_get_payload_size (msg), size);
		CHECK (memcmp (nopoll_msg_get_payload (msg), text, (size_t) size) == 0);
		nopoll_msg_unref (msg);
	}
	free (text);
	nopoll_conn_close (conn);
}

static void stalled_server (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * conn;
	char ps[16];
	int lfd, p;
	double start, took;
	note ("a server that accepts and never answers the ClientHello: bounded by the connect timeout");
	test_log (ctx, "stalled");
	lfd = raw_listen (4, &p);
	CHECK (lfd >= 0);
	sprintf (ps, "%d", p);
	nopoll_conn_connect_timeout (ctx, 300000);
	start = now_ms ();
	conn = nopoll_conn_tls_new (ctx, nopoll_conn_opts_new (), "127.0.0.1", ps, NULL, NULL, NULL, NULL);
	took = now_ms () - start;
	printf ("   gave up after %.0f ms\n", took);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK (took >= 250.0);
	CHECK (took < (double) scaled (5000, 20000));
	nopoll_conn_close (conn);
	close (lfd);
	nopoll_ctx_unref (ctx);
}

static void context_creator (noPollCtx * cctx, const char * port)
{
	noPollConn * conn;
	note ("nopoll_ctx_set_ssl_context_creator: used and adopted; NULL fails");
	nopoll_ctx_set_ssl_context_creator (cctx, creator, NULL);
	conn = nopoll_conn_tls_new (cctx, nopoll_conn_opts_new (), "localhost", port, NULL, NULL, NULL, NULL);
	CHECK_INT (shared_get (&creator_calls), 1);
	CHECK (round_trip (conn, "created"));
	nopoll_conn_close (conn);
	shared_set (&creator_null, 1);
	conn = nopoll_conn_tls_new (cctx, nopoll_conn_opts_new (), "localhost", port, NULL, NULL, NULL, NULL);
	CHECK_INT (shared_get (&creator_calls), 2);
	CHECK (conn != NULL && ! nopoll_conn_is_ok (conn));
	nopoll_conn_close (conn);
	nopoll_ctx_set_ssl_context_creator (cctx, NULL, NULL);
}

int main (void)
{
	noPollCtx * sctx, * cctx;
	noPollConn * listener, * mlistener, * dlistener, * conn;
	noPollConnOpts * opts;
	LoopThread lt;
	char port[16], mport[16], dport[16];

	check_init ("tls", 120);
	CHECK (enter_cert_dir ());
	CHECK (gen ());

	sctx = nopoll_ctx_new ();
	test_log (sctx, "server");
	nopoll_ctx_set_on_msg (sctx, echo, NULL);
	listener = nopoll_listener_tls_new (sctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (listener));
	CHECK (nopoll_conn_is_tls_on (listener));
	/* unreadable files are refused at once */
	CHECK (! nopoll_listener_set_certificate (listener, "tls_missing.pem", "tls_server.key", NULL));
	CHECK (nopoll_listener_set_certificate (listener, "tls_server.pem", "tls_server.key", NULL));
	strcpy (port, nopoll_conn_port (listener));

	/* mutual TLS: client certificates of tls_ca.pem required */
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_opts_set_ssl_certs (opts, "tls_server.pem", "tls_server.key", NULL, "tls_ca.pem"));
	nopoll_conn_opts_ssl_peer_verify (opts, nopoll_true);
	mlistener = nopoll_listener_tls_new_opts (sctx, opts, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (mlistener));
	strcpy (mport, nopoll_conn_port (mlistener));

	/* the context's default certificate */
	CHECK (nopoll_ctx_set_certificate (sctx, NULL, "tls_server.pem", "tls_server.key", NULL));
	dlistener = nopoll_listener_tls_new (sctx, "127.0.0.1", "0");
	strcpy (dport, nopoll_conn_port (dlistener));
	CHECK (loop_thread_start (&lt, sctx));

	cctx = nopoll_ctx_new ();
	test_log (cctx, "client");

	note ("06/07: opts_new + ssl_peer_verify(false): ok, ready, tls_on, echo");
	opts = nopoll_conn_opts_new ();
	nopoll_conn_opts_ssl_peer_verify (opts, nopoll_false);
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK (nopoll_conn_is_tls_on (conn));
	CHECK (round_trip (conn, "hello over TLS"));
	nopoll_conn_close (conn);

	note ("verification on, CA given, name matches: echo");
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_opts_set_ssl_certs (opts, NULL, NULL, NULL, "tls_ca.pem"));
	nopoll_conn_opts_ssl_peer_verify (opts, nopoll_true);
	conn = nopoll_conn_tls_new (cctx, opts, "127.0.0.1", port, "localhost", NULL, NULL, NULL);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK (round_trip (conn, "verified"));
	nopoll_conn_close (conn);

	note ("verification on, name not in the certificate: not ok");
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_opts_set_ssl_certs (opts, NULL, NULL, NULL, "tls_ca.pem"));
	nopoll_conn_opts_ssl_peer_verify (opts, nopoll_true);
	conn = nopoll_conn_tls_new (cctx, opts, "127.0.0.1", port, "wrong.example", NULL, NULL, NULL);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	nopoll_conn_close (conn);

	note ("21/1: NULL options verify; untrusted CA: not ok right after the call");
	conn = nopoll_conn_tls_new (cctx, NULL, "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK (! nopoll_conn_is_tls_on (conn));
	nopoll_conn_close (conn);

	note ("a CA that did not sign the server: not ok");
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_opts_set_ssl_certs (opts, NULL, NULL, NULL, "tls_ca2.pem"));
	nopoll_conn_opts_ssl_peer_verify (opts, nopoll_true);
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	nopoll_conn_close (conn);

	note ("TCP failure is NULL");
	conn = nopoll_conn_tls_new (cctx, NULL, "127.0.0.1", "1", NULL, NULL, NULL, NULL);
	CHECK (conn == NULL);

	note ("08: a plain client on the TLS port is never ready");
	conn = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_wait_until_connection_ready (conn, 2));
	nopoll_conn_close (conn);

	note ("post-TLS check: real SSL_CTX/SSL; false aborts");
	nopoll_ctx_set_post_ssl_check (cctx, post_check, NULL);
	opts = nopoll_conn_opts_new ();
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK_INT (shared_get (&post_calls), 1);
	CHECK (round_trip (conn, "checked"));
	nopoll_conn_close (conn);
	shared_set (&post_answer, 0);
	opts = nopoll_conn_opts_new ();
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	CHECK (! nopoll_conn_is_ok (conn));
	CHECK_INT (shared_get (&post_calls), 2);
	nopoll_conn_close (conn);
	nopoll_ctx_set_post_ssl_check (cctx, NULL, NULL);

	note ("21: mutual TLS; without a client certificate the server refuses");
	opts = nopoll_conn_opts_new ();
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", mport, NULL, NULL, NULL, NULL);
	/* TLS 1.3: the client finishes first; the server's refusal ends it */
	CHECK (! client_ready (conn));
	nopoll_conn_close (conn);
	opts = nopoll_conn_opts_new ();
	CHECK (nopoll_conn_opts_set_ssl_certs (opts, "tls_client.pem", "tls_client.key", NULL, "tls_ca.pem"));
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", mport, NULL, NULL, NULL, NULL);
	CHECK (nopoll_conn_is_ok (conn));
	CHECK (round_trip (conn, "mutual"));
	nopoll_conn_close (conn);

	note ("nopoll_ctx_set_certificate's default entry");
	opts = nopoll_conn_opts_new ();
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", dport, NULL, NULL, NULL, NULL);
	CHECK (round_trip (conn, "default certificate"));
	nopoll_conn_close (conn);

	note ("a key that does not match: the connection fails, the loop goes on");
	CHECK (nopoll_listener_set_certificate (dlistener, "tls_server.pem", "tls_client.key", NULL));
	opts = nopoll_conn_opts_new ();
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", dport, NULL, NULL, NULL, NULL);
	CHECK (! client_ready (conn));
	nopoll_conn_close (conn);
	opts = nopoll_conn_opts_new ();
	conn = nopoll_conn_tls_new (cctx, opts, "localhost", port, NULL, NULL, NULL, NULL);
	CHECK (round_trip (conn, "still serving"));
	nopoll_conn_close (conn);

	reads_and_writes (cctx, port);
	blocking_socket_full_records (cctx, port);
	port_sharing (sctx, cctx, listener, 0);
	port_sharing (sctx, cctx, listener, 1);
	context_creator (cctx, port);
	stalled_server ();

	CHECK_INT (loop_thread_stop (&lt), 0);
	nopoll_conn_close (listener);
	nopoll_conn_close (mlistener);
	nopoll_conn_close (dlistener);
	nopoll_ctx_unref (cctx);
	nopoll_ctx_unref (sctx);
	nopoll_cleanup_library ();
	remove_cert_dir ();
	return check_done ();
}
