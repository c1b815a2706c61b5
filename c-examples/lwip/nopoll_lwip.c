/*
 * nopoll_lwip.c: the noPollSocketOps table over lwIP sockets.
 *
 * Written for, and tested against, Debian's liblwip-dev 2.1.3 (the GNU
 * Hurd lwipopts.h: NO_SYS=0, core locking, poll but no select, no DNS,
 * LWIP_SOCKET_EXTERNAL_HEADERS=1 so that glibc's <sys/socket.h>, <poll.h>
 * and <fcntl.h> supply the types and constants). Meant to be portable to
 * firmware lwIP (ESP-IDF, STM32Cube, ...): everything that depends on the
 * lwIP headers' numbering goes through the translation functions below.
 *
 * Rules this file follows (found probing Debian's lwIP 2.1.3):
 * - every call is an lwip_* call: lwIP socket numbers are small integers
 *   that overlap kernel fds, nothing may reach libc by mistake;
 * - accepted sockets do not inherit O_NONBLOCK in lwIP: set it again;
 * - lwip_poll returns -1 (POLLNVAL on one entry, errno untouched, rest of
 *   the set not scanned) when any fd is not an open lwIP socket: the poll
 *   wrapper turns that into POSIX behaviour (a count, POLLNVAL entries);
 * - no lwIP tuning macro (TCP_MSS, ...) is read here: in Debian's build
 *   glibc's <netinet/tcp.h> redefines some of them in any file that
 *   includes lwip/sockets.h.
 *
 * TCP_NODELAY is not set here: the library sets it on every connected and
 * accepted socket (net/socket.rs, through this table's setsockopt).
 *
 * Licensed MIT OR Apache-2.0, like the library.
 */
#include "nopoll_lwip.h"

#include "lwip/opt.h"
#include "lwip/sockets.h"
#include "lwip/sys.h"

#include <stdlib.h>
#include <string.h>
#include <errno.h>

#if !LWIP_SOCKET || !LWIP_SOCKET_POLL
#error "nopoll_lwip.c needs LWIP_SOCKET=1 and LWIP_SOCKET_POLL=1 (lwip_poll)"
#endif

/* ========================================================================
 * TRANSLATION POINT
 *
 * NL_LIB_* are the numbers the library passes in (levels, option names,
 * flags, poll events, address families, sockaddr layouts, getaddrinfo
 * codes) and expects back (errno values, poll revents). They are those of
 * the C library the Rust crate was built against: for Linux targets the
 * Linux/glibc ABI values below, and the same on bare-metal targets
 * (target_os = "none", e.g. thumbv7m-none-eabi), where the crate defines
 * them itself in src/sys.rs. Override them with -D for another target.
 *
 * The right-hand sides (SOL_SOCKET, POLLIN, EAGAIN, struct sockaddr_in...)
 * are whatever the lwIP headers this file is compiled against define:
 * - Debian's lwIP (LWIP_SOCKET_EXTERNAL_HEADERS=1) uses glibc's values and
 *   layouts: every mapping below is the identity, and the test exercises
 *   the code anyway.
 * - Stock lwIP headers (firmware, lwip/sockets.h's own definitions) differ:
 *   SOL_SOCKET=0xfff, SO_REUSEADDR=0x0004, SO_RCVTIMEO=0x1006,
 *   MSG_DONTWAIT=0x08, POLLOUT=0x2, POLLERR=0x4, O_NONBLOCK=1, and a
 *   sockaddr that starts with a one-byte sin_len. errno is lwIP's own
 *   (LWIP_PROVIDE_ERRNO: Linux numbers) or newlib's (EINPROGRESS=119,
 *   ENOTCONN=128, ...). A firmware port compiles this file against its own
 *   lwIP headers and, if its library build passes non-Linux numbers,
 *   adjusts NL_LIB_*; nothing else changes.
 * Values not listed are passed through unchanged.
 * ====================================================================== */

