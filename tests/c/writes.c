/*
 * writes: short writes and pending output.
 *
 * A server conn (nopoll_conn_accept, no loop) sends large binary messages
 * to a raw client that does not read, until a send returns less than
 * requested: errno is NOPOLL_EWOULDBLOCK and nopoll_conn_pending_write_bytes
 * is > 0. Then the peer reads (in a thread) while this thread drains the
 * rest with nopoll_conn_complete_pending_write and nopoll_conn_flush_writes;
 * the peer receives every message intact (count, sizes, checksum).
 * The same for a client conn (masked frames) drained by nopoll_loop_wait.
 */
#include "check.h"

#define MSG_SIZE 65536L

typedef struct {
	int           fd;
	int           expected;   /* messages to read */
	int           got;        /* messages read */
	int           bad_frames;
	unsigned long checksum;
	long          bytes;
} Reader;

static unsigned long mix (unsigned long sum, const unsigned char * p, long n)
{
	long i;
	for (i = 0; i < n; i++)
		sum = sum * 31UL + p[i];
	return sum;
}

static void fill (unsigned char * buf, long n, int seq)
{
	long i;
	for (i = 0; i < n; i++)
		buf[i] = (unsigned char) ((i * 7 + seq * 13 + (i >> 8)) & 0xff);
}

static void * reader_main (void * arg)
{
	Reader * r = (Reader *) arg;
	unsigned char * buf = (unsigned char *) malloc (MSG_SIZE + 1);
	RawFrame f;
	while (r->got < shared_get (&r->expected)) {
		if (! raw_read_frame (r->fd, &f, buf, MSG_SIZE + 1))
			break;
		if (f.opcode != 2 || ! f.fin || f.len != MSG_SIZE)
			r->bad_frames++;
		r->checksum = mix (r->checksum, buf, f.len);
		r->bytes += f.len;
		r->got++;
	}
	free (buf);
	return NULL;
}

/* Sends MSG_SIZE binary messages until one is short; the number of
 * messages the peer must receive (the short one included: its rest is
 * pending output), the checksum of what was sent in *sum. */
static int send_until_short (noPollConn * conn, unsigned long * sum, int * short_ret, int * short_errno)
{
	unsigned char * buf = (unsigned char *) malloc (MSG_SIZE);
	int i, rc = 0, max = 4000;
	*short_ret = (int) MSG_SIZE;
	*short_errno = 0;
	for (i = 0; i < max; i++) {
		fill (buf, MSG_SIZE, i);
		errno = 0;
		rc = nopoll_conn_send_binary (conn, (const char *) buf, MSG_SIZE);
		if (rc == -1)
			break;
		*sum = mix (*sum, buf, MSG_SIZE);
		if (rc != (int) MSG_SIZE) {
			*short_ret = rc;
			*short_errno = errno;
			i++;
			break;
		}
	}
	free (buf);
	return rc == -1 ? -1 : i;
}

