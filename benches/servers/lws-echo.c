/* lws-echo: a minimal libwebsockets echo server, a peer in the benchmark
 * suite (Debian's libwebsockets-dev, its default poll event loop).
 *
 *   lws-echo PORT [CERT KEY]   (listens on 127.0.0.1; wss:// with CERT and KEY)
 *
 * LWS_DEFLATE=1 turns on libwebsockets' permessage-deflate extension
 * (lws_extension_callback_pm_deflate, its default parameters).
 *
 * Each message is reassembled from its pieces, queued per connection and
 * written back as one frame of the same type when the socket is writable;
 * several messages may be in flight on a connection. SIGINT/SIGTERM stop it. */
#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct msg {
	struct msg *next;
	size_t len;
	int binary;
	unsigned char buf[]; /* LWS_PRE bytes, then the payload */
};

struct pss {
	struct msg *head, *tail;
	unsigned char *rx;
	size_t rx_len, rx_cap;
	int rx_binary;
};

static volatile int interrupted;
static struct lws_context *context;

static void on_signal (int s)
{
	(void) s;
	interrupted = 1;
	if (context)
		lws_cancel_service (context);
}

static int callback_echo (struct lws *wsi, enum lws_callback_reasons reason,
			  void *user, void *in, size_t len)
{
	struct pss *pss = (struct pss *) user;
	struct msg *m;

	switch (reason) {
	case LWS_CALLBACK_RECEIVE:
		if (pss->rx_len == 0 && lws_is_first_fragment (wsi))
			pss->rx_binary = lws_frame_is_binary (wsi);
		if (pss->rx_len + len > pss->rx_cap) {
			size_t cap = pss->rx_cap ? pss->rx_cap : 256;
			while (cap < pss->rx_len + len)
				cap *= 2;
			pss->rx = realloc (pss->rx, cap);
			if (!pss->rx)
				return -1;
			pss->rx_cap = cap;
		}
		memcpy (pss->rx + pss->rx_len, in, len);
		pss->rx_len += len;
		if (!lws_is_final_fragment (wsi) || lws_remaining_packet_payload (wsi))
			break;
		m = malloc (sizeof *m + LWS_PRE + pss->rx_len);
		if (!m)
			return -1;
		m->next = NULL;
		m->len = pss->rx_len;
		m->binary = pss->rx_binary;
		memcpy (m->buf + LWS_PRE, pss->rx, pss->rx_len);
		pss->rx_len = 0;
		if (pss->tail)
			pss->tail->next = m;
		else
			pss->head = m;
		pss->tail = m;
		lws_callback_on_writable (wsi);
		break;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		m = pss->head;
		if (!m)
			break;
		if (lws_write (wsi, m->buf + LWS_PRE, m->len,
			       m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int) m->len)
			return -1;
		pss->head = m->next;
		if (!pss->head)
			pss->tail = NULL;
		free (m);
		if (pss->head)
			lws_callback_on_writable (wsi);
		break;

	case LWS_CALLBACK_CLOSED:
		while ((m = pss->head)) {
			pss->head = m->next;
			free (m);
		}
		pss->tail = NULL;
		free (pss->rx);
		pss->rx = NULL;
		pss->rx_len = pss->rx_cap = 0;
		break;

	default:
		break;
	}
	return 0;
}

static struct lws_protocols protocols[] = {
	{ "echo", callback_echo, sizeof (struct pss), 65536, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_extension pm_deflate[] = {
	{ "permessage-deflate", lws_extension_callback_pm_deflate,
	  "permessage-deflate; client_no_context_takeover; client_max_window_bits" },
	{ NULL, NULL, NULL }
};

int main (int argc, char **argv)
{
	const char *deflate = getenv ("LWS_DEFLATE");
	struct lws_context_creation_info info;
	struct rlimit rl;

	if (argc < 2) {
		fprintf (stderr, "usage: lws-echo PORT [CERT KEY]\n");
		return 2;
	}
	getrlimit (RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit (RLIMIT_NOFILE, &rl);
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);
	lws_set_log_level (LLL_ERR, NULL);

	memset (&info, 0, sizeof info);
	info.port = atoi (argv[1]);
	info.iface = "127.0.0.1";
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	info.pt_serv_buf_size = 65536;
	if (deflate && strcmp (deflate, "1") == 0)
		info.extensions = pm_deflate;
	if (argc > 3) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = argv[2];
		info.ssl_private_key_filepath = argv[3];
	}
	context = lws_create_context (&info);
	if (!context) {
		fprintf (stderr, "lws-echo: cannot start on 127.0.0.1:%s\n", argv[1]);
		return 1;
	}
	printf ("lws-echo: ready on %s://127.0.0.1:%s/\n", argc > 3 ? "wss" : "ws", argv[1]);
	fflush (stdout);
	while (!interrupted && lws_service (context, 0) >= 0)
		;
	lws_context_destroy (context);
	return 0;
}