/* address families, socket types (and type flags) */
#ifndef NL_LIB_AF_UNSPEC
#define NL_LIB_AF_UNSPEC        0
#define NL_LIB_AF_INET          2
#define NL_LIB_AF_INET6         10
#define NL_LIB_SOCK_STREAM      1
#define NL_LIB_SOCK_DGRAM       2
#define NL_LIB_SOCK_NONBLOCK    0x800
#define NL_LIB_SOCK_CLOEXEC     0x80000
#define NL_LIB_IPPROTO_TCP      6
#define NL_LIB_IPPROTO_UDP      17
#endif
/* setsockopt/getsockopt levels and names */
#ifndef NL_LIB_SOL_SOCKET
#define NL_LIB_SOL_SOCKET       1
#define NL_LIB_SO_REUSEADDR     2
#define NL_LIB_SO_TYPE          3
#define NL_LIB_SO_ERROR         4
#define NL_LIB_SO_SNDBUF        7
#define NL_LIB_SO_RCVBUF        8
#define NL_LIB_SO_KEEPALIVE     9
#define NL_LIB_SO_LINGER        13
#define NL_LIB_SO_RCVTIMEO      20
#define NL_LIB_SO_SNDTIMEO      21
#define NL_LIB_SO_BINDTODEVICE  25
#define NL_LIB_SO_ACCEPTCONN    30
#define NL_LIB_IPPROTO_IP       0
#define NL_LIB_IPPROTO_IPV6     41
#define NL_LIB_IPV6_V6ONLY      26
#define NL_LIB_TCP_NODELAY      1
#define NL_LIB_TCP_KEEPIDLE     4
#define NL_LIB_TCP_KEEPINTVL    5
#define NL_LIB_TCP_KEEPCNT      6
#endif
/* send/recv flags */
#ifndef NL_LIB_MSG_PEEK
#define NL_LIB_MSG_PEEK         0x2
#define NL_LIB_MSG_DONTWAIT     0x40
#define NL_LIB_MSG_NOSIGNAL     0x4000
#define NL_LIB_MSG_MORE         0x8000
#endif
/* poll events */
#ifndef NL_LIB_POLLIN
#define NL_LIB_POLLIN           0x1
#define NL_LIB_POLLPRI          0x2
#define NL_LIB_POLLOUT          0x4
#define NL_LIB_POLLERR          0x8
#define NL_LIB_POLLHUP          0x10
#define NL_LIB_POLLNVAL         0x20
#endif
/* getaddrinfo flags and results */
#ifndef NL_LIB_AI_PASSIVE
#define NL_LIB_AI_PASSIVE       0x1
#define NL_LIB_AI_CANONNAME     0x2
#define NL_LIB_EAI_NONAME       (-2)
#define NL_LIB_EAI_ADDRFAMILY   (-9)
#define NL_LIB_EAI_FAMILY       (-6)
#define NL_LIB_EAI_SOCKTYPE     (-7)
#define NL_LIB_EAI_SERVICE      (-8)
#define NL_LIB_EAI_MEMORY       (-10)
#endif
/* sockaddr layouts the library builds and reads (Linux): a 16-bit family
 * in host order at offset 0, the port (network order) at 2; IPv4 address
 * at 4 (16 bytes in all); IPv6 flowinfo at 4, address at 8, scope id at 24
 * (28 bytes in all). */
#ifndef NL_LIB_SA_IN_LEN
#define NL_LIB_SA_IN_LEN        16
#define NL_LIB_SA_IN6_LEN       28
#endif

/* lwIP's sockaddr has sin_len unless it uses a libc's headers without it. */
#if !LWIP_SOCKET_EXTERNAL_HEADERS || (defined(HAVE_SA_LEN) && HAVE_SA_LEN)
#define NL_SET_SA_LEN(field, value) ((field) = (value))
#else
#define NL_SET_SA_LEN(field, value) ((void) 0)
#endif

static int lib2lwip_family (int f)
{
	switch (f) {
	case NL_LIB_AF_UNSPEC: return AF_UNSPEC;
	case NL_LIB_AF_INET:   return AF_INET;
	case NL_LIB_AF_INET6:  return AF_INET6;
	default:               return f;
	}
}

/* Socket type without the NONBLOCK/CLOEXEC flag bits (lwIP knows neither;
 * there is no exec on firmware, and nl_socket applies NONBLOCK itself). */
static int lib2lwip_socktype (int t)
{
	switch (t & ~(NL_LIB_SOCK_NONBLOCK | NL_LIB_SOCK_CLOEXEC)) {
	case NL_LIB_SOCK_STREAM: return SOCK_STREAM;
	case NL_LIB_SOCK_DGRAM:  return SOCK_DGRAM;
	default:                 return t & ~(NL_LIB_SOCK_NONBLOCK | NL_LIB_SOCK_CLOEXEC);
	}
}

static int lwip2lib_socktype (int t)
{
	if (t == SOCK_STREAM)
		return NL_LIB_SOCK_STREAM;
	if (t == SOCK_DGRAM)
		return NL_LIB_SOCK_DGRAM;
	return t;
}

static int lib2lwip_level (int level)
{
	switch (level) {
	case NL_LIB_SOL_SOCKET:   return SOL_SOCKET;
	case NL_LIB_IPPROTO_IP:   return IPPROTO_IP;
	case NL_LIB_IPPROTO_TCP:  return IPPROTO_TCP;
	case NL_LIB_IPPROTO_UDP:  return IPPROTO_UDP;
	case NL_LIB_IPPROTO_IPV6: return IPPROTO_IPV6;
	default:                  return level;
	}
}

/* `level` is the library's value. SO_RCVTIMEO/SO_SNDTIMEO/SO_LINGER take
 * structs (timeval, linger): same layout on glibc; check yours. */
