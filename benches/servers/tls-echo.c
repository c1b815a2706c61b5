/* tls-echo: a plain TLS echo server on OpenSSL, the wss:// ceiling of the
 * benchmark suite (no WebSocket at all: decrypted bytes go straight back).
 *
 *   tls-echo PORT CERT KEY     (listens on 127.0.0.1; PORT 0 picks one)
 *
 * One thread, level-triggered epoll, non-blocking SSL_accept, then
 * SSL_read until it wants more and SSL_write of each piece read. When the
 * peer does not take an echo at once, the rest is kept and the socket is
 * not read again until it has been written (no unbounded buffering).
 * OpenSSL is set up the way our listener sets it up (src/tls/openssl.rs):
 * TLS 1.2 minimum, partial writes, moving write buffer, record buffers
 * released when idle (SSL_MODE_RELEASE_BUFFERS), the default session
 * cache. So an idle connection holds what OpenSSL itself needs for an
 * idle SSL*: the ceiling for memory per idle TLS connection too.
 * SIGINT/SIGTERM stop it. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define BUF (256 * 1024)

struct conn {
	SSL *ssl;
	int open;          /* handshake done */
	char *data;        /* echo bytes the peer has not taken yet */
	size_t len, pos;
};

static volatile sig_atomic_t stop;
static void on_signal (int s) { (void) s; stop = 1; }

static struct conn *conns;
static int nconns;
static char buf[BUF];

static void track (int fd)
{
	if (fd >= nconns) {
		int n = fd * 2 + 64;
		conns = realloc (conns, n * sizeof *conns);
		if (!conns)
			abort ();
		memset (conns + nconns, 0, (n - nconns) * sizeof *conns);
		nconns = n;
	}
}

static void want (int ep, int fd, unsigned events)
{
	struct epoll_event ev = { events, { .fd = fd } };
	epoll_ctl (ep, EPOLL_CTL_MOD, fd, &ev);
}

static void drop (int ep, int fd)
{
	struct conn *c = &conns[fd];
	epoll_ctl (ep, EPOLL_CTL_DEL, fd, NULL);
	SSL_free (c->ssl);
	free (c->data);
	memset (c, 0, sizeof *c);
	close (fd);
}

/* Writes what is pending. 1 = all written, 0 = wait for the socket,
 * -1 = drop. */
static int flush (int ep, int fd)
{
	struct conn *c = &conns[fd];
	while (c->pos < c->len) {
		int n = SSL_write (c->ssl, c->data + c->pos, (int) (c->len - c->pos));
		if (n <= 0) {
			int e = SSL_get_error (c->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				want (ep, fd, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
				return 0;
			}
			return -1;
		}
		c->pos += n;
	}
	free (c->data);
	c->data = NULL;
	c->len = c->pos = 0;
	return 1;
}

/* Echoes len bytes of buf; keeps (copies) what the socket does not take. */
static int echo (int ep, int fd, size_t len)
{
	struct conn *c = &conns[fd];
	size_t pos = 0;
	while (pos < len) {
		int n = SSL_write (c->ssl, buf + pos, (int) (len - pos));
		if (n <= 0) {
			int e = SSL_get_error (c->ssl, n);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
				return -1;
			c->data = malloc (len - pos);
			if (!c->data)
				return -1;
			memcpy (c->data, buf + pos, len - pos);
			c->len = len - pos;
			c->pos = 0;
			want (ep, fd, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
			return 0;
		}
		pos += n;
	}
	return 1;
}

/* Reads and echoes until OpenSSL wants more from the socket. */
static void serve (int ep, int fd)
{
	struct conn *c = &conns[fd];
	if (!c->open) {
		int r = SSL_accept (c->ssl);
		if (r != 1) {
			int e = SSL_get_error (c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				want (ep, fd, EPOLLIN);
			else if (e == SSL_ERROR_WANT_WRITE)
				want (ep, fd, EPOLLOUT);
			else
				drop (ep, fd);
			return;
		}
		c->open = 1;
	}
	if (c->data) {
		int r = flush (ep, fd);
		if (r < 0)
			drop (ep, fd);
		if (r <= 0)
			return;
		want (ep, fd, EPOLLIN);
	}
	for (;;) {
		int n = SSL_read (c->ssl, buf, BUF);
		if (n <= 0) {
			int e = SSL_get_error (c->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				return;
			if (e == SSL_ERROR_WANT_WRITE) {
				want (ep, fd, EPOLLOUT);
				return;
			}
			drop (ep, fd);
			return;
		}
		{
			int r = echo (ep, fd, (size_t) n);
			if (r < 0)
				drop (ep, fd);
			if (r <= 0)
				return;
		}
	}
}

int main (int argc, char **argv)
{
	struct epoll_event evs[512];
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	struct rlimit rl;
	SSL_CTX *ctx;
	int one = 1, ls, ep;

	if (argc < 4) {
		fprintf (stderr, "usage: tls-echo PORT CERT KEY\n");
		return 2;
	}
	getrlimit (RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit (RLIMIT_NOFILE, &rl);
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);
	signal (SIGPIPE, SIG_IGN);

	ctx = SSL_CTX_new (TLS_server_method ());
	if (!ctx || !SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION)
	    || SSL_CTX_use_certificate_chain_file (ctx, argv[2]) != 1
	    || SSL_CTX_use_PrivateKey_file (ctx, argv[3], SSL_FILETYPE_PEM) != 1
	    || SSL_CTX_check_private_key (ctx) != 1) {
		ERR_print_errors_fp (stderr);
		fprintf (stderr, "tls-echo: cannot use certificate %s and key %s\n", argv[2], argv[3]);
		return 1;
	}
	SSL_CTX_set_mode (ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
			  | SSL_MODE_RELEASE_BUFFERS);

	ls = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt (ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset (&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons (atoi (argv[1]));
	a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	if (bind (ls, (struct sockaddr *) &a, sizeof a) < 0 || listen (ls, 1024) < 0
	    || getsockname (ls, (struct sockaddr *) &a, &alen) < 0) {
		perror ("tls-echo: listen");
		return 1;
	}
	ep = epoll_create1 (EPOLL_CLOEXEC);
	{
		struct epoll_event ev = { EPOLLIN, { .fd = ls } };
		epoll_ctl (ep, EPOLL_CTL_ADD, ls, &ev);
	}
	printf ("tls-echo: ready on 127.0.0.1:%d\n", ntohs (a.sin_port));
	fflush (stdout);

	while (!stop) {
		int i, n = epoll_wait (ep, evs, 512, -1);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				for (;;) {
					int c = accept4 (ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					struct epoll_event ev = { EPOLLIN, { .fd = c } };
					if (c < 0)
						break;
					setsockopt (c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					track (c);
					conns[c].ssl = SSL_new (ctx);
					if (!conns[c].ssl || !SSL_set_fd (conns[c].ssl, c)) {
						SSL_free (conns[c].ssl);
						conns[c].ssl = NULL;
						close (c);
						continue;
					}
					epoll_ctl (ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			if (conns[fd].ssl)
				serve (ep, fd);
		}
	}
	close (ep);
	close (ls);
	SSL_CTX_free (ctx);
	return 0;
}
