/* The MCU test firmware: nopoll's C API on an emulated Cortex-M (QEMU
 * mps2-an385 / mps2-an386), newlib with semihosting for output.
 *
 * A server (listener + nopoll_loop_wait) and clients (nopoll_conn_new,
 * nopoll_conn_get_msg) in one single-threaded program, over the in-memory
 * socket table of memsock.c installed with nopoll_install_socket_ops; time
 * is the table's virtual clock (nopoll_install_clock), locks go through
 * counting mutex hooks (nopoll_thread_handlers). Checks: handshake, text
 * and binary echo up to 40 KiB through 1 KiB socket buffers (partial
 * sends both ways), ping/pong at frame level (a raw peer) and through a
 * nopoll client, close codes both ways, the handshake timeout on the
 * virtual clock, a message over the size limit (1009), a message the heap
 * cannot copy out for its handler (1009). Reports the heap
 * (peak, per connection, loop buffers) and the stack high-water mark.
 *
 * Prints one line per check and "MCU: N passed, N failed"; exits (QEMU
 * semihosting) with status 0 only when every check passed. */
#include "memsock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PORT       "8080"
#define MAX_ECHO   40960L
#define HS_TIMEOUT_MS 2000UL

extern unsigned long mcu_stack_high_water (void);
extern unsigned long mcu_stack_size (void);

/* ---------------------------------------------------------------- heap */

void * __real_malloc (size_t n);
void * __real_realloc (void * p, size_t n);
void   __real_free (void * p);

static long heap_now, heap_peak, heap_peak_all, heap_blocks;
/* Non-zero: allocations of heap_refuse_from up to heap_refuse_to bytes
 * (excluded) fail, as on a heap that has run out, counted in
 * heap_refused. */
static size_t heap_refuse_from, heap_refuse_to;
static long heap_refused;

static int heap_refuses (size_t n)
{
	if (heap_refuse_from == 0 || n < heap_refuse_from || n >= heap_refuse_to)
		return 0;
	heap_refused++;
	return 1;
}

/* An 8-byte header keeps each block's size (and malloc's alignment). */
static void account (long delta)
{
	heap_now += delta;
	if (heap_now > heap_peak)
		heap_peak = heap_now;
	if (heap_now > heap_peak_all)
		heap_peak_all = heap_now;
}

void * __wrap_malloc (size_t n)
{
	size_t * p;
	if (heap_refuses (n))
		return NULL;
	p = __real_malloc (n + 8);
	if (p == NULL)
		return NULL;
	p[0] = n;
	account ((long) n);
	heap_blocks++;
	return (char *) p + 8;
}

void __wrap_free (void * q)
{
	size_t * p;
	if (q == NULL)
		return;
	p = (size_t *) ((char *) q - 8);
	account (- (long) p[0]);
	heap_blocks--;
	__real_free (p);
}

void * __wrap_calloc (size_t a, size_t b)
{
	void * q;
	if (b != 0 && a > (size_t) -1 / 2 / b)
		return NULL;
	q = __wrap_malloc (a * b);
	if (q != NULL)
		memset (q, 0, a * b);
	return q;
}

void * __wrap_realloc (void * q, size_t n)
{
	size_t * p, old;
	if (q == NULL)
		return __wrap_malloc (n);
	if (heap_refuses (n))
		return NULL;
	p = (size_t *) ((char *) q - 8);
	old = p[0];
	p = __real_realloc (p, n + 8);
	if (p == NULL)
		return NULL;
	p[0] = n;
	account ((long) n - (long) old);
	return (char *) p + 8;
}

/* -------------------------------------------------------------- checks */

static int n_pass, n_fail;