static int lib2lwip_optname (int level, int name)
{
	if (level == NL_LIB_SOL_SOCKET) {
		switch (name) {
		case NL_LIB_SO_REUSEADDR:    return SO_REUSEADDR;
		case NL_LIB_SO_TYPE:         return SO_TYPE;
		case NL_LIB_SO_ERROR:        return SO_ERROR;
		case NL_LIB_SO_SNDBUF:       return SO_SNDBUF;
		case NL_LIB_SO_RCVBUF:       return SO_RCVBUF;
		case NL_LIB_SO_KEEPALIVE:    return SO_KEEPALIVE;
		case NL_LIB_SO_LINGER:       return SO_LINGER;
		case NL_LIB_SO_RCVTIMEO:     return SO_RCVTIMEO;
		case NL_LIB_SO_SNDTIMEO:     return SO_SNDTIMEO;
		case NL_LIB_SO_BINDTODEVICE: return SO_BINDTODEVICE;
		case NL_LIB_SO_ACCEPTCONN:   return SO_ACCEPTCONN;
		default:                     return name;
		}
	}
	if (level == NL_LIB_IPPROTO_TCP) {
		switch (name) {
		case NL_LIB_TCP_NODELAY:   return TCP_NODELAY;
		case NL_LIB_TCP_KEEPIDLE:  return TCP_KEEPIDLE;
		case NL_LIB_TCP_KEEPINTVL: return TCP_KEEPINTVL;
		case NL_LIB_TCP_KEEPCNT:   return TCP_KEEPCNT;
		default:                   return name;
		}
	}
	if (level == NL_LIB_IPPROTO_IPV6 && name == NL_LIB_IPV6_V6ONLY)
		return IPV6_V6ONLY;
	return name;
}

static int lib2lwip_msgflags (int flags)
{
	int out = 0;
	if (flags & NL_LIB_MSG_PEEK)
		out |= MSG_PEEK;
	if (flags & NL_LIB_MSG_DONTWAIT)
		out |= MSG_DONTWAIT;
	if (flags & NL_LIB_MSG_MORE)
		out |= MSG_MORE;
	/* MSG_NOSIGNAL: lwIP never raises SIGPIPE; dropped (lwip_sendmsg
	 * refuses flags other than DONTWAIT and MORE). Others: dropped. */
	return out;
}

static short lib2lwip_pollev (short ev)
{
	short out = 0;
	if (ev & NL_LIB_POLLIN)
		out |= POLLIN;
	if (ev & NL_LIB_POLLOUT)
		out |= POLLOUT;
	/* POLLPRI, POLLRDHUP...: lwIP only looks at POLLIN and POLLOUT. */
	return out;
}

static short lwip2lib_pollev (short ev)
{
	short out = 0;
	if (ev & POLLIN)
		out |= NL_LIB_POLLIN;
	if (ev & POLLOUT)
		out |= NL_LIB_POLLOUT;
	if (ev & POLLERR)
		out |= NL_LIB_POLLERR;
	if (ev & POLLHUP)       /* lwIP never sets it; kept for other ports */
		out |= NL_LIB_POLLHUP;
	if (ev & POLLNVAL)
		out |= NL_LIB_POLLNVAL;
	return out;
}

/* errno: lwIP side (whatever <errno.h> or lwIP's errno.h defines) against
 * the library's (Linux) numbers: the values the library tells apart, plus
 * the usual ones. Unlisted values pass through unchanged. */
static const struct { int lwip, lib; } nl_errnos[] = {
	{ EPERM, 1 }, { ENOENT, 2 }, { EINTR, 4 }, { EIO, 5 }, { ENXIO, 6 },
	{ EBADF, 9 }, { EAGAIN, 11 }, { EWOULDBLOCK, 11 }, { ENOMEM, 12 },
	{ EINVAL, 22 }, { ENFILE, 23 }, { EMFILE, 24 }, { EPIPE, 32 },
	{ ENOSYS, 38 }, { EPROTO, 71 }, { EMSGSIZE, 90 }, { ENOPROTOOPT, 92 },
	{ EOPNOTSUPP, 95 }, { EAFNOSUPPORT, 97 }, { EADDRINUSE, 98 },
	{ EADDRNOTAVAIL, 99 }, { ENETUNREACH, 101 }, { ECONNABORTED, 103 },
	{ ECONNRESET, 104 }, { ENOBUFS, 105 }, { EISCONN, 106 }, { ENOTCONN, 107 },
	{ ETIMEDOUT, 110 }, { ECONNREFUSED, 111 }, { EHOSTUNREACH, 113 },
	{ EALREADY, 114 }, { EINPROGRESS, 115 },
};

static int lwip2lib_errno (int e)
{
	size_t i;
	for (i = 0; i < sizeof (nl_errnos) / sizeof (nl_errnos[0]); i++)
		if (nl_errnos[i].lwip == e)
			return nl_errnos[i].lib;
	return e;
}

