/*
 * raw.h: a WebSocket peer over plain sockets, for tests that must see or
 * send exact bytes. Shared by tests/c/check.h and tests/compat/compat.h;
 * include it after the libc headers, with two timeouts defined:
 *
 *   RAW_IO_TIMEOUT_MS   send/recv timeout set on every raw socket
 *   RAW_WAIT_MS(t)      how long "wait t ms" really waits (slow runs scale)
 *
 * Only 127.0.0.1 / ::1 and OS-chosen ports. C89.
 */
#ifndef NOPOLL_TEST_RAW_H
#define NOPOLL_TEST_RAW_H

#if defined(__GNUC__)
#define RAW_UNUSED __attribute__ ((unused))
#else
#define RAW_UNUSED
#endif

/* RFC 6455's sample key and its accept value. */
#define RAW_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define RAW_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* ------------------------------------------------------------ raw sockets */

static RAW_UNUSED void raw_set_timeout (int fd, long ms)
{
	struct timeval tv;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof (tv));
	setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof (tv));
}

/* A raw IPv4 listening socket on 127.0.0.1, OS-chosen port written to
 * *port; -1 on failure. */
static RAW_UNUSED int raw_listen (int backlog, int * port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof (sa);
	int fd = socket (AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset (&sa, 0, sizeof (sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	sa.sin_port = 0;
	if (bind (fd, (struct sockaddr *) &sa, sizeof (sa)) != 0 || listen (fd, backlog) != 0
	    || getsockname (fd, (struct sockaddr *) &sa, &len) != 0) {
		close (fd);
		return -1;
	}
	*port = ntohs (sa.sin_port);
	return fd;
}

/* Accepts one connection within timeout_ms; -1 on timeout. */
static RAW_UNUSED int raw_accept (int lfd, long timeout_ms)
{
	struct pollfd p;
	int fd;
	p.fd = lfd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll (&p, 1, (int) RAW_WAIT_MS (timeout_ms)) <= 0)
		return -1;
	fd = accept (lfd, NULL, NULL);
	if (fd >= 0)
		raw_set_timeout (fd, RAW_IO_TIMEOUT_MS);
	return fd;
}

/* A blocking connection to 127.0.0.1:port with I/O timeouts; -1 on failure. */
static RAW_UNUSED int raw_connect (const char * port)
{
	struct sockaddr_in sa;
	int fd = socket (AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset (&sa, 0, sizeof (sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
	sa.sin_port = htons ((unsigned short) atoi (port));
	raw_set_timeout (fd, RAW_IO_TIMEOUT_MS);
	if (connect (fd, (struct sockaddr *) &sa, sizeof (sa)) != 0) {
		close (fd);
		return -1;
	}
	return fd;
}

static RAW_UNUSED int raw_send_all (int fd, const void * data, long len)
{
	const char * p = (const char *) data;
	while (len > 0) {
		ssize_t n = send (fd, p, (size_t) len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (long) n;
	}
	return 1;
}

/* Reads exactly len bytes (within the socket's timeout). */
static RAW_UNUSED int raw_recv_all (int fd, void * data, long len)
{
	char * p = (char *) data;
	while (len > 0) {
		ssize_t n = recv (fd, p, (size_t) len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (long) n;
	}
	return 1;
}

/* Reads an HTTP head (up to and including the blank line) into buf,
 * NUL-terminated; its length, or -1. Reads byte by byte so that nothing
 * after the head is consumed. */
static RAW_UNUSED int raw_read_head (int fd, char * buf, int cap)
{
	int n = 0;
	while (n < cap - 1) {
		ssize_t r = recv (fd, buf + n, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n++;
		if (n >= 4 && memcmp (buf + n - 4, "\r\n\r\n", 4) == 0) {
			buf[n] = '\0';
			return n;
		}
	}
	buf[n] = '\0';
	return -1;
}

/* Reads until the peer closes (or the timeout); bytes read, buf NUL-terminated. */
static RAW_UNUSED int raw_read_to_eof (int fd, char * buf, int cap)
{
	int n = 0;
	while (n < cap - 1) {
		ssize_t r = recv (fd, buf + n, (size_t) (cap - 1 - n), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (int) r;
	}
	buf[n] = '\0';
	return n;
}

/* The value of header `name` (case-insensitive) in an HTTP head, copied to
 * out; 0 if absent. */
static RAW_UNUSED int raw_header (const char * head, const char * name, char * out, int cap)
{
	const char * p = head;
	size_t nl = strlen (name);
	while ((p = strstr (p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp (p, name, nl) == 0 && p[nl] == ':') {
			const char * v = p + nl + 1;
			int i = 0;
			while (*v == ' ')
				v++;
			while (v[i] != '\0' && v[i] != '\r' && i < cap - 1) {
				out[i] = v[i];
				i++;
			}
			out[i] = '\0';
			return 1;
		}
	}
	return 0;
}

/* Client side of a handshake over a raw socket: sends the upgrade request
 * for `path` with `extra` header lines (NULL or "Name: value\r\n"...) and
 * checks the 101 answer and its accept key. */
static RAW_UNUSED int raw_client_handshake (int fd, const char * port, const char * path, const char * extra)
{
	char req[1024];
	char head[2048];
	char accept_value[128];
	sprintf (req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: " RAW_KEY "\r\n"
		 "Sec-WebSocket-Version: 13\r\n%s\r\n", path, port,
		 extra != NULL ? extra : "Origin: http://127.0.0.1\r\n");
	if (! raw_send_all (fd, req, (long) strlen (req)))
		return 0;
	if (raw_read_head (fd, head, sizeof (head)) < 0)
		return 0;
	if (strncmp (head, "HTTP/1.1 101", 12) != 0)
		return 0;
	if (! raw_header (head, "Sec-WebSocket-Accept", accept_value, sizeof (accept_value)))
		return 0;
	return strcmp (accept_value, RAW_ACCEPT) == 0;
}

/* Server side of a handshake over a raw socket: reads the request into
 * head (cap bytes) and answers 101 with the right accept key, plus
 * `extra` header lines (NULL or "Name: value\r\n"...). */
static RAW_UNUSED int raw_server_answer (int fd, const char * head, const char * extra);

static RAW_UNUSED int raw_server_handshake (int fd, char * head, int cap, const char * extra)
{
	if (raw_read_head (fd, head, cap) < 0)
		return 0;
	return raw_server_answer (fd, head, extra);
}

/* Answers the request in head (already read) with a 101 and the right
 * accept key, plus `extra` header lines (NULL or "Name: value\r\n"...). */
static RAW_UNUSED int raw_server_answer (int fd, const char * head, const char * extra)
{
	char key[128];
	char reply[1024];
	char * accept_key;
	int ok;
	if (! raw_header (head, "Sec-WebSocket-Key", key, sizeof (key)))
		return 0;
	accept_key = nopoll_conn_produce_accept_key (NULL, key);
	if (accept_key == NULL)
		return 0;
	sprintf (reply, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n", accept_key, extra ? extra : "");
	nopoll_free (accept_key);
	ok = raw_send_all (fd, reply, (long) strlen (reply));
	return ok;
}

/* Builds one frame into out (which must hold len + 14 bytes); its size.
 * masked: client frames (mask 0x37 0xfa 0x21 0x3d). */
static RAW_UNUSED long raw_frame (unsigned char * out, int fin, int opcode, int masked,
				    const void * payload, long len)
{
	static const unsigned char mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
	const unsigned char * p = (const unsigned char *) payload;
	long n = 0, i;
	out[n++] = (unsigned char) ((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126)
		out[n++] = (unsigned char) ((masked ? 0x80 : 0) | len);
	else if (len < 65536) {
		out[n++] = (unsigned char) ((masked ? 0x80 : 0) | 126);
		out[n++] = (unsigned char) (len >> 8);
		out[n++] = (unsigned char) (len & 0xff);
	} else {
		out[n++] = (unsigned char) ((masked ? 0x80 : 0) | 127);
		for (i = 7; i >= 0; i--)
			out[n++] = (unsigned char) (i >= 4 ? 0 : ((unsigned long) len >> (8 * i)) & 0xff);
	}
	if (masked) {
		memcpy (out + n, mask, 4);
		n += 4;
	}
	for (i = 0; i < len; i++)
		out[n + i] = (unsigned char) (masked ? p[i] ^ mask[i % 4] : p[i]);
	return n + len;
}

/* Sends one frame (payload up to 64 KiB). */
static RAW_UNUSED int raw_send_frame (int fd, int fin, int opcode, int masked, const void * payload, long len)
{
	unsigned char * buf = (unsigned char *) malloc ((size_t) len + 14);
	long n;
	int ok;
	if (buf == NULL)
		return 0;
	n = raw_frame (buf, fin, opcode, masked, payload, len);
	ok = raw_send_all (fd, buf, n);
	free (buf);
	return ok;
}

typedef struct {
	int  fin;
	int  opcode;
	int  masked;
	long len;     /* payload length */
	unsigned char mask[4];
} RawFrame;

/* Reads one frame header (and mask key, into f->mask); 1 on success. */
static RAW_UNUSED int raw_read_frame_header (int fd, RawFrame * f)
{
	unsigned char h[8];
	int i;
	if (! raw_recv_all (fd, h, 2))
		return 0;
	f->fin = (h[0] & 0x80) != 0;
	f->opcode = h[0] & 0x0f;
	f->masked = (h[1] & 0x80) != 0;
	f->len = h[1] & 0x7f;
	if (f->len == 126) {
		if (! raw_recv_all (fd, h, 2))
			return 0;
		f->len = ((long) h[0] << 8) | h[1];
	} else if (f->len == 127) {
		if (! raw_recv_all (fd, h, 8))
			return 0;
		f->len = 0;
		for (i = 0; i < 8; i++)
			f->len = (f->len << 8) | h[i];
	}
	if (f->masked && ! raw_recv_all (fd, f->mask, 4))
		return 0;
	return 1;
}

/* Reads one frame, unmasking it, payload into buf (NUL-terminated when
 * room); 1 on success, 0 on error or a payload larger than cap - 1. */
static RAW_UNUSED int raw_read_frame (int fd, RawFrame * f, unsigned char * buf, long cap)
{
	long i;
	if (! raw_read_frame_header (fd, f))
		return 0;
	if (f->len > cap - 1)
		return 0;
	if (! raw_recv_all (fd, buf, f->len))
		return 0;
	if (f->masked)
		for (i = 0; i < f->len; i++)
			buf[i] ^= f->mask[i % 4];
	buf[f->len] = '\0';
	return 1;
}

/* Close status of a close frame payload (1005 when it has none). */
static RAW_UNUSED int raw_close_status (const RawFrame * f, const unsigned char * payload)
{
	if (f->opcode != 8)
		return -1;
	if (f->len < 2)
		return 1005;
	return (payload[0] << 8) | payload[1];
}

/* IPv6 loopback usable here? */
static RAW_UNUSED int ipv6_available (void)
{
	struct sockaddr_in6 sa;
	int fd = socket (AF_INET6, SOCK_STREAM, 0);
	int ok;
	if (fd < 0)
		return 0;
	memset (&sa, 0, sizeof (sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	ok = bind (fd, (struct sockaddr *) &sa, sizeof (sa)) == 0;
	close (fd);
	return ok;
}

#endif /* NOPOLL_TEST_RAW_H */