static void check (int ok, const char * name, const char * detail)
{
	printf ("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, detail && *detail ? ": " : "", detail ? detail : "");
	if (ok)
		n_pass++;
	else
		n_fail++;
}

/* ------------------------------------------------------------- hooks */

struct mutex { int locked; };
static int mutexes, mutex_locks, mutex_errors;

static noPollPtr mx_create (void)
{
	struct mutex * m = calloc (1, sizeof (*m));
	if (m)
		mutexes++;
	return m;
}

static void mx_destroy (noPollPtr p)
{
	struct mutex * m = p;
	if (m->locked)
		mutex_errors++;
	mutexes--;
	free (m);
}

static void mx_lock (noPollPtr p)
{
	struct mutex * m = p;
	if (m->locked)        /* one thread: a second lock would deadlock */
		mutex_errors++;
	m->locked = 1;
	mutex_locks++;
}

static void mx_unlock (noPollPtr p)
{
	struct mutex * m = p;
	if (! m->locked)
		mutex_errors++;
	m->locked = 0;
}

static unsigned long rng_state = 0x9e3779b9UL;

static void rng (unsigned char * buf, size_t len)
{
	while (len--) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 17;
		rng_state ^= rng_state << 5;
		*buf++ = (unsigned char) (rng_state >> 7);
	}
}

/* -------------------------------------------------------------- server */

static noPollCtx * srv;
static int srv_closed, srv_close_status;
static char srv_close_reason[32];

static void srv_on_close (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	const char * r = nopoll_conn_get_close_reason (conn);
	(void) ctx; (void) user_data;
	srv_closed++;
	srv_close_status = nopoll_conn_get_close_status (conn);
	snprintf (srv_close_reason, sizeof (srv_close_reason), "%s", r ? r : "");
}

static nopoll_bool srv_on_open (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx; (void) user_data;
	nopoll_conn_set_on_close (conn, srv_on_close, NULL);
	return nopoll_true;
}

static void srv_on_msg (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * p = (const char *) nopoll_msg_get_payload (msg);
	long n = nopoll_msg_get_payload_size (msg);
	(void) ctx; (void) user_data;
	if (p == NULL)
		p = "";
	if (nopoll_msg_opcode (msg) == NOPOLL_TEXT_FRAME && n > 10 && memcmp (p, "cmd:close ", 10) == 0) {
		char reason[32];
		int code = atoi (p + 10);
		const char * r = strchr (p + 10, ' ');
		snprintf (reason, sizeof (reason), "%.*s", r ? (int) (n - (r + 1 - p)) : 0, r ? r + 1 : "");
		nopoll_conn_close_ext (conn, code, reason, (int) strlen (reason));
		return;
	}
	if (nopoll_msg_opcode (msg) == NOPOLL_TEXT_FRAME && n == 8 && memcmp (p, "cmd:ping", 8) == 0) {
		nopoll_conn_send_ping (conn);
		return;
	}
	if (nopoll_msg_opcode (msg) == NOPOLL_BINARY_FRAME)
		nopoll_conn_send_binary (conn, p, n);
	else
		nopoll_conn_send_text (conn, p, n);
}

/* One round of the server's loop: everything ready, then 1 ms. */
static void pump (void)
{
	nopoll_loop_wait (srv, 1000);
}

/* ------------------------------------------------------------- clients */

static noPollCtx * cli;

static noPollConn * connect_client (void)
{
	noPollConn * c = nopoll_conn_new (cli, "127.0.0.1", PORT, NULL, "/mcu", NULL, NULL);
	int i;
	for (i = 0; c != NULL && i < 200 && ! nopoll_conn_is_ready (c); i++)
		pump ();
	return c;
}

static void flush (noPollConn * c)
{
	int i;
	for (i = 0; i < 2000 && nopoll_conn_pending_write_bytes (c) > 0; i++) {
		nopoll_conn_complete_pending_write (c);
		pump ();
	}
}

/* Pumps the server and reads `c` (dropping what comes) until `c` is
 * closed, for at most `rounds` rounds. */
static void until_closed (noPollConn * c, int rounds)
{
	int i;
	for (i = 0; i < rounds && nopoll_conn_is_ok (c); i++) {
		noPollMsg * m;
		pump ();
		m = nopoll_conn_get_msg (c);
		if (m)
			nopoll_msg_unref (m);
	}
}

/* The next whole message on `c`, pumping the server meanwhile. */
static noPollMsg * next_msg (noPollConn * c)
{
	int i;
	for (i = 0; i < 5000 && nopoll_conn_is_ok (c); i++) {
		noPollMsg * m;
		nopoll_conn_complete_pending_write (c);
		pump ();
		m = nopoll_conn_get_msg (c);
		if (m != NULL)
			return m;
	}
	return NULL;
}

static char * payload;