static int lib2lwip_errno (int e)
{
	size_t i;
	for (i = 0; i < sizeof (nl_errnos) / sizeof (nl_errnos[0]); i++)
		if (nl_errnos[i].lib == e)
			return nl_errnos[i].lwip;
	return e;
}

/* A sockaddr as lwIP wants it. */
union nl_sockaddr {
	struct sockaddr     sa;
	struct sockaddr_in  in4;
#if LWIP_IPV6
	struct sockaddr_in6 in6;
#endif
};

/* Library-side sockaddr (`len` bytes at `lib`) to lwIP's; 0, or -1 with
 * errno set. */
static int lib2lwip_sockaddr (const struct sockaddr * lib, socklen_t len, union nl_sockaddr * out, socklen_t * out_len)
{
	const unsigned char * p = (const unsigned char *) lib;
	unsigned short family;
	memset (out, 0, sizeof (*out));
	if (lib == NULL || len < 2) {
		errno = EINVAL;
		return -1;
	}
	memcpy (&family, p, sizeof (family));
	if (family == NL_LIB_AF_INET && len >= NL_LIB_SA_IN_LEN) {
		NL_SET_SA_LEN (out->in4.sin_len, sizeof (out->in4));
		out->in4.sin_family = AF_INET;
		memcpy (&out->in4.sin_port, p + 2, 2);
		memcpy (&out->in4.sin_addr, p + 4, 4);
		*out_len = sizeof (out->in4);
		return 0;
	}
#if LWIP_IPV6
	if (family == NL_LIB_AF_INET6 && len >= NL_LIB_SA_IN6_LEN) {
		NL_SET_SA_LEN (out->in6.sin6_len, sizeof (out->in6));
		out->in6.sin6_family = AF_INET6;
		memcpy (&out->in6.sin6_port, p + 2, 2);
		memcpy (&out->in6.sin6_flowinfo, p + 4, 4);
		memcpy (&out->in6.sin6_addr, p + 8, 16);
		memcpy (&out->in6.sin6_scope_id, p + 24, 4);
		*out_len = sizeof (out->in6);
		return 0;
	}
#endif
	errno = family == NL_LIB_AF_INET || family == NL_LIB_AF_INET6 ? EINVAL : EAFNOSUPPORT;
	return -1;
}

/* Writes a library-side sockaddr of `family` (library value) into `buf`
 * (NL_LIB_SA_IN6_LEN bytes at least); returns its length. */
static socklen_t lib_sockaddr_build (unsigned char * buf, unsigned short family, const void * port_be, const void * addr, const void * flowinfo, const void * scope_id)
{
	if (family == NL_LIB_AF_INET) {
		memset (buf, 0, NL_LIB_SA_IN_LEN);
		memcpy (buf, &family, 2);
		memcpy (buf + 2, port_be, 2);
		memcpy (buf + 4, addr, 4);
		return NL_LIB_SA_IN_LEN;
	}
	memset (buf, 0, NL_LIB_SA_IN6_LEN);
	memcpy (buf, &family, 2);
	memcpy (buf + 2, port_be, 2);
	if (flowinfo)
		memcpy (buf + 4, flowinfo, 4);
	memcpy (buf + 8, addr, 16);
	if (scope_id)
		memcpy (buf + 24, scope_id, 4);
	return NL_LIB_SA_IN6_LEN;
}

/* lwIP's sockaddr to the caller's buffer (`lib`, `*lib_len` bytes), with
 * accept/getsockname truncation rules: copies at most *lib_len bytes and
 * sets *lib_len to the full length. */
static void lwip2lib_sockaddr (const union nl_sockaddr * in, struct sockaddr * lib, socklen_t * lib_len)
{
	unsigned char buf[NL_LIB_SA_IN6_LEN];
	socklen_t n;
	if (lib == NULL || lib_len == NULL)
		return;
	if (in->sa.sa_family == AF_INET)
		n = lib_sockaddr_build (buf, NL_LIB_AF_INET, &in->in4.sin_port, &in->in4.sin_addr, NULL, NULL);
#if LWIP_IPV6
	else if (in->sa.sa_family == AF_INET6)
		n = lib_sockaddr_build (buf, NL_LIB_AF_INET6, &in->in6.sin6_port, &in->in6.sin6_addr,
					&in->in6.sin6_flowinfo, &in->in6.sin6_scope_id);
#endif
	else {
		/* unknown family: report it with no address */
		unsigned short f = (unsigned short) in->sa.sa_family;
		memset (buf, 0, sizeof (buf));
		memcpy (buf, &f, 2);
		n = 2;
	}
	memcpy (lib, buf, *lib_len < n ? *lib_len : n);
	*lib_len = n;
}

/* ========================================================================
 * Socket budget (firmware-like cap)
 * ====================================================================== */

