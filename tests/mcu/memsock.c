/* memsock: the in-memory socket table of the MCU test (see memsock.h). */
#include "memsock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MS_MAX   16
#define MS_FD0   3     /* descriptors MS_FD0 .. MS_FD0 + MS_MAX - 1 */
#define MS_QUEUE 8

/* The library's sockaddr_in and addrinfo (Linux layout, src/sys.rs). */
struct ms_sockaddr_in {
	unsigned short family;        /* host order */
	unsigned short port;          /* network order */
	unsigned char  addr[4];
	unsigned char  zero[8];
};

struct ms_addrinfo {
	int                  ai_flags, ai_family, ai_socktype, ai_protocol;
	unsigned int         ai_addrlen;
	struct sockaddr    * ai_addr;
	char               * ai_canonname;
	struct ms_addrinfo * ai_next;
};

struct ms_sock {
	int            used, type, listening, nonblock;
	int            self_connected;       /* datagram socket sending to itself */
	unsigned short port;
	int            peer;                 /* index of the other end, -1 none */
	int            eof;                  /* the peer sends no more */
	int            wr_shut;
	unsigned char  buf[MS_BUF];          /* received, not yet read */
	unsigned int   head, len;
	int            queue[MS_QUEUE];      /* listener: connected, not accepted */
	int            qlen;
};

static struct ms_sock socks[MS_MAX];
static int            ms_errno_value;
static unsigned long  now_ms = 1000;
static unsigned long  idle_polls;
static unsigned short next_port = 40000;

unsigned long memsock_now_ms (void) { return now_ms; }
void memsock_advance_ms (unsigned long ms) { now_ms += ms; }
unsigned long memsock_idle_polls (void) { return idle_polls; }

int memsock_open_count (void)
{
	int i, n = 0;
	for (i = 0; i < MS_MAX; i++)
		n += socks[i].used;
	return n;
}

static int fail (int e)
{
	ms_errno_value = e;
	return -1;
}

static struct ms_sock * get (int fd)
{
	int i = fd - MS_FD0;
	if (i < 0 || i >= MS_MAX || ! socks[i].used)
		return NULL;
	return &socks[i];
}

static int new_sock (int type)
{
	int i;
	for (i = 0; i < MS_MAX; i++) {
		if (! socks[i].used) {
			memset (&socks[i], 0, sizeof (socks[i]));
			socks[i].used = 1;
			socks[i].type = type;
			socks[i].peer = -1;
			return i;
		}
	}
	return -1;
}

static void fill_addr (struct sockaddr * sa, unsigned int * len, unsigned short port)
{
	struct ms_sockaddr_in in;
	unsigned int n;
	if (sa == NULL || len == NULL)
		return;
	memset (&in, 0, sizeof (in));
	in.family = MS_AF_INET;
	in.port = (unsigned short) (((port & 0xff) << 8) | (port >> 8));
	in.addr[0] = 127; in.addr[3] = 1;
	n = *len < sizeof (in) ? *len : (unsigned int) sizeof (in);
	memcpy (sa, &in, n);
	*len = sizeof (in);
}

static int port_of (const struct sockaddr * sa, unsigned int len, unsigned short * port)
{
	struct ms_sockaddr_in in;
	if (sa == NULL || len < sizeof (in))
		return 0;
	memcpy (&in, sa, sizeof (in));
	if (in.family != MS_AF_INET)
		return 0;
	*port = (unsigned short) (((in.port & 0xff) << 8) | (in.port >> 8));
	return 1;
}

static int ms_socket (int domain, int type, int protocol)
{
	int i, t = type & ~MS_SOCK_FLAGS;
	(void) protocol;
	if (domain != MS_AF_INET || (t != MS_SOCK_STREAM && t != MS_SOCK_DGRAM))
		return fail (MS_EINVAL);
	i = new_sock (t);
	return i < 0 ? fail (MS_EMFILE) : i + MS_FD0;
}

static int ms_bind (int fd, const struct sockaddr * sa, noPollSocklen len)
{
	struct ms_sock * s = get (fd);
	unsigned short port;
	int i;
	if (s == NULL)
		return fail (MS_EBADF);
	if (! port_of (sa, len, &port))
		return fail (MS_EINVAL);
	if (port == 0)
		port = next_port++;
	for (i = 0; i < MS_MAX; i++)
		if (socks[i].used && &socks[i] != s && socks[i].port == port && socks[i].type == s->type)
			return fail (MS_EADDRINUSE);
	s->port = port;
	return 0;
}

static int ms_listen (int fd, int backlog)
{
	struct ms_sock * s = get (fd);
	(void) backlog;
	if (s == NULL || s->type != MS_SOCK_STREAM)
		return fail (MS_EBADF);
	s->listening = 1;
	return 0;
}

