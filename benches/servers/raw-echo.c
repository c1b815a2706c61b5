/* raw-echo: a plain TCP echo server, the ceiling of the benchmark suite.
 *
 *   raw-echo PORT          (listens on 127.0.0.1)
 *
 * One thread, level-triggered epoll, one 256 KiB buffer: read what a
 * socket has, write it straight back. When the peer does not take the
 * echo at once, the rest is kept and the socket is not read again until
 * it has been written (no unbounded buffering). SIGINT/SIGTERM stop it. */
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

#define BUF (256 * 1024)

struct pend { char *data; size_t len, pos; };

static volatile sig_atomic_t stop;
static void on_signal (int s) { (void) s; stop = 1; }

static struct pend *pending;
static int npending;

static void track (int fd)
{
	if (fd >= npending) {
		int n = fd * 2 + 64;
		pending = realloc (pending, n * sizeof *pending);
		memset (pending + npending, 0, (n - npending) * sizeof *pending);
		npending = n;
	}
}

static void drop (int ep, int fd)
{
	epoll_ctl (ep, EPOLL_CTL_DEL, fd, NULL);
	free (pending[fd].data);
	memset (&pending[fd], 0, sizeof pending[fd]);
	close (fd);
}

/* Writes buf; keeps what the socket does not take. 0 = ok, -1 = drop. */
static int echo (int ep, int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN) {
				struct epoll_event ev = { EPOLLOUT, { .fd = fd } };
				struct pend *p = &pending[fd];
				p->data = malloc (len);
				memcpy (p->data, buf, len);
				p->len = len;
				p->pos = 0;
				epoll_ctl (ep, EPOLL_CTL_MOD, fd, &ev);
				return 0;
			}
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

int main (int argc, char **argv)
{
	static char buf[BUF];
	struct epoll_event evs[512];
	struct sockaddr_in a;
	struct rlimit rl;
	int one = 1, ls, ep;

	if (argc < 2) {
		fprintf (stderr, "usage: raw-echo PORT\n");
		return 2;
	}
	getrlimit (RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit (RLIMIT_NOFILE, &rl);
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);
	signal (SIGPIPE, SIG_IGN);

	ls = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt (ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset (&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons (atoi (argv[1]));
	a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	if (bind (ls, (struct sockaddr *) &a, sizeof a) < 0 || listen (ls, 1024) < 0) {
		perror ("raw-echo: listen");
		return 1;
	}
	ep = epoll_create1 (EPOLL_CLOEXEC);
	{
		struct epoll_event ev = { EPOLLIN, { .fd = ls } };
		epoll_ctl (ep, EPOLL_CTL_ADD, ls, &ev);
	}
	printf ("raw-echo: ready on 127.0.0.1:%s\n", argv[1]);
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
					epoll_ctl (ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				struct pend *p = &pending[fd];
				while (p->pos < p->len) {
					ssize_t w = send (fd, p->data + p->pos, p->len - p->pos, MSG_NOSIGNAL);
					if (w < 0)
						break;
					p->pos += w;
				}
				if (p->pos == p->len) {
					struct epoll_event ev = { EPOLLIN, { .fd = fd } };
					free (p->data);
					memset (p, 0, sizeof *p);
					epoll_ctl (ep, EPOLL_CTL_MOD, fd, &ev);
				} else if (errno != EAGAIN) {
					drop (ep, fd);
				}
				continue;
			}
			{
				ssize_t r = recv (fd, buf, BUF, 0);
				if (r > 0) {
					if (echo (ep, fd, buf, r) < 0)
						drop (ep, fd);
				} else if (r == 0 || errno != EAGAIN) {
					drop (ep, fd);
				}
			}
		}
	}
	close (ep);
	close (ls);
	return 0;
}