static int nl_cap = 0;
static int nl_open = 0;
static int nl_peak = 0;
static long nl_refused = 0;

/* Takes one slot; 0 (errno ENFILE) when the cap is reached. */
static int slot_take (void)
{
	int ok = 1;
	SYS_ARCH_DECL_PROTECT (lev);
	SYS_ARCH_PROTECT (lev);
	if (nl_cap > 0 && nl_open >= nl_cap) {
		ok = 0;
		nl_refused++;
	} else {
		nl_open++;
		if (nl_open > nl_peak)
			nl_peak = nl_open;
	}
	SYS_ARCH_UNPROTECT (lev);
	if (! ok)
		errno = ENFILE;
	return ok;
}

static void slot_release (void)
{
	SYS_ARCH_DECL_PROTECT (lev);
	SYS_ARCH_PROTECT (lev);
	if (nl_open > 0)
		nl_open--;
	SYS_ARCH_UNPROTECT (lev);
}

void nopoll_lwip_set_socket_cap (int cap)
{
	SYS_ARCH_DECL_PROTECT (lev);
	SYS_ARCH_PROTECT (lev);
	nl_cap = cap > 0 ? cap : 0;
	SYS_ARCH_UNPROTECT (lev);
}

int nopoll_lwip_open_sockets (void)
{
	int n;
	SYS_ARCH_DECL_PROTECT (lev);
	SYS_ARCH_PROTECT (lev);
	n = nl_open;
	SYS_ARCH_UNPROTECT (lev);
	return n;
}

int nopoll_lwip_peak_sockets (void)
{
	int n;
	SYS_ARCH_DECL_PROTECT (lev);
	SYS_ARCH_PROTECT (lev);
	n = nl_peak;
	SYS_ARCH_UNPROTECT (lev);
	return n;
}

long nopoll_lwip_refused_by_cap (void)
{
	long n;
	SYS_ARCH_DECL_PROTECT (lev);
	SYS_ARCH_PROTECT (lev);
	n = nl_refused;
	SYS_ARCH_UNPROTECT (lev);
	return n;
}

/* ========================================================================
 * The table entries
 * ====================================================================== */

static int nl_set_nonblocking (int fd, int on)
{
	/* lwIP's fcntl is not variadic, knows F_GETFL/F_SETFL and only the
	 * O_NONBLOCK bit (anything else: ENOSYS). */
	return lwip_fcntl (fd, F_SETFL, on ? O_NONBLOCK : 0) == 0 ? 0 : -1;
}

static int nl_get_nonblocking (int fd)
{
	int fl = lwip_fcntl (fd, F_GETFL, 0);
	if (fl < 0)
		return -1;
	return (fl & O_NONBLOCK) != 0;
}

static int nl_socket (int domain, int type, int protocol)
{
	int s;
	if (! slot_take ())
		return -1;
	s = lwip_socket (lib2lwip_family (domain), lib2lwip_socktype (type), protocol);
	if (s < 0) {
		slot_release ();
		return -1;
	}
	if ((type & NL_LIB_SOCK_NONBLOCK) && nl_set_nonblocking (s, 1) != 0) {
		int e = errno;
		if (lwip_close (s) == 0)
			slot_release ();
		errno = e;
		return -1;
	}
	return s;
}

static int nl_bind (int fd, const struct sockaddr * addr, socklen_t len)
{
	union nl_sockaddr a;
	socklen_t alen;
	if (lib2lwip_sockaddr (addr, len, &a, &alen) != 0)
		return -1;
	return lwip_bind (fd, &a.sa, alen);
}

static int nl_listen (int fd, int backlog)
{
	return lwip_listen (fd, backlog);
}

static int nl_accept (int fd, struct sockaddr * addr, socklen_t * len)
{
	union nl_sockaddr a;
	socklen_t alen = sizeof (a);
	int s = lwip_accept (fd, &a.sa, &alen);
	if (s < 0)
		return -1;
	/* Over the budget: firmware lwIP dequeues the connection, fails to
	 * allocate a socket, drops the connection and reports ENFILE. */
	if (! slot_take ()) {
		lwip_close (s);
		errno = ENFILE;
		return -1;
	}
	/* The contract: a non-blocking socket. lwIP does not inherit
	 * O_NONBLOCK from the listener. */
	if (nl_set_nonblocking (s, 1) != 0) {
		int e = errno;
		if (lwip_close (s) == 0)
			slot_release ();
		errno = e;
		return -1;
	}
	lwip2lib_sockaddr (&a, addr, len);
	return s;
}

static int nl_connect (int fd, const struct sockaddr * addr, socklen_t len)
{
	union nl_sockaddr a;
	socklen_t alen;
	if (lib2lwip_sockaddr (addr, len, &a, &alen) != 0)
		return -1;
	return lwip_connect (fd, &a.sa, alen);
}