static void server_side (void)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * l, * srv;
	Reader r;
	pthread_t t;
	unsigned long sent_sum = 0;
	int cfd, sent, short_ret, short_errno, pending, i, drained = 0;
	note ("short writes on a server conn, drained by nopoll_conn_complete_pending_write");
	l = nopoll_listener_new (ctx, "127.0.0.1", "0");
	CHECK (nopoll_conn_is_ok (l));
	/* the raw client (default buffers: several messages fit before the
	 * short one) does not read yet */
	cfd = socket (AF_INET, SOCK_STREAM, 0);
	{
		struct sockaddr_in sa;
		memset (&sa, 0, sizeof (sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
		sa.sin_port = htons ((unsigned short) atoi (nopoll_conn_port (l)));
		CHECK (connect (cfd, (struct sockaddr *) &sa, sizeof (sa)) == 0);
	}
	raw_set_timeout (cfd, scaled (10000, 60000));
	srv = nopoll_conn_accept (ctx, l);
	CHECK (srv != NULL);
	CHECK (nopoll_conn_ref (srv));
	/* handshake: request from the raw client, 101 written by is_ready */
	{
		char req[512], head[1024];
		sprintf (req, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: " RAW_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n");
		CHECK (raw_send_all (cfd, req, (long) strlen (req)));
		for (i = 0; i < 5000 && ! nopoll_conn_is_ready (srv); i++)
			sleep_ms (1);
		CHECK (nopoll_conn_is_ready (srv));
		CHECK (raw_read_head (cfd, head, sizeof (head)) > 0 && strncmp (head, "HTTP/1.1 101", 12) == 0);
	}
	CHECK_INT (nopoll_conn_pending_write_bytes (srv), 0);

	sent = send_until_short (srv, &sent_sum, &short_ret, &short_errno);
	printf ("server: %d messages of %ld bytes sent, the last returned %d (errno %d), %d bytes pending\n",
		sent, MSG_SIZE, short_ret, short_errno, nopoll_conn_pending_write_bytes (srv));
	CHECK (sent > 0);
	CHECK (short_ret < (int) MSG_SIZE);
	CHECK (short_ret >= 0 || short_ret == -2);
	CHECK_INT (short_errno, NOPOLL_EWOULDBLOCK);
	pending = nopoll_conn_pending_write_bytes (srv);
	CHECK (pending > 0);
	/* while the peer does not read, a flush writes what the socket takes
	 * now and keeps the rest: maybe nothing, maybe some (the kernel may
	 * have grown the loopback buffers since the short send), never more
	 * than was pending, and it reports only what went out */
	{
		int n = nopoll_conn_complete_pending_write (srv);
		int after = nopoll_conn_pending_write_bytes (srv);
		CHECK (n >= 0);
		CHECK (after >= 0 && after <= pending);
		if (after == pending)
			CHECK_INT (n, 0);
		drained += n;
	}

	/* now the peer reads */
	memset (&r, 0, sizeof (r));
	r.fd = cfd;
	r.expected = sent;
	CHECK (spawn (&t, reader_main, &r));
	/* bounded by rounds without progress, not in all: a slow reader (a
	 * loaded machine, valgrind) is no failure, a stuck one is */
	for (i = 0; i < scaled (5000, 30000) && nopoll_conn_pending_write_bytes (srv) > 0; i++) {
		int n = nopoll_conn_complete_pending_write (srv);
		CHECK (n >= 0);
		drained += n;
		if (n > 0)
			i = 0;
		if (nopoll_conn_pending_write_bytes (srv) > 0)
			sleep_ms (1);
	}
	CHECK_INT (nopoll_conn_pending_write_bytes (srv), 0);
	printf ("server: drained %d payload bytes with complete_pending_write\n", drained);
	/* what the short send did not write, payload bytes only (as nopoll) */
	if (short_ret > 0)
		CHECK_INT (drained, MSG_SIZE - short_ret);
	pthread_join (t, NULL);
	CHECK_INT (r.got, sent);
	CHECK_INT (r.bad_frames, 0);
	CHECK_INT (r.bytes, (long) sent * MSG_SIZE);
	CHECK (r.checksum == sent_sum);
	/* nothing pending: 0 */
	CHECK_INT (nopoll_conn_complete_pending_write (srv), 0);
	CHECK_INT (nopoll_conn_flush_writes (srv, 1000, 5), 5);
	/* the conn still works */
	{
		unsigned char buf[32];
		RawFrame f;
		CHECK_INT (nopoll_conn_send_text (srv, "after", 5), 5);
		CHECK (raw_read_frame (cfd, &f, buf, sizeof (buf)));
		CHECK (f.opcode == 1 && f.len == 5 && memcmp (buf, "after", 5) == 0);
	}
	nopoll_conn_close (srv);
	close (cfd);
	nopoll_conn_close (l);
	nopoll_ctx_unref (ctx);
}

/* mode 0: drained by nopoll_conn_flush_writes; 1: by nopoll_loop_wait */
static void client_side (int mode)
{
	noPollCtx * ctx = nopoll_ctx_new ();
	noPollConn * conn;
	Reader r;
	pthread_t t;
	unsigned long sent_sum = 0;
	char head[2048];
	int lfd, sfd, p, sent, short_ret, short_errno, i, small = 16384;
	char ps[16];
	note (mode == 0 ? "short writes on a client conn, drained by nopoll_conn_flush_writes"
	      : "short writes on a client conn, drained by nopoll_loop_wait");
	lfd = raw_listen (4, &p);
	sprintf (ps, "%d", p);
	conn = nopoll_conn_new (ctx, "127.0.0.1", ps, NULL, NULL, NULL, NULL);
	CHECK (conn != NULL);
	sfd = raw_accept (lfd, 5000);
	CHECK (sfd >= 0);
	setsockopt (sfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof (small));
	setsockopt (nopoll_conn_socket (conn), SOL_SOCKET, SO_SNDBUF, &small, sizeof (small));
	CHECK (raw_server_handshake (sfd, head, sizeof (head), NULL));
	CHECK (client_ready (conn));

	sent = send_until_short (conn, &sent_sum, &short_ret, &short_errno);
	printf ("client: %d messages sent, the last returned %d (errno %d), %d bytes pending\n",
		sent, short_ret, short_errno, nopoll_conn_pending_write_bytes (conn));
	CHECK (sent > 0);
	CHECK (short_ret < (int) MSG_SIZE);
	CHECK_INT (short_errno, NOPOLL_EWOULDBLOCK);
	CHECK (nopoll_conn_pending_write_bytes (conn) > 0);

	memset (&r, 0, sizeof (r));
	r.fd = sfd;
	r.expected = sent;
	raw_set_timeout (sfd, scaled (10000, 60000));
	CHECK (spawn (&t, reader_main, &r));
	if (mode == 0) {
		int flushed = nopoll_conn_flush_writes (conn, scaled (5000000L, 30000000L), 0);
		printf ("client: flush_writes wrote %d payload bytes\n", flushed);
		if (short_ret > 0)
			CHECK_INT (flushed, MSG_SIZE - short_ret);
		CHECK_INT (nopoll_conn_flush_writes (conn, 1000, 3), 3);
	} else {
		/* the loop writes the rest when the socket becomes writable;
		 * bounded by calls without progress (each waits up to 10 ms) */
		int before = nopoll_conn_pending_write_bytes (conn);
		for (i = 0; i < scaled (500, 3000) && before > 0; i++) {
			int now;
			nopoll_loop_wait (ctx, 10000);
			now = nopoll_conn_pending_write_bytes (conn);
			if (now < before)
				i = 0;
			before = now;
		}
	}
	CHECK_INT (nopoll_conn_pending_write_bytes (conn), 0);
	pthread_join (t, NULL);
	CHECK_INT (r.got, sent);
	CHECK_INT (r.bad_frames, 0);
	CHECK (r.checksum == sent_sum);
	nopoll_conn_close (conn);
	close (sfd);
	close (lfd);
	nopoll_ctx_unref (ctx);
}

int main (void)
{
	check_init ("writes", 60);
	server_side ();
	client_side (0);
	client_side (1);
	return check_done ();
}
