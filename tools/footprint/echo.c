/* footprint echo listener: the smallest useful nopoll server, the program
 * whose size tools/footprint/run.sh breaks down.
 *
 *   echo [PORT]        (default 1234; listens on 127.0.0.1)
 *
 * Text is echoed as text, binary as binary. Runs until killed. Built with
 * -DFOOTPRINT_SOCKET_OPS (the no-std build, which has no default socket
 * table), it first installs the libc table of socket_ops.c. */
#include <nopoll.h>

#ifdef FOOTPRINT_SOCKET_OPS
extern const noPollSocketOps footprint_socket_ops;
#endif

static void on_message (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * payload = (const char *) nopoll_msg_get_payload (msg);
	long         size    = nopoll_msg_get_payload_size (msg);
	(void) ctx;
	(void) user_data;

	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, payload, size);
	else
		nopoll_conn_send_text (conn, payload == NULL ? "" : payload, size);
}

int main (int argc, char ** argv)
{
	const char * port = argc > 1 ? argv[1] : "1234";
	noPollCtx  * ctx;
	noPollConn * listener;

#ifdef FOOTPRINT_SOCKET_OPS
	if (! nopoll_install_socket_ops (&footprint_socket_ops))
		return 2;
#endif
	ctx = nopoll_ctx_new ();
	if (ctx == NULL)
		return 1;
	listener = nopoll_listener_new (ctx, "127.0.0.1", port);
	if (! nopoll_conn_is_ok (listener))
		return 1;
	nopoll_ctx_set_on_msg (ctx, on_message, NULL);
	nopoll_loop_wait (ctx, 0);
	return 0;
}