static ssize_t nl_recv (int fd, void * buf, size_t len, int flags)
{
	return lwip_recv (fd, buf, len, lib2lwip_msgflags (flags));
}

static ssize_t nl_send (int fd, const void * buf, size_t len, int flags)
{
	return lwip_send (fd, buf, len, lib2lwip_msgflags (flags));
}

static ssize_t nl_sendmsg (int fd, const struct msghdr * msg, int flags)
{
	/* Only msg_iov/msg_iovlen are used by the library. A local msghdr in
	 * lwIP's layout (the same as glibc's here; stock lwIP has an int
	 * msg_iovlen). struct iovec is { void *, size_t } in both. */
	struct msghdr m;
	if (msg == NULL) {
		errno = EINVAL;
		return -1;
	}
	memset (&m, 0, sizeof (m));
	m.msg_iov = msg->msg_iov;
	m.msg_iovlen = msg->msg_iovlen;
	return lwip_sendmsg (fd, &m, lib2lwip_msgflags (flags));
}

static int nl_close (int fd)
{
	int rc = lwip_close (fd);
	if (rc == 0)
		slot_release ();
	return rc;
}

static int nl_shutdown (int fd, int how)
{
	/* SHUT_RD/WR/RDWR are 0/1/2 everywhere. */
	return lwip_shutdown (fd, how);
}

static int nl_setsockopt (int fd, int level, int name, const void * value, socklen_t len)
{
	return lwip_setsockopt (fd, lib2lwip_level (level), lib2lwip_optname (level, name), value, len);
}

static int nl_getsockopt (int fd, int level, int name, void * value, socklen_t * len)
{
	int rc = lwip_getsockopt (fd, lib2lwip_level (level), lib2lwip_optname (level, name), value, len);
	if (rc == 0 && level == NL_LIB_SOL_SOCKET && value != NULL && len != NULL && *len >= sizeof (int)) {
		/* values that are themselves constants */
		if (name == NL_LIB_SO_TYPE)
			*(int *) value = lwip2lib_socktype (*(int *) value);
		else if (name == NL_LIB_SO_ERROR)
			*(int *) value = lwip2lib_errno (*(int *) value);
	}
	return rc;
}

static int nl_getpeername (int fd, struct sockaddr * addr, socklen_t * len)
{
	union nl_sockaddr a;
	socklen_t alen = sizeof (a);
	if (lwip_getpeername (fd, &a.sa, &alen) != 0)
		return -1;
	lwip2lib_sockaddr (&a, addr, len);
	return 0;
}

static int nl_getsockname (int fd, struct sockaddr * addr, socklen_t * len)
{
	union nl_sockaddr a;
	socklen_t alen = sizeof (a);
	if (lwip_getsockname (fd, &a.sa, &alen) != 0)
		return -1;
	lwip2lib_sockaddr (&a, addr, len);
	return 0;
}

/* poll: the set is copied into lwIP's numbering (POLLIN...), polled, and
 * the results copied back. lwip_poll stops at the first fd that is not
 * an open lwIP socket and returns -1 (that entry POLLNVAL, errno left as
 * it was); POSIX poll returns at once with a count instead, POLLNVAL on
 * every such entry. Emulated: invalid entries are masked (fd -1) one by
 * one and the rest is polled again without waiting. An empty set is a
 * sleep, whatever the pointer. */
#define NL_POLL_STACK 64

static int nl_poll (struct pollfd * fds, nfds_t nfds, int timeout)
{
	struct pollfd local[NL_POLL_STACK];
	struct pollfd * set = local;
	nfds_t i;
	int rc, invalid = 0;

	/* POSIX: with nfds 0 the array is not looked at (a plain sleep);
	 * lwip_poll insists on fds == NULL then (else EINVAL). */
	if (nfds == 0)
		return lwip_poll (NULL, 0, timeout);
	if (nfds > NL_POLL_STACK) {
		set = (struct pollfd *) malloc (nfds * sizeof (*set));
		if (set == NULL) {
			errno = ENOMEM;
			return -1;
		}
	}
	for (i = 0; i < nfds; i++) {
		set[i].fd = fds[i].fd;
		set[i].events = lib2lwip_pollev (fds[i].events);
		set[i].revents = 0;
		fds[i].revents = 0;
	}
	for (;;) {
		int bad = -1;
		rc = lwip_poll (set, nfds, invalid ? 0 : timeout);
		if (rc >= 0)
			break;
		for (i = 0; i < nfds; i++) {
			if (set[i].fd >= 0 && (set[i].revents & POLLNVAL)) {
				bad = (int) i;
				break;
			}
		}
		if (bad < 0)
			break;  /* a real failure (ENOMEM, EAGAIN for no semaphore) */
		fds[bad].revents = NL_LIB_POLLNVAL;
		set[bad].fd = -1;
		invalid++;
	}
	if (rc >= 0) {
		for (i = 0; i < nfds; i++)
			if (set[i].fd >= 0)
				fds[i].revents = lwip2lib_pollev (set[i].revents);
		rc += invalid;
	}
	if (set != local)
		free (set);
	return rc;
}

