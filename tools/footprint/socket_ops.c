/* socket_ops.c: a libc socket table (noPollSocketOps) for the footprint
 * echo listener of the no-std build, which has no default table. It is the
 * program's code, not the library's: run.sh counts it with the program.
 * Each entry meets the contract of src/net/ops.rs: new sockets are
 * close-on-exec, accepted ones non-blocking, sends never raise SIGPIPE.
 * kernel_fds is 0, as for a firmware stack (lwIP): the no-std library
 * never touches kernel descriptors itself (no epoll, no eventfd). */
#define _GNU_SOURCE
#include <nopoll.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static int fp_socket (int domain, int type, int protocol)
{
	return socket (domain, type | SOCK_CLOEXEC, protocol);
}

static int fp_accept (int fd, struct sockaddr * addr, socklen_t * len)
{
	return accept4 (fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

static ssize_t fp_send (int fd, const void * buf, size_t len, int flags)
{
	return send (fd, buf, len, flags | MSG_NOSIGNAL);
}

static ssize_t fp_sendmsg (int fd, const struct msghdr * msg, int flags)
{
	return sendmsg (fd, msg, flags | MSG_NOSIGNAL);
}

static int fp_set_nonblocking (int fd, int on)
{
	int flags = fcntl (fd, F_GETFL);
	if (flags < 0)
		return -1;
	flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
	return fcntl (fd, F_SETFL, flags) == 0 ? 0 : -1;
}

static int fp_get_nonblocking (int fd)
{
	int flags = fcntl (fd, F_GETFL);
	return flags < 0 ? -1 : (flags & O_NONBLOCK) != 0;
}

static int fp_errno (void)
{
	return errno;
}

static void fp_set_errno (int value)
{
	errno = value;
}

const noPollSocketOps footprint_socket_ops = {
	0,                     /* kernel_fds: a firmware-style table (poll
	                          and a UDP waker through the table) */
	fp_socket,
	bind,
	listen,
	fp_accept,
	connect,
	recv,
	fp_send,
	fp_sendmsg,
	close,
	shutdown,
	fp_set_nonblocking,
	fp_get_nonblocking,
	setsockopt,
	getsockopt,
	getpeername,
	getsockname,
	getaddrinfo,
	freeaddrinfo,
	poll,
	fp_errno,
	fp_set_errno
};