static int ms_connect (int fd, const struct sockaddr * sa, noPollSocklen len)
{
	struct ms_sock * s = get (fd);
	unsigned short port;
	int i, srv;
	if (s == NULL)
		return fail (MS_EBADF);
	if (! port_of (sa, len, &port))
		return fail (MS_EINVAL);
	if (s->type == MS_SOCK_DGRAM) {
		if (port != s->port)
			return fail (MS_ECONNREFUSED);
		s->self_connected = 1;
		return 0;
	}
	for (i = 0; i < MS_MAX; i++) {
		struct ms_sock * l = &socks[i];
		if (! l->used || ! l->listening || l->port != port)
			continue;
		if (l->qlen == MS_QUEUE)
			return fail (MS_ECONNREFUSED);
		srv = new_sock (MS_SOCK_STREAM);
		if (srv < 0)
			return fail (MS_EMFILE);
		if (s->port == 0)
			s->port = next_port++;
		socks[srv].port = port;
		socks[srv].peer = (int) (s - socks);
		socks[srv].nonblock = 1;
		s->peer = srv;
		l->queue[l->qlen++] = srv;
		return 0;
	}
	return fail (MS_ECONNREFUSED);
}

static int ms_accept (int fd, struct sockaddr * sa, noPollSocklen * len)
{
	struct ms_sock * l = get (fd);
	int c;
	if (l == NULL || ! l->listening)
		return fail (MS_EINVAL);
	if (l->qlen == 0)
		return fail (MS_EAGAIN);
	c = l->queue[0];
	memmove (l->queue, l->queue + 1, sizeof (int) * (size_t) (--l->qlen));
	fill_addr (sa, len, socks[c].peer >= 0 ? socks[socks[c].peer].port : 0);
	return c + MS_FD0;
}

static ssize_t ms_recv (int fd, void * buf, size_t len, int flags)
{
	struct ms_sock * s = get (fd);
	size_t n, i;
	if (s == NULL)
		return fail (MS_EBADF);
	if (s->len == 0) {
		if (s->eof)
			return 0;
		return fail (MS_EAGAIN);
	}
	n = len < s->len ? len : s->len;
	for (i = 0; i < n; i++)
		((unsigned char *) buf)[i] = s->buf[(s->head + i) % MS_BUF];
	if (! (flags & MS_MSG_PEEK)) {
		s->head = (unsigned int) ((s->head + n) % MS_BUF);
		s->len -= (unsigned int) n;
	}
	return (ssize_t) n;
}

static ssize_t ms_send (int fd, const void * buf, size_t len, int flags)
{
	struct ms_sock * s = get (fd), * d;
	size_t n, i;
	(void) flags;
	if (s == NULL)
		return fail (MS_EBADF);
	if (s->type == MS_SOCK_DGRAM) {
		if (! s->self_connected)
			return fail (MS_ENOTCONN);
		d = s;
	} else {
		if (s->wr_shut || s->peer < 0)
			return fail (MS_EPIPE);
		d = &socks[s->peer];
	}
	n = MS_BUF - d->len;
	if (n == 0)
		return fail (MS_EAGAIN);
	if (len < n)
		n = len;
	for (i = 0; i < n; i++)
		d->buf[(d->head + d->len + i) % MS_BUF] = ((const unsigned char *) buf)[i];
	d->len += (unsigned int) n;
	return (ssize_t) n;
}

static void drop_peer (struct ms_sock * s)
{
	if (s->peer >= 0) {
		socks[s->peer].eof = 1;
		socks[s->peer].peer = -1;
		s->peer = -1;
	}
}

static int ms_close (int fd)
{
	struct ms_sock * s = get (fd);
	int i;
	if (s == NULL)
		return fail (MS_EBADF);
	drop_peer (s);
	for (i = 0; i < s->qlen; i++) {
		drop_peer (&socks[s->queue[i]]);
		socks[s->queue[i]].used = 0;
	}
	s->used = 0;
	return 0;
}

static int ms_shutdown (int fd, int how)
{
	struct ms_sock * s = get (fd);
	if (s == NULL)
		return fail (MS_EBADF);
	if ((how == MS_SHUT_WR || how == MS_SHUT_RDWR) && ! s->wr_shut) {
		s->wr_shut = 1;
		if (s->peer >= 0)
			socks[s->peer].eof = 1;
	}
	return 0;
}

static int ms_set_nonblocking (int fd, int on)
{
	struct ms_sock * s = get (fd);
	if (s == NULL)
		return fail (MS_EBADF);
	s->nonblock = on != 0;
	return 0;
}

static int ms_get_nonblocking (int fd)
{
	struct ms_sock * s = get (fd);
	return s == NULL ? fail (MS_EBADF) : s->nonblock;
}

static int ms_setsockopt (int fd, int level, int name, const void * v, noPollSocklen len)
{
	(void) level; (void) name; (void) v; (void) len;
	return get (fd) == NULL ? fail (MS_EBADF) : 0;
}