static int nl_errno (void)
{
	/* Debian: glibc's thread-local errno (LWIP_ERRNO_STDINCLUDE).
	 * Firmware: lwIP's global errno (LWIP_PROVIDE_ERRNO) or the C
	 * library's per-task errno; read it the way your lwIP sets it. */
	return lwip2lib_errno (errno);
}

/* The library reports some failures to its C caller through errno (e.g.
 * NOPOLL_EWOULDBLOCK after a partial send): the errno the application
 * reads, in its own numbering. */
static void nl_set_errno (int lib_errno)
{
	errno = lib2lwip_errno (lib_errno);
}

/* ---- getaddrinfo: numeric addresses and "localhost" only ---------------
 * This lwIP has no DNS (LWIP_DNS=0). A firmware build with DNS could call
 * lwip_getaddrinfo here for names (and translate its struct addrinfo). The
 * list is in the library's layout (glibc's struct addrinfo, library-side
 * sockaddr) and allocated with malloc, freed by nl_freeaddrinfo. */

static int nl_parse_port (const char * service, unsigned short * port_be)
{
	unsigned long v = 0;
	const char * p = service;
	unsigned char b[2];
	if (service == NULL || *service == '\0') {
		v = 0;
	} else {
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v = v * 10 + (unsigned long) (*p - '0');
			if (v > 65535)
				return -1;
		}
	}
	b[0] = (unsigned char) (v >> 8);
	b[1] = (unsigned char) (v & 0xff);
	memcpy (port_be, b, 2);
	return 0;
}

static int nl_is_localhost (const char * node)
{
	const char * want = "localhost";
	for (; *node && *want; node++, want++) {
		char c = *node;
		if (c >= 'A' && c <= 'Z')
			c = (char) (c - 'A' + 'a');
		if (c != *want)
			return 0;
	}
	return *node == '\0' && *want == '\0';
}

/* One node; NULL when out of memory. */
static struct addrinfo * nl_ai_new (unsigned short family, int socktype, const void * addr, unsigned short port_be, const char * canon)
{
	size_t canon_len = canon ? strlen (canon) + 1 : 0;
	size_t size = sizeof (struct addrinfo) + NL_LIB_SA_IN6_LEN + canon_len;
	struct addrinfo * ai = (struct addrinfo *) malloc (size);
	unsigned char * sa;
	if (ai == NULL)
		return NULL;
	memset (ai, 0, size);
	sa = (unsigned char *) (ai + 1);
	ai->ai_family = family;
	ai->ai_socktype = socktype;
	ai->ai_protocol = socktype == NL_LIB_SOCK_DGRAM ? NL_LIB_IPPROTO_UDP : NL_LIB_IPPROTO_TCP;
	ai->ai_addrlen = lib_sockaddr_build (sa, family, &port_be, addr, NULL, NULL);
	ai->ai_addr = (struct sockaddr *) (void *) sa;
	if (canon) {
		ai->ai_canonname = (char *) sa + NL_LIB_SA_IN6_LEN;
		memcpy (ai->ai_canonname, canon, canon_len);
	}
	return ai;
}

static void nl_freeaddrinfo (struct addrinfo * res)
{
	while (res != NULL) {
		struct addrinfo * next = res->ai_next;
		free (res);
		res = next;
	}
}

