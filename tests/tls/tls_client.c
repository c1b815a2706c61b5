/* tls_client: our wss:// client for tests/tls. Connects, sends TEXT,
 * expects it echoed; exit 0 on success, 1 when the connection fails (the
 * library's log lines go to stderr), 2 for usage.
 *
 *   tls_client HOST PORT TEXT [-name HOSTNAME] [-ca CA] [-verify]
 *              [-null-opts] [-proto N] [-cert CERT KEY]
 */
#include <nopoll.h>
#ifdef NOPOLL_TEST_MBEDTLS
/* built against c-examples/tls/nopoll_mbedtls.c: TLS by the C table */
#include "../../c-examples/tls/nopoll_mbedtls.h"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_log (noPollCtx * c, noPollDebugLevel level, const char * msg, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	fprintf (stderr, "log %d %s\n", (int) level, msg);
}

int main (int argc, char ** argv)
{
	noPollCtx      * ctx;
	noPollConnOpts * opts = NULL;
	noPollConn     * conn;
	noPollMsg      * msg = NULL;
	const char     * name = NULL, * ca = NULL, * cert = NULL, * key = NULL;
	int              verify = 0, null_opts = 0, proto = 0, i, ok;
	if (argc < 4)
		return 2;
	for (i = 4; i < argc; i++) {
		if (strcmp (argv[i], "-name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp (argv[i], "-ca") == 0 && i + 1 < argc)
			ca = argv[++i];
		else if (strcmp (argv[i], "-verify") == 0)
			verify = 1;
		else if (strcmp (argv[i], "-null-opts") == 0)
			null_opts = 1;
		else if (strcmp (argv[i], "-proto") == 0 && i + 1 < argc)
			proto = atoi (argv[++i]);
		else if (strcmp (argv[i], "-cert") == 0 && i + 2 < argc) {
			cert = argv[++i];
			key = argv[++i];
		}
	}
#ifdef NOPOLL_TEST_MBEDTLS
	if (! nopoll_install_tls_ops (nopoll_mbedtls_ops ())) {
		fprintf (stderr, "nopoll_install_tls_ops failed\n");
		return 3;
	}
#endif
	ctx = nopoll_ctx_new ();
	nopoll_log_set_handler (ctx, on_log, NULL);
	if (! null_opts) {
		opts = nopoll_conn_opts_new ();
		if ((cert || ca) && ! nopoll_conn_opts_set_ssl_certs (opts, cert, key, NULL, ca))
			return 2;
		nopoll_conn_opts_ssl_peer_verify (opts, verify ? nopoll_true : nopoll_false);
		if (proto)
			nopoll_conn_opts_set_ssl_protocol (opts, (noPollSslProtocol) proto);
	}
	conn = nopoll_conn_tls_new (ctx, opts, argv[1], argv[2], name, NULL, NULL, NULL);
	ok = conn != NULL && nopoll_conn_is_ok (conn) && nopoll_conn_wait_until_connection_ready (conn, 10);
	if (ok) {
		ok = nopoll_conn_send_text (conn, argv[3], (long) strlen (argv[3])) == (int) strlen (argv[3]);
		for (i = 0; ok && i < 1000 && msg == NULL; i++) {
			msg = nopoll_conn_get_msg (conn);
			if (msg == NULL && ! nopoll_conn_is_ok (conn))
				break;
			if (msg == NULL)
				nopoll_sleep (10000);
		}
		ok = msg != NULL && nopoll_msg_get_payload_size (msg) == (int) strlen (argv[3])
		     && memcmp (nopoll_msg_get_payload (msg), argv[3], strlen (argv[3])) == 0;
		if (msg)
			nopoll_msg_unref (msg);
	}
	printf ("%s\n", ok ? "echo ok" : "failed");
	if (conn)
		nopoll_conn_close (conn);
	nopoll_ctx_unref (ctx);
	return ok ? 0 : 1;
}