static int ms_getsockopt (int fd, int level, int name, void * v, noPollSocklen * len)
{
	struct ms_sock * s = get (fd);
	int value = 0;
	if (s == NULL)
		return fail (MS_EBADF);
	if (v == NULL || len == NULL || *len < sizeof (int))
		return fail (MS_EINVAL);
	if (level == MS_SOL_SOCKET && name == MS_SO_TYPE)
		value = s->type;
	else if (level == MS_SOL_SOCKET && name == MS_SO_ACCEPTCONN)
		value = s->listening;
	memcpy (v, &value, sizeof (int));
	*len = sizeof (int);
	return 0;
}

static int ms_getpeername (int fd, struct sockaddr * sa, noPollSocklen * len)
{
	struct ms_sock * s = get (fd);
	if (s == NULL)
		return fail (MS_EBADF);
	if (s->peer < 0)
		return fail (MS_ENOTCONN);
	fill_addr (sa, len, socks[s->peer].port);
	return 0;
}

static int ms_getsockname (int fd, struct sockaddr * sa, noPollSocklen * len)
{
	struct ms_sock * s = get (fd);
	if (s == NULL)
		return fail (MS_EBADF);
	fill_addr (sa, len, s->port);
	return 0;
}

/* Numeric IPv4 loopback only: that is all this stack has. */
static int ms_getaddrinfo (const char * node, const char * service,
			   const struct addrinfo * hints, struct addrinfo ** res)
{
	struct {
		struct ms_addrinfo    ai;
		struct ms_sockaddr_in in;
	} * r;
	unsigned int len = sizeof (struct ms_sockaddr_in);
	long port = service ? strtol (service, NULL, 10) : 0;
	(void) hints;
	if (node != NULL && strcmp (node, "127.0.0.1") != 0 && strcmp (node, "localhost") != 0)
		return MS_EAI_NONAME;
	if (port < 0 || port > 65535)
		return MS_EAI_NONAME;
	r = calloc (1, sizeof (*r));
	if (r == NULL)
		return MS_EAI_MEMORY;
	fill_addr ((struct sockaddr *) &r->in, &len, (unsigned short) port);
	r->ai.ai_family = MS_AF_INET;
	r->ai.ai_socktype = MS_SOCK_STREAM;
	r->ai.ai_addrlen = len;
	r->ai.ai_addr = (struct sockaddr *) &r->in;
	*res = (struct addrinfo *) r;
	return 0;
}

static void ms_freeaddrinfo (struct addrinfo * res)
{
	free (res);
}

static int ms_poll (struct pollfd * fds, noPollNfds nfds, int timeout)
{
	/* The library's struct pollfd (Linux layout). */
	struct ms_pollfd { int fd; short events; short revents; } * p = (struct ms_pollfd *) fds;
	noPollNfds i;
	int ready = 0;
	for (i = 0; i < nfds; i++) {
		struct ms_sock * s;
		short re = 0;
		p[i].revents = 0;
		if (p[i].fd < 0)
			continue;
		s = get (p[i].fd);
		if (s == NULL) {
			re = MS_POLLNVAL;
		} else if (s->listening) {
			if (s->qlen > 0)
				re |= MS_POLLIN;
		} else {
			int gone = s->type == MS_SOCK_STREAM && s->peer < 0;
			if (s->len > 0 || s->eof)
				re |= MS_POLLIN;
			if (gone && s->eof)
				re |= MS_POLLHUP;
			if (s->type == MS_SOCK_DGRAM ? s->len < MS_BUF
			    : (! gone && socks[s->peer].len < MS_BUF))
				re |= MS_POLLOUT;
		}
		re &= (short) (p[i].events | MS_POLLHUP | MS_POLLERR | MS_POLLNVAL);
		p[i].revents = re;
		ready += re != 0;
	}
	if (ready == 0 && timeout != 0) {
		/* Nothing can change while we would wait: time passes. */
		now_ms += timeout > 0 ? (unsigned long) timeout : 1000UL;
		idle_polls++;
	}
	return ready;
}

static int ms_get_errno (void)
{
	return ms_errno_value;
}

static void ms_set_errno (int value)
{
	ms_errno_value = value;
	errno = value;
}

const noPollSocketOps memsock_ops = {
	0,                  /* kernel_fds: a firmware stack */
	ms_socket,
	ms_bind,
	ms_listen,
	ms_accept,
	ms_connect,
	ms_recv,
	ms_send,
	NULL,               /* sendmsg: vectored sends go through send */
	ms_close,
	ms_shutdown,
	ms_set_nonblocking,
	ms_get_nonblocking,
	ms_setsockopt,
	ms_getsockopt,
	ms_getpeername,
	ms_getsockname,
	ms_getaddrinfo,
	ms_freeaddrinfo,
	ms_poll,
	ms_get_errno,
	ms_set_errno
};