static int nl_getaddrinfo (const char * node, const char * service, const struct addrinfo * hints, struct addrinfo ** res)
{
	int family = hints ? hints->ai_family : NL_LIB_AF_UNSPEC;
	int socktype = hints && hints->ai_socktype ? hints->ai_socktype : NL_LIB_SOCK_STREAM;
	int flags = hints ? hints->ai_flags : 0;
	unsigned short port_be;
	unsigned char a4[4], a6[16];
	int have4 = 0, have6 = 0;
	struct addrinfo * head = NULL, ** tail = &head;
	const char * canon = NULL;

	if (res == NULL)
		return NL_LIB_EAI_NONAME;
	*res = NULL;
	if (family != NL_LIB_AF_UNSPEC && family != NL_LIB_AF_INET && family != NL_LIB_AF_INET6)
		return NL_LIB_EAI_FAMILY;
	if (socktype != NL_LIB_SOCK_STREAM && socktype != NL_LIB_SOCK_DGRAM)
		return NL_LIB_EAI_SOCKTYPE;
	if ((node == NULL || *node == '\0') && (service == NULL || *service == '\0'))
		return NL_LIB_EAI_NONAME;
	if (nl_parse_port (service, &port_be) != 0)
		return NL_LIB_EAI_SERVICE;

	if (node == NULL || *node == '\0') {
		/* wildcard for listeners, loopback otherwise */
		memset (a4, 0, 4);
		memset (a6, 0, 16);
		if (! (flags & NL_LIB_AI_PASSIVE)) {
			a4[0] = 127;
			a4[3] = 1;
			a6[15] = 1;
		}
		have4 = have6 = 1;
	} else if (nl_is_localhost (node)) {
		a4[0] = 127; a4[1] = 0; a4[2] = 0; a4[3] = 1;
		memset (a6, 0, 16);
		a6[15] = 1;
		have4 = have6 = 1;
	} else if (lwip_inet_pton (AF_INET, node, a4) == 1) {
		have4 = 1;
#if LWIP_IPV6
	} else if (lwip_inet_pton (AF_INET6, node, a6) == 1) {
		have6 = 1;
#endif
	} else {
		return NL_LIB_EAI_NONAME;   /* a name: no DNS here */
	}
	if (flags & NL_LIB_AI_CANONNAME)
		canon = node;

	if (have4 && (family == NL_LIB_AF_INET || family == NL_LIB_AF_UNSPEC)) {
		*tail = nl_ai_new (NL_LIB_AF_INET, socktype, a4, port_be, canon);
		if (*tail == NULL)
			goto oom;
		tail = &(*tail)->ai_next;
		canon = NULL;
	}
#if LWIP_IPV6
	if (have6 && (family == NL_LIB_AF_INET6 || family == NL_LIB_AF_UNSPEC)) {
		*tail = nl_ai_new (NL_LIB_AF_INET6, socktype, a6, port_be, canon);
		if (*tail == NULL)
			goto oom;
		tail = &(*tail)->ai_next;
	}
#endif
	if (head == NULL)
		return NL_LIB_EAI_ADDRFAMILY;   /* e.g. an IPv6 literal asked as IPv4 */
	*res = head;
	return 0;
oom:
	nl_freeaddrinfo (head);
	return NL_LIB_EAI_MEMORY;
}

/* ========================================================================
 * The table
 * ====================================================================== */

static const noPollSocketOps nl_ops = {
	.kernel_fds      = 0,          /* lwIP numbers, not kernel fds */
	.socket          = nl_socket,
	.bind            = nl_bind,
	.listen          = nl_listen,
	.accept          = nl_accept,
	.connect         = nl_connect,
	.recv            = nl_recv,
	.send            = nl_send,
	.sendmsg         = nl_sendmsg, /* or NULL: the library then uses send */
	.close           = nl_close,
	.shutdown        = nl_shutdown,
	.set_nonblocking = nl_set_nonblocking,
	.get_nonblocking = nl_get_nonblocking,
	.setsockopt      = nl_setsockopt,
	.getsockopt      = nl_getsockopt,
	.getpeername     = nl_getpeername,
	.getsockname     = nl_getsockname,
	.getaddrinfo     = nl_getaddrinfo,
	.freeaddrinfo    = nl_freeaddrinfo,
	.poll            = nl_poll,
	.get_errno       = nl_errno,
	.set_errno       = nl_set_errno,
};

const noPollSocketOps * nopoll_lwip_socket_ops (void)
{
	return &nl_ops;
}

/* ========================================================================
 * Platform hooks from lwIP's sys layer (sys_arch of the port)
 * ====================================================================== */

static noPollPtr nl_mutex_create (void)
{
	sys_mutex_t * m = (sys_mutex_t *) malloc (sizeof (sys_mutex_t));
	if (m != NULL && sys_mutex_new (m) != ERR_OK) {
		free (m);
		m = NULL;
	}
	return m;
}

static void nl_mutex_destroy (noPollPtr m)
{
	if (m != NULL) {
		sys_mutex_free ((sys_mutex_t *) m);
		free (m);
	}
}

static volatile long nl_locks = 0, nl_clock_reads = 0;

static void nl_mutex_lock (noPollPtr m)
{
	if (m != NULL) {
		sys_mutex_lock ((sys_mutex_t *) m);
		nl_locks++;            /* under the mutex: approximate, for tests */
	}
}

static void nl_mutex_unlock (noPollPtr m)
{
	if (m != NULL)
		sys_mutex_unlock ((sys_mutex_t *) m);
}

static unsigned long nl_clock (void)
{
	nl_clock_reads++;                       /* approximate, for tests */
	return (unsigned long) sys_now ();     /* ms; a 32-bit counter may wrap */
}

long nopoll_lwip_mutex_locks (void)
{
	return nl_locks;
}

long nopoll_lwip_clock_reads (void)
{
	return nl_clock_reads;
}

void nopoll_lwip_install_mutexes (void)
{
	nopoll_thread_handlers (nl_mutex_create, nl_mutex_destroy, nl_mutex_lock, nl_mutex_unlock);
}

void nopoll_lwip_install_clock (void)
{
	nopoll_install_clock (nl_clock);
}
