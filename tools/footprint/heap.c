/* heap: the heap a nopoll connection costs, idle and with a 64 KiB message
 * in flight, server side and client side.
 *
 *   heap [N]        (default 100 client connections; at most 4000)
 *
 * Linked with -Wl,--wrap=malloc,--wrap=free,--wrap=realloc,--wrap=calloc,
 * --wrap=posix_memalign,--wrap=aligned_alloc (see run.sh): every block the
 * library (and this program) allocates gets a 16-byte header recording its
 * size and owner, so that live bytes are known at any time, per owner:
 *   server   allocated while the server context runs (its creation, its
 *            event loop: accepts, handshakes, reads, echoes),
 *   client   allocated while client calls run (nopoll_conn_new, is_ready,
 *            send, get_msg).
 * One thread drives both sides in turn: the server with nopoll_loop_wait
 * slices of 2 ms, the clients with non-blocking calls. So this works the
 * same for the std and the no-std build (built with -DFOOTPRINT_SOCKET_OPS,
 * it installs socket_ops.c's table first).
 *
 * "bytes" are the sizes asked of malloc; "chunk" is what glibc's malloc
 * really uses for them on x86_64 (size + 8 rounded up to 16, at least 32):
 * the 16-byte header added here is in neither.
 *
 * Output: one `key value` line per measurement (read by run.sh), then a
 * summary. Bounded: alarm(60) aborts a stuck run. */
#define _GNU_SOURCE
#include <nopoll.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#ifdef FOOTPRINT_SOCKET_OPS
extern const noPollSocketOps footprint_socket_ops;
#endif

/* ------------------------------------------------------------ accounting */

enum { OTHER = 0, SERVER = 1, CLIENT = 2, OWNERS = 3 };
static const char * owner_name[OWNERS] = { "other", "server", "client" };

struct account {
	long live, live_chunk, blocks, peak, peak_chunk, allocs;
};
static struct account tally[OWNERS];
static long foreign_frees;
static __thread int owner = OTHER;
static size_t trace_min;        /* HEAP_TRACE=BYTES: log blocks of that size and more */
static int phase_tag;           /* printed with traced blocks */

#define MAGIC 0x6e6f706cU   /* "nopl" */
struct hdr {
	size_t   size;
	uint32_t magic;
	uint16_t owner;
	uint16_t offset;        /* from the start of the real block to the user pointer */
};
typedef char hdr_is_16_bytes[sizeof (struct hdr) == 16 ? 1 : -1];

void * __real_malloc (size_t);
void * __real_calloc (size_t, size_t);
void * __real_realloc (void *, size_t);
void   __real_free (void *);
int    __real_posix_memalign (void **, size_t, size_t);

static long chunk_of (size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t) 15;
	return (long) (c < 32 ? 32 : c);
}

/* Single-threaded by design, but a library thread would still be counted
 * right: atomics. */