static void fill (long n, int text, unsigned seed)
{
	long i;
	for (i = 0; i < n; i++)
		payload[i] = text ? (char) ('a' + (i * 7 + seed) % 26) : (char) ((i * 31 + seed) & 0xff);
}

static long msg_peak;

static int echo (noPollConn * c, long n, int text)
{
	noPollMsg * m;
	int rc, ok;
	long before = heap_now;
	heap_peak = heap_now;
	fill (n, text, (unsigned) n);
	rc = text ? nopoll_conn_send_text (c, payload, n) : nopoll_conn_send_binary (c, payload, n);
	if (rc < 0 && rc != -2)
		return 0;
	flush (c);
	m = next_msg (c);
	ok = m != NULL
		&& nopoll_msg_opcode (m) == (text ? NOPOLL_TEXT_FRAME : NOPOLL_BINARY_FRAME)
		&& nopoll_msg_get_payload_size (m) == n
		&& (n == 0 || memcmp (nopoll_msg_get_payload (m), payload, (size_t) n) == 0);
	if (m)
		nopoll_msg_unref (m);
	if (heap_peak - before > msg_peak)
		msg_peak = heap_peak - before;
	return ok;
}

/* ------------------------------------------------------------ raw peer */

static int raw_connect (void)
{
	struct { unsigned short f, p; unsigned char a[4], z[8]; } in;
	int s = memsock_ops.socket (MS_AF_INET, MS_SOCK_STREAM, 0);
	memset (&in, 0, sizeof (in));
	in.f = MS_AF_INET;
	in.p = (unsigned short) ((8080 >> 8) | ((8080 & 0xff) << 8));
	in.a[0] = 127; in.a[3] = 1;
	if (s < 0 || memsock_ops.connect (s, (const struct sockaddr *) &in, sizeof (in)) != 0)
		return -1;
	return s;
}

static int raw_send (int s, const void * b, size_t n)
{
	size_t done = 0;
	int i;
	for (i = 0; done < n && i < 1000; i++) {
		ssize_t w = memsock_ops.send (s, (const char *) b + done, n - done, 0);
		if (w > 0)
			done += (size_t) w;
		else
			pump ();
	}
	return done == n ? 0 : -1;
}

/* Exactly n bytes; -1 on EOF or when none come. */
static int raw_recv (int s, void * b, size_t n)
{
	size_t got = 0;
	int i;
	for (i = 0; got < n && i < 1000; i++) {
		ssize_t r = memsock_ops.recv (s, (char *) b + got, n - got, 0);
		if (r == 0)
			return -1;
		if (r > 0)
			got += (size_t) r;
		else
			pump ();
	}
	return got == n ? 0 : -1;
}

/* A masked frame from the raw client. */
static int raw_frame (int s, int op, const char * p, size_t n)
{
	unsigned char f[2 + 4 + 125];
	static const unsigned char key[4] = { 0x12, 0x34, 0x56, 0x78 };
	size_t i;
	f[0] = (unsigned char) (0x80 | op);
	f[1] = (unsigned char) (0x80 | n);
	memcpy (f + 2, key, 4);
	for (i = 0; i < n; i++)
		f[6 + i] = (unsigned char) (p[i] ^ key[i % 4]);
	return raw_send (s, f, 6 + n);
}

