/* tls_server: our wss:// echo server for tests/tls (Python, openssl
 * s_client). Prints "ready PORT", logs every library line to stderr.
 *
 *   tls_server CERT KEY [-ca CA] [-verify] [-proto N] [-recv BYTES]
 *              [-hs-timeout US] [-sni NAME CERT KEY]
 *
 * SIGTERM/SIGINT stop it. */
#include <nopoll.h>
#ifdef NOPOLL_TEST_MBEDTLS
/* built against c-examples/tls/nopoll_mbedtls.c: TLS by the C table */
#include "../../c-examples/tls/nopoll_mbedtls.h"
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static noPollCtx * ctx;

static volatile sig_atomic_t stopping;

static void on_signal (int sig)
{
	(void) sig;
	stopping = 1;
	nopoll_loop_stop (ctx);
}

static void on_log (noPollCtx * c, noPollDebugLevel level, const char * msg, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	fprintf (stderr, "log %d %s\n", (int) level, msg);
	fflush (stderr);
}

static void on_msg (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * p    = (const char *) nopoll_msg_get_payload (msg);
	long         size = nopoll_msg_get_payload_size (msg);
	(void) c;
	(void) user_data;
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, p, size);
	else
		nopoll_conn_send_text (conn, p, size);
}

int main (int argc, char ** argv)
{
	noPollConnOpts * opts;
	noPollConn     * listener;
	const char     * ca = NULL;
	int              verify = 0, proto = 0, i;
	long             slice = 0;
	if (argc < 3) {
		fprintf (stderr, "usage: tls_server CERT KEY [options]\n");
		return 2;
	}
#ifdef NOPOLL_TEST_MBEDTLS
	if (! nopoll_install_tls_ops (nopoll_mbedtls_ops ())) {
		fprintf (stderr, "nopoll_install_tls_ops failed\n");
		return 3;
	}
#endif
	ctx = nopoll_ctx_new ();
	nopoll_log_set_handler (ctx, on_log, NULL);
	nopoll_ctx_set_on_msg (ctx, on_msg, NULL);
	for (i = 3; i < argc; i++) {
		if (strcmp (argv[i], "-ca") == 0 && i + 1 < argc)
			ca = argv[++i];
		else if (strcmp (argv[i], "-verify") == 0)
			verify = 1;
		else if (strcmp (argv[i], "-proto") == 0 && i + 1 < argc)
			proto = atoi (argv[++i]);
		else if (strcmp (argv[i], "-recv") == 0 && i + 1 < argc)
			nopoll_ctx_set_recv_buffer_size (ctx, atol (argv[++i]));
		else if (strcmp (argv[i], "-slice") == 0 && i + 1 < argc)
			slice = atol (argv[++i]);
		else if (strcmp (argv[i], "-hs-timeout") == 0 && i + 1 < argc)
			nopoll_ctx_set_handshake_timeout (ctx, atol (argv[++i]));
		else if (strcmp (argv[i], "-sni") == 0 && i + 3 < argc) {
			nopoll_ctx_set_certificate (ctx, argv[i + 1], argv[i + 2], argv[i + 3], NULL);
			i += 3;
		}
	}
	opts = nopoll_conn_opts_new ();
	if (! nopoll_conn_opts_set_ssl_certs (opts, argv[1], argv[2], NULL, ca)) {
		fprintf (stderr, "cannot read the certificate files\n");
		return 1;
	}
	nopoll_conn_opts_ssl_peer_verify (opts, verify ? nopoll_true : nopoll_false);
	if (proto)
		nopoll_conn_opts_set_ssl_protocol (opts, (noPollSslProtocol) proto);
	listener = nopoll_listener_tls_new_opts (ctx, opts, "127.0.0.1", "0");
	if (! nopoll_conn_is_ok (listener))
		return 1;
	printf ("ready %s\n", nopoll_conn_port (listener));
	fflush (stdout);
	signal (SIGTERM, on_signal);
	signal (SIGINT, on_signal);
	if (slice > 0) {
		/* -slice USEC: the loop in short calls, as a program that does
		 * other work between them writes it */
		while (! stopping)
			nopoll_loop_wait (ctx, slice);
	} else
		nopoll_loop_wait (ctx, 0);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	return 0;
}