static void account_add (int who, size_t n, int sign)
{
	struct account * a = &tally[who];
	long live  = __atomic_add_fetch (&a->live, sign * (long) n, __ATOMIC_RELAXED);
	long chunk = __atomic_add_fetch (&a->live_chunk, sign * chunk_of (n), __ATOMIC_RELAXED);
	__atomic_add_fetch (&a->blocks, sign, __ATOMIC_RELAXED);
	if (sign > 0) {
		long p;
		__atomic_add_fetch (&a->allocs, 1, __ATOMIC_RELAXED);
		p = __atomic_load_n (&a->peak, __ATOMIC_RELAXED);
		while (live > p && ! __atomic_compare_exchange_n (&a->peak, &p, live, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
		p = __atomic_load_n (&a->peak_chunk, __ATOMIC_RELAXED);
		while (chunk > p && ! __atomic_compare_exchange_n (&a->peak_chunk, &p, chunk, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
}

static void * finish (char * raw, size_t offset, size_t n, int trace)
{
	struct hdr * h;
	if (raw == NULL)
		return NULL;
	h = (struct hdr *) (raw + offset) - 1;
	h->size = n;
	h->magic = MAGIC;
	h->owner = (uint16_t) owner;
	h->offset = (uint16_t) offset;
	account_add (owner, n, 1);
	if (trace && trace_min != 0 && n >= trace_min)
		fprintf (stderr, "trace phase %d %s alloc %zu at %p\n", phase_tag, owner_name[owner], n, (void *) (raw + offset));
	return raw + offset;
}

static struct hdr * header_of (void * p)
{
	struct hdr * h = (struct hdr *) p - 1;
	return h->magic == MAGIC ? h : NULL;
}

void * __wrap_malloc (size_t n)
{
	if (n > SIZE_MAX - 16)
		return NULL;
	return finish (__real_malloc (n + 16), 16, n, 1);
}

void * __wrap_calloc (size_t count, size_t size)
{
	size_t n;
	if (size != 0 && count > (SIZE_MAX - 16) / size)
		return NULL;
	n = count * size;
	return finish (__real_calloc (1, n + 16), 16, n, 1);
}

void __wrap_free (void * p)
{
	struct hdr * h;
	if (p == NULL)
		return;
	h = header_of (p);
	if (h == NULL) {        /* not ours (allocated by libc itself): pass on */
		__atomic_add_fetch (&foreign_frees, 1, __ATOMIC_RELAXED);
		__real_free (p);
		return;
	}
	account_add (h->owner, h->size, -1);
	if (trace_min != 0 && h->size >= trace_min)
		fprintf (stderr, "trace phase %d %s free %zu at %p\n", phase_tag, owner_name[h->owner], h->size, p);
	h->magic = 0;
	__real_free ((char *) p - h->offset);
}

void * __wrap_realloc (void * p, size_t n)
{
	struct hdr * h;
	size_t old;
	int old_owner;
	char * raw;
	if (p == NULL)
		return __wrap_malloc (n);
	if (n == 0) {
		__wrap_free (p);
		return NULL;
	}
	h = header_of (p);
	if (h == NULL)
		return __real_realloc (p, n);
	if (h->offset != 16 || n > SIZE_MAX - 16) {
		/* an over-aligned block: move it by hand */
		void * q = __wrap_malloc (n);
		if (q == NULL)
			return NULL;
		memcpy (q, p, h->size < n ? h->size : n);
		__wrap_free (p);
		return q;
	}
	old = h->size;
	old_owner = h->owner;
	raw = __real_realloc ((char *) p - 16, n + 16);
	if (raw == NULL)
		return NULL;
	account_add (old_owner, old, -1);
	if (trace_min != 0 && (old >= trace_min || n >= trace_min))
		fprintf (stderr, "trace phase %d %s realloc %zu -> %zu (%p)\n", phase_tag, owner_name[owner], old, n, p);
	return finish (raw, 16, n, 0);
}

int __wrap_posix_memalign (void ** out, size_t align, size_t n)
{
	void * raw = NULL;
	size_t offset = align > 16 ? align : 16;
	int rc;
	if (align > 32768 || n > SIZE_MAX - offset)
		return ENOMEM;
	rc = __real_posix_memalign (&raw, align < sizeof (void *) ? sizeof (void *) : align, n + offset);
	if (rc != 0)
		return rc;
	*out = finish (raw, offset, n, 1);
	return 0;
}

void * __wrap_aligned_alloc (size_t align, size_t n)
{
	void * p = NULL;
	return __wrap_posix_memalign (&p, align, n) == 0 ? p : NULL;
}

/* ------------------------------------------------------------ the run */

#define MAX_CONNS 4000
#define BIG       65536

static noPollCtx  * sctx, * cctx;
static noPollConn * clients[MAX_CONNS];
static noPollConn * servers[MAX_CONNS];
static int          n_servers;
static long         echoes;

static void fail (const char * what)
{
	fprintf (stderr, "heap: %s\n", what);
	exit (1);
}

static nopoll_bool on_ready (noPollCtx * ctx, noPollConn * conn, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	if (n_servers < MAX_CONNS)
		servers[n_servers++] = conn;
	return nopoll_true;
}

static void on_message (noPollCtx * ctx, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	(void) ctx;
	(void) user_data;
	echoes++;
	nopoll_conn_send_binary (conn, (const char *) nopoll_msg_get_payload (msg), nopoll_msg_get_payload_size (msg));
}

/* One slice of the server's loop (2 ms), counted as the server's. */
static void serve (void)
{
	int saved = owner;
	owner = SERVER;
	nopoll_loop_wait (sctx, 2000);
	owner = saved;
}

static long live (int who)
{
	return __atomic_load_n (&tally[who].live, __ATOMIC_RELAXED);
}

static long live_chunk (int who)
{
	return __atomic_load_n (&tally[who].live_chunk, __ATOMIC_RELAXED);
}

static void reset_peaks (void)
{
	int i;
	for (i = 0; i < OWNERS; i++) {
		tally[i].peak = tally[i].live;
		tally[i].peak_chunk = tally[i].live_chunk;
	}
}

/* Serves until every client of [0, n) is ready and the server saw n. */
static void handshake_all (int n)
{
	int tries, i, ready = 0;
	for (tries = 0; tries < 5000 && (ready < n || n_servers < n); tries++) {
		serve ();
		owner = CLIENT;
		for (ready = 0, i = 0; i < n; i++)
			ready += nopoll_conn_is_ready (clients[i]) ? 1 : 0;
		owner = OTHER;
	}
	if (ready < n || n_servers < n)
		fail ("handshakes did not complete");
}

/* A few extra slices so that anything done lazily after a handshake is done. */
static void settle (void)
{
	int i;
	for (i = 0; i < 5; i++)
		serve ();
}

/* Writes all of buf to a non-blocking socket, serving between tries. */
static void write_raw (int fd, const unsigned char * buf, size_t len)
{
	size_t done = 0;
	int tries = 0;
	while (done < len) {
		ssize_t w = send (fd, buf + done, len - done, MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t) w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			fail ("raw send failed");
		if (++tries > 5000)
			fail ("raw send stuck");
		serve ();
	}
}

/* Serves until the server connection has read everything sent to it. */
static void drain_server_socket (noPollConn * sconn)
{
	int fd = nopoll_conn_socket (sconn), queued = 1, tries;
	for (tries = 0; tries < 5000 && queued != 0; tries++) {
		serve ();
		if (ioctl (fd, FIONREAD, &queued) != 0)
			fail ("FIONREAD");
	}
	if (queued != 0)
		fail ("server did not read");
	settle ();
}

/* Serves and reads on the client until one echo of `size` bytes is back. */
static void await_echo (noPollConn * c, long size)
{
	int tries;
	for (tries = 0; tries < 5000; tries++) {
		noPollMsg * m;
		serve ();
		owner = CLIENT;
		if (nopoll_conn_pending_write_bytes (c) > 0)
			nopoll_conn_complete_pending_write (c);
		m = nopoll_conn_get_msg (c);
		if (m != NULL) {
			long got = nopoll_msg_get_payload_size (m);
			nopoll_msg_unref (m);
			owner = OTHER;
			if (got != size)
				fail ("echo of the wrong size");
			return;
		}
		owner = OTHER;
	}
	fail ("no echo");
}

/* A masked client frame header: fin, opcode, 16- or 64-bit length. */
static size_t frame_header (unsigned char * h, int fin, int opcode, unsigned long len, const unsigned char key[4])
{
	size_t n = 0;
	int i;
	h[n++] = (unsigned char) ((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		h[n++] = (unsigned char) (0x80 | len);
	} else if (len < 65536) {
		h[n++] = 0x80 | 126;
		h[n++] = (unsigned char) (len >> 8);
		h[n++] = (unsigned char) len;
	} else {
		h[n++] = 0x80 | 127;
		for (i = 7; i >= 0; i--)
			h[n++] = (unsigned char) (len >> (8 * i));
	}
	memcpy (h + n, key, 4);
	return n + 4;
}

static void mask (unsigned char * p, size_t len, const unsigned char key[4], size_t start)
{
	size_t i;
	for (i = 0; i < len; i++)
		p[i] ^= key[(start + i) & 3];
}

/* The server connection whose peer is client c. */
static noPollConn * server_of (noPollConn * c)
{
	struct sockaddr_in a, b;
	socklen_t la = sizeof a, lb;
	int i;
	if (getsockname (nopoll_conn_socket (c), (struct sockaddr *) &a, &la) != 0)
		fail ("getsockname");
	for (i = 0; i < n_servers; i++) {
		lb = sizeof b;
		if (getpeername (nopoll_conn_socket (servers[i]), (struct sockaddr *) &b, &lb) == 0 && b.sin_port == a.sin_port)
			return servers[i];
	}
	fail ("no server connection for the client");
	return NULL;
}

/* Sends the frame(s) of one 64 KiB message on client c's socket, raw:
 * `split` 0: one frame, the first half sent now; 1: two 32 KiB fragments,
 * the first sent now. Returns after the server read it. send_rest sends
 * the rest. */
static unsigned char big[BIG], frame[BIG + 32];
static const unsigned char key[4] = { 0x12, 0x34, 0x56, 0x78 };

static void send_first_part (noPollConn * c, noPollConn * sconn, int split)
{
	size_t h = split ? frame_header (frame, 0, 2, BIG / 2, key) : frame_header (frame, 1, 2, BIG, key);
	memcpy (frame + h, big, split ? BIG / 2 : BIG);
	mask (frame + h, split ? BIG / 2 : BIG, key, 0);
	write_raw (nopoll_conn_socket (c), frame, h + BIG / 2);
	drain_server_socket (sconn);
}

static void send_rest (noPollConn * c, int split)
{
	int fd = nopoll_conn_socket (c);
	if (split) {
		size_t h = frame_header (frame, 1, 0, BIG / 2, key);
		memcpy (frame + h, big + BIG / 2, BIG / 2);
		mask (frame + h, BIG / 2, key, 0);
		write_raw (fd, frame, h + BIG / 2);
	} else {
		size_t h = frame_header (frame, 1, 2, BIG, key);
		write_raw (fd, frame + h + BIG / 2, BIG / 2);
	}
	await_echo (c, BIG);
}

struct level { long s, sc, c, cc; };

static struct level now (void)
{
	struct level l;
	l.s = live (SERVER); l.sc = live_chunk (SERVER); l.c = live (CLIENT); l.cc = live_chunk (CLIENT);
	return l;
}

/* `key server bytes chunk client bytes chunk`, relative to `base`. */
static void print_delta (const char * name, struct level base, struct level l)
{
	printf ("%s server %ld %ld client %ld %ld\n", name, l.s - base.s, l.sc - base.sc, l.c - base.c, l.cc - base.cc);
}

/* What a running loop holds whatever the traffic (its receive buffer and
 * event array, allocated when nopoll_loop_wait starts): the peak of idle
 * slices over the level between them. Peaks below are reported net of it. */
static struct level loop_own;

static struct level peaks (void);

static void print_peak (const char * name, struct level base)
{
	struct level p = peaks ();
	p.s -= loop_own.s; p.sc -= loop_own.sc; p.c -= loop_own.c; p.cc -= loop_own.cc;
	print_delta (name, base, p);
}

static struct level peaks (void)
{
	struct level l;
	l.s = tally[SERVER].peak; l.sc = tally[SERVER].peak_chunk; l.c = tally[CLIENT].peak; l.cc = tally[CLIENT].peak_chunk;
	return l;
}

/* Client 0 sends `len` bytes of `big` (allocations counted as the
 * client's) and waits for the echo. */
static void echo_from_client0 (long len)
{
	owner = CLIENT;
	if (nopoll_conn_send_binary (clients[0], (const char *) big, len) < 0)
		fail ("send_binary");
	owner = OTHER;
	await_echo (clients[0], len);
}

/* Ends a phase that started at `base`: once things settle, prints the
 * peak as `peak` and what stays as `retained`; returns the new level. */
static struct level end_phase (const char * peak, const char * retained, struct level base)
{
	struct level l;
	settle ();
	print_peak (peak, base);
	l = now ();
	print_delta (retained, base, l);
	return l;
}

int main (int argc, char ** argv)
{
	int n = argc > 1 ? atoi (argv[1]) : 100;
	int i;
	noPollConn * listener;
	struct sockaddr_in addr;
	socklen_t alen = sizeof addr;
	char port[16];
	struct level base, ten, idle, l;
	long base_blocks[2];

	const char * trace = getenv ("HEAP_TRACE");

	if (n < 20 || n > MAX_CONNS)
		fail ("N must be 20..4000");
	alarm (60);
	setvbuf (stdout, NULL, _IOLBF, 0);
	for (i = 0; i < BIG; i++)
		big[i] = (unsigned char) (i * 7);
	phase_tag = 0;
	trace_min = trace != NULL ? (size_t) atol (trace) : 0;

#ifdef FOOTPRINT_SOCKET_OPS
	if (! nopoll_install_socket_ops (&footprint_socket_ops))
		fail ("nopoll_install_socket_ops");
#endif
	owner = SERVER;
	sctx = nopoll_ctx_new ();
	if (sctx == NULL)
		fail ("nopoll_ctx_new");
	listener = nopoll_listener_new (sctx, "127.0.0.1", "0");
	if (! nopoll_conn_is_ok (listener))
		fail ("nopoll_listener_new");
	nopoll_ctx_set_on_ready (sctx, on_ready, NULL);
	nopoll_ctx_set_on_msg (sctx, on_message, NULL);
	if (getsockname (nopoll_conn_socket (listener), (struct sockaddr *) &addr, &alen) != 0)
		fail ("getsockname");
	snprintf (port, sizeof port, "%d", ntohs (addr.sin_port));
	owner = CLIENT;
	cctx = nopoll_ctx_new ();
	owner = OTHER;
	settle ();

	/* Idle connections: the contexts alone, then 10, then n connections. */
	phase_tag = 1;
	base = now ();
	base_blocks[0] = tally[SERVER].blocks;
	base_blocks[1] = tally[CLIENT].blocks;
	printf ("contexts server %ld %ld client %ld %ld\n", base.s, base.sc, base.c, base.cc);
	ten = base;
	for (i = 0; i < n; i++) {
		owner = CLIENT;
		clients[i] = nopoll_conn_new (cctx, "127.0.0.1", port, NULL, NULL, NULL, NULL);
		owner = OTHER;
		if (! nopoll_conn_is_ok (clients[i]))
			fail ("nopoll_conn_new");
		if ((i + 1) % 10 == 0 || i + 1 == n) {
			handshake_all (i + 1);
			if (i + 1 == 10) {
				settle ();
				ten = now ();
			}
		}
	}
	settle ();
	idle = now ();
	printf ("connections %d\n", n);
	print_delta ("idle_all", base, idle);
	printf ("per_conn_avg server %ld %ld client %ld %ld\n",
		(idle.s - base.s) / n, (idle.sc - base.sc) / n, (idle.c - base.c) / n, (idle.cc - base.cc) / n);
	printf ("per_conn_marginal server %ld %ld client %ld %ld\n",
		(idle.s - ten.s) / (n - 10), (idle.sc - ten.sc) / (n - 10),
		(idle.c - ten.c) / (n - 10), (idle.cc - ten.cc) / (n - 10));
	printf ("blocks_per_conn server %ld client %ld\n",
		(tally[SERVER].blocks - base_blocks[0]) / n, (tally[CLIENT].blocks - base_blocks[1]) / n);
	reset_peaks ();
	settle ();
	loop_own = peaks ();
	loop_own.s -= idle.s; loop_own.sc -= idle.sc; loop_own.c -= idle.c; loop_own.cc -= idle.cc;
	printf ("loop_buffers server %ld %ld client %ld %ld\n", loop_own.s, loop_own.sc, loop_own.c, loop_own.cc);

	/* A: one 64 KiB binary message from client 0, echoed (API calls). */
	phase_tag = 2;

	reset_peaks ();
	echo_from_client0 (BIG);
	l = end_phase ("echo_peak", "echo_retained", idle);

	/* B: half of a 64 KiB frame from client 1 received by the server. */
	phase_tag = 3;
	idle = l;
	reset_peaks ();
	send_first_part (clients[1], server_of (clients[1]), 0);
	print_delta ("half_frame", idle, now ());
	send_rest (clients[1], 0);
	l = end_phase ("half_frame_peak", "half_frame_retained", idle);

	/* C: the first 32 KiB fragment of a 64 KiB message from client 2. */
	phase_tag = 4;
	idle = l;
	reset_peaks ();
	send_first_part (clients[2], server_of (clients[2]), 1);
	print_delta ("first_fragment", idle, now ());
	send_rest (clients[2], 1);
	l = end_phase ("fragments_peak", "fragments_retained", idle);

	/* D: client 0 again: a second 64 KiB echo on a connection that had one. */
	phase_tag = 5;
	idle = l;
	reset_peaks ();
	echo_from_client0 (BIG);
	l = end_phase ("echo_again_peak", "echo_again_retained", idle);

	/* E: client 0 then echoes a 100-byte message: are its big buffers
	 * given back? (negative: yes; about 0: still held.) */
	phase_tag = 6;
	echo_from_client0 (100);
	settle ();
	print_delta ("small_after_big", l, now ());

	printf ("echoes %ld\n", echoes);
	printf ("foreign_frees %ld\n", foreign_frees);
	for (i = 0; i < OWNERS; i++)
		fprintf (stderr, "%-6s live %ld B in %ld blocks, %ld allocations in all\n",
			 owner_name[i], tally[i].live, tally[i].blocks, tally[i].allocs);
	return 0;
}