static void check_raw_peer (void)
{
	static const char req[] =
		"GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	char head[512];
	unsigned char fr[16];
	size_t got = 0;
	int s = raw_connect (), ok;
	ok = s >= 0 && raw_send (s, req, sizeof (req) - 1) == 0;
	while (ok && got < sizeof (head) - 1) {
		if (raw_recv (s, head + got, 1) != 0) {
			ok = 0;
			break;
		}
		head[++got] = '\0';
		if (got >= 4 && memcmp (head + got - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	check (ok && strncmp (head, "HTTP/1.1 101", 12) == 0 && strstr (head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != NULL,
	       "raw peer handshake (RFC 6455 sample key)", ok ? "" : "no answer");
	ok = raw_frame (s, 0x9, "mcu!", 4) == 0 && raw_recv (s, fr, 6) == 0
		&& fr[0] == 0x8a && fr[1] == 4 && memcmp (fr + 2, "mcu!", 4) == 0;
	check (ok, "pong answers the peer's ping", "");
	ok = raw_frame (s, 0x1, "cmd:ping", 8) == 0 && raw_recv (s, fr, 2) == 0 && fr[0] == 0x89 && fr[1] == 0;
	check (ok, "ping from nopoll_conn_send_ping seen by the peer", "");
	ok = raw_frame (s, 0x8, "\x03\xe8", 2) == 0 && raw_recv (s, fr, 4) == 0
		&& fr[0] == 0x88 && fr[1] == 2 && fr[2] == 0x03 && fr[3] == 0xe8;
	check (ok, "close 1000 from the peer is answered", "");
	if (s >= 0)
		memsock_ops.close (s);
}

/* A peer that connects and says nothing is dropped after the handshake
 * timeout of the server's ctx, on the virtual clock. */
static void check_handshake_timeout (void)
{
	char buf[64], d[96];
	unsigned long t0 = memsock_now_ms (), closed_at = 0, half_open = 0;
	int s = raw_connect (), i;
	for (i = 0; s >= 0 && i < 20000 && closed_at == 0; i++) {
		ssize_t r;
		pump ();
		r = memsock_ops.recv (s, buf, sizeof (buf), 0);
		if (r == 0)
			closed_at = memsock_now_ms ();
		else if (memsock_now_ms () - t0 < HS_TIMEOUT_MS / 2)
			half_open = memsock_now_ms () - t0;
	}
	snprintf (d, sizeof (d), "open at %lu ms, dropped at %lu ms (timeout %lu ms)",
		  half_open, closed_at ? closed_at - t0 : 0, HS_TIMEOUT_MS);
	check (s >= 0 && closed_at != 0 && half_open > 0
	       && closed_at - t0 >= HS_TIMEOUT_MS && closed_at - t0 <= HS_TIMEOUT_MS + 1500,
	       "silent peer dropped after the handshake timeout (clock hook)", d);
	if (s >= 0)
		memsock_ops.close (s);
}

/* Lets the closes finish, closes the listener, drops both contexts. */
static void teardown (noPollConn * listener)
{
	int i;
	for (i = 0; i < 20; i++)
		pump ();
	nopoll_conn_close (listener);
	for (i = 0; i < 5; i++)
		pump ();
	nopoll_ctx_unref (cli);
	nopoll_ctx_unref (srv);
}

/* A whole second server/client life: ctx, listener, client, echo, close. */
static void second_cycle (void)
{
	noPollConn * l, * c;
	srv = nopoll_ctx_new ();
	cli = nopoll_ctx_new ();
	l = nopoll_listener_new (srv, "127.0.0.1", PORT);
	nopoll_ctx_set_on_msg (srv, srv_on_msg, NULL);
	c = connect_client ();
	payload = malloc (64);
	if (c != NULL && payload != NULL)
		check (echo (c, 64, 1), "second cycle: echo", "");
	if (c)
		nopoll_conn_close (c);
	teardown (l);
	free (payload);
}

/* Settings for a 64 KB-RAM part (README, "Firmware"). */
static void small_settings (noPollCtx * ctx)
{
	nopoll_ctx_set_recv_buffer_size (ctx, 1024);
	nopoll_ctx_set_max_message_size (ctx, 4096);
	nopoll_ctx_set_max_frame_size (ctx, 4096);
	nopoll_ctx_set_max_pending_output (ctx, 8192);
	nopoll_ctx_set_max_idle_buffers (ctx, 0);
}

/* A server with four idle clients under those settings, then a 4 KiB
 * echo: the heap both take (server and clients in one heap). */
static void small_part (long * idle, long * peak)
{
	noPollConn * l, * c[4];
	long base = heap_now;
	int i, ok = 1;
	heap_peak = heap_now;
	srv = nopoll_ctx_new ();
	cli = nopoll_ctx_new ();
	small_settings (srv);
	small_settings (cli);
	l = nopoll_listener_new (srv, "127.0.0.1", PORT);
	nopoll_ctx_set_on_msg (srv, srv_on_msg, NULL);
	for (i = 0; i < 4; i++) {
		c[i] = connect_client ();
		ok = ok && c[i] != NULL && nopoll_conn_is_ready (c[i]);
	}
	for (i = 0; i < 5; i++)
		pump ();
	*idle = heap_now - base;
	payload = malloc (4096);
	ok = ok && payload != NULL && echo (c[0], 4096, 0) && echo (c[3], 4096, 1);
	check (ok, "64 KB-part settings: four clients, 4 KiB echo", "");
	*peak = heap_peak - base - 4096;
	free (payload);
	for (i = 0; i < 4; i++)
		if (c[i])
			nopoll_conn_close (c[i]);
	teardown (l);
}

/* ---------------------------------------------------------------- main */

int main (void)
{
	static const long sizes[] = { 0, 1, 125, 126, 1000, 4096, 16384, 40960 };
	noPollConn * listener, * c, * c2;
	long h_base, h_client, h_pair, h_loop, h_ctx, h_globals, small_idle = 0, small_peak = 0;
	char d[160];
	unsigned i;
	int ok;

	printf ("MCU: nopoll test firmware on %s\n",
#if defined(__ARM_ARCH_7EM__)
		"Cortex-M4F (mps2-an386)"
#else
		"Cortex-M3 (mps2-an385)"
#endif
		);
#if defined(MCU_SELFTEST_FAULT)
	/* run.sh checks that a fault fails the run */
	*(volatile unsigned long *) 0xFFFFFFF0UL = 1;
#endif
#if defined(MCU_SELFTEST_HANG)
	/* run.sh checks that a firmware that never exits fails the run */
	for (;;)
		;
#endif
	payload = malloc (MAX_ECHO + 1);
	check (nopoll_install_socket_ops (&memsock_ops), "nopoll_install_socket_ops", "");
	nopoll_install_clock (memsock_now_ms);
	nopoll_install_random (rng);
	nopoll_thread_handlers (mx_create, mx_destroy, mx_lock, mx_unlock);

	h_base = heap_now;
	srv = nopoll_ctx_new ();
	h_ctx = heap_now - h_base;
	listener = nopoll_listener_new (srv, "127.0.0.1", PORT);
	check (nopoll_conn_is_ok (listener), "listener on 127.0.0.1:" PORT, "");
	nopoll_ctx_set_on_msg (srv, srv_on_msg, NULL);
	nopoll_ctx_set_on_open (srv, srv_on_open, NULL);
	nopoll_ctx_set_handshake_timeout (srv, (long) HS_TIMEOUT_MS * 1000L);
	cli = nopoll_ctx_new ();

	/* the loop's own buffers: its first round (peak: the receive buffer
	 * lives while the loop runs) */
	h_base = heap_now;
	heap_peak = heap_now;
	pump ();
	h_loop = heap_peak - h_base;

	h_base = heap_now;
	c = nopoll_conn_new (cli, "127.0.0.1", PORT, NULL, "/mcu", NULL, NULL);
	h_client = heap_now - h_base;
	for (i = 0; c != NULL && i < 200 && ! nopoll_conn_is_ready (c); i++)
		pump ();
	pump ();
	h_pair = heap_now - h_base;
	check (c != NULL && nopoll_conn_is_ready (c), "handshake (client and server inside the MCU)", "");

	for (i = 0; i < sizeof (sizes) / sizeof (sizes[0]); i++) {
		snprintf (d, sizeof (d), "text echo, %ld bytes", sizes[i]);
		check (echo (c, sizes[i], 1), d, "");
		snprintf (d, sizeof (d), "binary echo, %ld bytes", sizes[i]);
		check (echo (c, sizes[i], 0), d, "");
	}

	ok = nopoll_conn_send_ping (c) && echo (c, 5, 1);
	check (ok, "nopoll_conn_send_ping, then echo (pong swallowed)", "");

	check_raw_peer ();

	/* close from the client: the server sees the code and reason */
	srv_closed = 0;
	nopoll_conn_close_ext (c, 4001, "client bye", 10);
	for (i = 0; i < 100 && srv_closed == 0; i++)
		pump ();
	snprintf (d, sizeof (d), "server saw %d \"%s\"", srv_close_status, srv_close_reason);
	check (srv_closed == 1 && srv_close_status == 4001 && strcmp (srv_close_reason, "client bye") == 0,
	       "close code client -> server", d);

	/* close from the server */
	c = connect_client ();
	ok = c != NULL && nopoll_conn_is_ready (c) && nopoll_conn_send_text (c, "cmd:close 4002 server bye", 25) == 25;
	if (ok)
		until_closed (c, 200);
	snprintf (d, sizeof (d), "client saw %d \"%s\"", c ? nopoll_conn_get_close_status (c) : -1,
		  c && nopoll_conn_get_close_reason (c) ? nopoll_conn_get_close_reason (c) : "");
	check (ok && ! nopoll_conn_is_ok (c) && nopoll_conn_get_close_status (c) == 4002
	       && strcmp (nopoll_conn_get_close_reason (c), "server bye") == 0, "close code server -> client", d);
	if (c)
		nopoll_conn_close (c);

	check_handshake_timeout ();

	/* a message over the server's limit: closed with 1009 (the message
	 * fits the socket buffer: no send of the client fails first) */
	nopoll_ctx_set_max_frame_size (srv, 512);
	c2 = connect_client ();
	ok = c2 != NULL && nopoll_conn_is_ready (c2);
	if (ok) {
		fill (900, 1, 3);
		nopoll_conn_send_text (c2, payload, 900);
		flush (c2);
		until_closed (c2, 500);
	}
	snprintf (d, sizeof (d), "client saw %d", c2 ? nopoll_conn_get_close_status (c2) : -1);
	check (ok && nopoll_conn_get_close_status (c2) == 1009, "message over the size limit: close 1009", d);
	if (c2)
		nopoll_conn_close (c2);

	/* a message the server's heap cannot hold when it is copied out for
	 * its handler: closed with 1009 and a close frame (not a hard fault,
	 * not a message lost in silence); while the server reads it, the
	 * heap refuses blocks of 450 to 999 bytes: the message's size, not
	 * that of the loop's or the connection's buffers (KiB) */
	c2 = connect_client ();
	ok = c2 != NULL && nopoll_conn_is_ready (c2);
	if (ok) {
		fill (450, 1, 5);
		ok = nopoll_conn_send_text (c2, payload, 450) == 450;
		flush (c2);
		heap_refused = 0;
		heap_refuse_from = 450;
		heap_refuse_to = 1000;
		for (i = 0; i < 50; i++)
			pump ();
		heap_refuse_from = 0;
		until_closed (c2, 500);
	}
	snprintf (d, sizeof (d), "client saw %d, %ld allocations refused", c2 ? nopoll_conn_get_close_status (c2) : -1,
		  heap_refused);
	check (ok && heap_refused > 0 && ! nopoll_conn_is_ok (c2) && nopoll_conn_get_close_status (c2) == 1009,
	       "no memory to copy a message out: close 1009", d);
	if (c2)
		nopoll_conn_close (c2);

	/* tear down: every socket closed, every lock released */
	teardown (listener);
	snprintf (d, sizeof (d), "%d open, %d lock errors, %d locks taken", memsock_open_count (), mutex_errors, mutex_locks);
	check (memsock_open_count () == 0 && mutex_errors == 0 && mutex_locks > 0,
	       "teardown: no socket left open, locks balanced (mutex hooks used)", d);
	free (payload);
	payload = NULL;
	/* What stays is the library's global tables (handles, ...), whose
	 * capacity follows the most handles alive at once; repeating the same
	 * cycles must not add to it. */
	second_cycle ();
	small_part (&small_idle, &small_peak);
	h_globals = heap_now;
	second_cycle ();
	small_part (&small_idle, &small_peak);
	snprintf (d, sizeof (d), "%ld bytes in %ld blocks after the cycles, %ld after the same again",
		  h_globals, heap_blocks, heap_now);
	check (heap_now == h_globals && h_globals < 1024, "no heap growth from repeating the cycles (no leak)", d);

	printf ("MCU RAM: ctx %ld B; loop round %ld B; client conn %ld B; client + server conn idle %ld B; "
		"per-message peak (40 KiB echo) %ld B; library globals %ld B; heap peak %ld B; "
		"stack high-water %lu of %lu B\n",
		h_ctx, h_loop, h_client, h_pair, msg_peak, h_globals, heap_peak_all, mcu_stack_high_water (), mcu_stack_size ());
	printf ("MCU RAM (64 KB-part settings): server + 4 idle clients (2 ctx, listener, 8 conns, loop) %ld B; "
		"peak with a 4 KiB message in flight %ld B\n", small_idle, small_peak);
	printf ("MCU: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail == 0 && n_pass > 0 ? 0 : 1;
}
