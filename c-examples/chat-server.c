/* chat-server: a WebSocket chat room written against the nopoll API.
 *
 *   chat-server [PORT [CERT KEY]] [--proxy-protocol] [--trusted LIST] [--redis HOST:PORT]
 *
 *   PORT              default 8080; listens on 127.0.0.1
 *   CERT KEY          the same over TLS: https:// and wss://
 *                     (`make demo-tls` makes a certificate)
 *   --proxy-protocol  every connection starts with a PROXY header (v1 or v2,
 *                     HAProxy's `send-proxy-v2`): the log shows the client's
 *                     address, not the balancer's
 *   --trusted LIST    proxies (addresses or CIDRs, comma separated) whose
 *                     PROXY header / X-Forwarded-For / X-Real-IP are believed
 *   --redis HOST:PORT several instances share one room through Redis
 *                     (only in chat-server-redis, built with hiredis)
 *
 * Open http://127.0.0.1:PORT/ in two browser tabs and chat. One port serves
 * both the page (a plain GET of "/") and the WebSocket endpoint "/chat":
 * every text message a client sends is relayed, unchanged, to every client
 * in the room, the sender included.
 *
 * What it shows:
 *   - a listener driven by nopoll_loop_wait, stopped from a signal handler
 *     with nopoll_loop_stop;
 *   - on_open to accept or refuse a handshake (only "/chat" is a room),
 *     on_ready / per-conn on_close to see clients join and leave;
 *   - broadcasting with nopoll_ctx_foreach_conn: no client list to keep,
 *     the context already has one;
 *   - the HTTP extension of this library (not in upstream nopoll):
 *     nopoll_ctx_set_on_http_request + nopoll_conn_send_http_response.
 *
 * Behind a load balancer (README, "Deployment"): "/health" answers 200, or
 * 503 once SIGUSR1 asked the instance to drain, so that the balancer sends
 * it no new clients; SIGTERM then drains it (nopoll_ctx_drain: close 1001
 * to every client, which the page answers by reconnecting, through the
 * balancer, to another instance) and stops.
 *
 * With --redis (chat-server-redis): a message a client sends is published
 * on the Redis channel "nopoll-chat"; every instance subscribes and relays
 * what Redis delivers to its own clients, so each client gets each message
 * exactly once, in Redis's order. The Redis sockets are watched by the same
 * nopoll_loop_wait (nopoll_loop_watch_fd, hiredis's async API): Redis never
 * blocks WebSocket traffic. When Redis is unreachable the instance keeps its
 * own room going (messages are relayed locally), logs it, and reconnects
 * with back-off.
 *
 * The page sends JSON ({"id", "name", "text"}) so that it can show names and
 * tell its own messages apart; the server does not look inside messages. */
#include <nopoll.h>
#include <signal.h>
#ifdef CHAT_WITH_REDIS
#include <sys/time.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#endif

/* A frame bigger than this closes the sender's connection (status 1009,
 * "message too big"). Browsers send each chat line as one frame. */
#define CHAT_MAX_MESSAGE (64 * 1024)

/* The page served on "/": plain HTML, CSS and JavaScript, no dependencies.
 * (Single quotes inside, so the C string needs few escapes.) */
static const char chat_page[] =
"<!DOCTYPE html>\n"
"<html lang='en'>\n"
"<head>\n"
"<meta charset='utf-8'>\n"
"<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
"<title>nopoll chat</title>\n"
"<style>\n"
"  * { box-sizing: border-box; }\n"
"  body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #eef1f5; color: #1d2430;\n"
"         display: flex; flex-direction: column; height: 100vh; }\n"
"  header { display: flex; align-items: center; gap: 12px; padding: 10px 16px;\n"
"           background: #27415f; color: #fff; }\n"
"  header h1 { font-size: 18px; margin: 0; flex: 1; }\n"
"  header input { width: 130px; }\n"
"  #status { font-size: 13px; padding: 2px 8px; border-radius: 10px; background: #8a5a00; }\n"
"  #status.online { background: #2e7d32; }\n"
"  #messages { flex: 1; overflow-y: auto; list-style: none; margin: 0; padding: 12px 16px; }\n"
"  #messages li { max-width: 75%; margin: 6px 0; padding: 6px 10px; border-radius: 10px;\n"
"                 background: #fff; box-shadow: 0 1px 1px rgba(0,0,0,.08); width: fit-content;\n"
"                 overflow-wrap: anywhere; white-space: pre-wrap; }\n"
"  #messages li.me { margin-left: auto; background: #d3ecff; }\n"
"  #messages li.info { background: none; box-shadow: none; color: #687385; font-size: 13px;\n"
"                      margin: 4px auto; }\n"
"  #messages .from { display: block; font-size: 12px; font-weight: 600; color: #4d5b6e; }\n"
"  form { display: flex; gap: 8px; padding: 10px 16px; background: #fff; border-top: 1px solid #d5dbe3; }\n"
"  input { font: inherit; padding: 6px 8px; border: 1px solid #b8c2cf; border-radius: 6px; }\n"
"  #msg { flex: 1; }\n"
"  button { font: inherit; padding: 6px 16px; border: 0; border-radius: 6px;\n"
"           background: #27415f; color: #fff; cursor: pointer; }\n"
"  button:disabled { background: #9aa5b3; cursor: default; }\n"
"</style>\n"
"</head>\n"
"<body>\n"
"<header>\n"
"  <h1>nopoll chat</h1>\n"
"  <label>Name <input id='name' maxlength='24'></label>\n"
"  <span id='status'>connecting</span>\n"
"</header>\n"
"<ul id='messages'></ul>\n"
"<form id='form'>\n"
"  <input id='msg' autocomplete='off' placeholder='Type a message' maxlength='2000' autofocus>\n"
"  <button id='send' type='submit' disabled>Send</button>\n"
"</form>\n"
"<script>\n"
"(function () {\n"
"  'use strict';\n"
"  var me = Math.random().toString(36).slice(2, 10);   /* tells our own messages apart */\n"
"  var list = document.getElementById('messages');\n"
"  var state = document.getElementById('status');\n"
"  var input = document.getElementById('msg');\n"
"  var send = document.getElementById('send');\n"
"  var nick = document.getElementById('name');\n"
"  var ws = null, online = false;\n"
"  nick.value = 'guest-' + me.slice(0, 4);\n"
"\n"
"  function show(text, from, cls) {\n"
"    var li = document.createElement('li');\n"
"    if (cls) li.className = cls;\n"
"    if (from) {\n"
"      var b = document.createElement('span');\n"
"      b.className = 'from';\n"
"      b.textContent = from;\n"
"      li.appendChild(b);\n"
"    }\n"
"    li.appendChild(document.createTextNode(text));\n"
"    list.appendChild(li);\n"
"    list.scrollTop = list.scrollHeight;\n"
"  }\n"
"\n"
"  function setOnline(on) {\n"
"    online = on;\n"
"    state.textContent = on ? 'online' : 'offline';\n"
"    state.className = on ? 'online' : '';\n"
"    send.disabled = !on;\n"
"  }\n"
"\n"
"  function connect() {\n"
"    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/chat');\n"
"    ws.onopen = function () {\n"
"      setOnline(true);\n"
"      show('connected to ' + location.host, '', 'info');\n"
"    };\n"
"    ws.onclose = function () {\n"
"      if (online) show('disconnected, reconnecting...', '', 'info');\n"
"      setOnline(false);\n"
"      setTimeout(connect, 2000);\n"
"    };\n"
"    ws.onmessage = function (ev) {\n"
"      var m = null;\n"
"      try { m = JSON.parse(ev.data); } catch (e) { }\n"
"      if (m && typeof m.text === 'string') {\n"
"        if (m.id === me) show(m.text, 'you', 'me');\n"
"        else show(m.text, String(m.name || 'anonymous'), '');\n"
"      } else {\n"
"        show(String(ev.data), '(raw)', '');   /* from a non-browser client */\n"
"      }\n"
"    };\n"
"  }\n"
"\n"
"  document.getElementById('form').onsubmit = function (ev) {\n"
"    ev.preventDefault();\n"
"    if (!input.value || !online) return;\n"
"    ws.send(JSON.stringify({ id: me, name: nick.value || 'anonymous', text: input.value }));\n"
"    input.value = '';\n"
"    input.focus();\n"
"  };\n"
"  connect();\n"
"})();\n"
"</script>\n"
"</body>\n"
"</html>\n";

static noPollCtx * ctx = NULL;
static int         online = 0;   /* clients in the room */
static volatile sig_atomic_t stop_requested = 0;
static volatile sig_atomic_t drain_requested = 0;

static void on_signal (int sig)
{
	(void) sig;
	stop_requested = 1;
	nopoll_loop_stop (ctx);
}

/* SIGUSR1: the health check starts answering 503 (only a flag: a signal
 * handler may not take the library's locks). */
static void on_drain_signal (int sig)
{
	(void) sig;
	drain_requested = 1;
}

/* True when the path of `url` (the part before any '?') is `path`. */
static int path_is (const char * url, const char * path)
{
	size_t len = strlen (path);
	if (url == NULL || strncmp (url, path, len) != 0)
		return 0;
	return url[len] == '\0' || url[len] == '?';
}

/* Plain HTTP requests on the listener's port (the extension): the page on
 * "/", 404 for anything else. The library closes the connection after. */
static void on_http_request (noPollCtx * c, noPollConn * conn, const char * method,
			     const char * url, noPollPtr user_data)
{
	(void) user_data;
	if (strcmp (method, "GET") == 0 && (path_is (url, "/") || path_is (url, "/index.html")))
		nopoll_conn_send_http_response (conn, 200, "text/html; charset=utf-8",
						chat_page, (long) sizeof (chat_page) - 1);
	else if (path_is (url, "/health")) {
		/* The balancer's check: 503 stops new clients coming here. */
		if (drain_requested || nopoll_ctx_is_draining (c))
			nopoll_conn_send_http_response (conn, 503, "text/plain", "draining\n", -1);
		else
			nopoll_conn_send_http_response (conn, 200, "text/plain", "ok\n", -1);
	}
	else
		nopoll_conn_send_http_response (conn, 404, "text/plain", "Not found\n", -1);
}

/* Prints a string that came from the network, at most 80 characters, with
 * control characters (terminal escapes) replaced by '?'. */
static void print_untrusted (const char * text)
{
	int i;
	for (i = 0; text != NULL && text[i] != '\0' && i < 80; i++)
		putchar ((unsigned char) text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i]);
}

/* A WebSocket handshake was received: only "/chat" is a chat room. */
static nopoll_bool on_open (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	const char * url = nopoll_conn_get_requested_url (conn);
	(void) c;
	(void) user_data;
	if (path_is (url, "/chat"))
		return nopoll_true;
	printf ("chat-server: refused a WebSocket for ");
	print_untrusted (url);
	printf ("\n");
	fflush (stdout);
	return nopoll_false; /* the client gets 403 */
}

static void on_leave (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	online--;
	printf ("chat-server: client %d left (%d online)\n", nopoll_conn_get_id (conn), online);
	fflush (stdout);
}

/* The handshake is complete: the client is in the room. */
static nopoll_bool on_join (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	const char * proxy = nopoll_conn_proxy_host (conn);
	online++;
	nopoll_conn_set_on_close (conn, on_leave, NULL);
	printf ("chat-server: client %d joined from %s:%s", nopoll_conn_get_id (conn),
		nopoll_conn_host (conn), nopoll_conn_port (conn));
	if (proxy != NULL)
		printf (" via %s", proxy);
	printf (" (%d online)\n", online);
	fflush (stdout);
	return nopoll_true;
}

/* What a broadcast carries through nopoll_ctx_foreach_conn. */
typedef struct {
	const char * text;
	long         size;
} ChatLine;

/* Called for every connection of the context: the listener itself, clients
 * still in their handshake and clients in the room. Only the last get it. */
static nopoll_bool send_to_client (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	ChatLine * line = (ChatLine *) user_data;
	(void) c;
	if (nopoll_conn_role (conn) == NOPOLL_ROLE_LISTENER && nopoll_conn_is_ready (conn))
		nopoll_conn_send_text (conn, line->text, line->size);
	return nopoll_false; /* keep going: visit every connection */
}

/* Relays a line to every client of this instance. */
static void broadcast (const char * text, long size)
{
	ChatLine line;
	line.text = text;
	line.size = size;
	nopoll_ctx_foreach_conn (ctx, send_to_client, &line);
}

#ifdef CHAT_WITH_REDIS
/* ------------------------------------------------------------ Redis
 *
 * Two async hiredis connections driven by this instance's nopoll loop: one
 * subscribed to the channel, one to publish. hiredis tells through its
 * ev.addRead / delRead / addWrite / delWrite / cleanup hooks when it wants
 * to read or write; they map onto nopoll_loop_watch_fd. */
#define CHAT_CHANNEL "nopoll-chat"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static long now_ms (void)
{
	struct timeval tv;
	gettimeofday (&tv, NULL);
	return (long) tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

typedef struct {
	const char *        name;       /* "subscriber" / "publisher" */
	redisAsyncContext * ac;         /* NULL while disconnected */
	int                 up;         /* connected (and subscribed) */
	int                 reading, writing;
	int                 fd;
	long                retry_at;   /* now_ms () of the next attempt */
	long                backoff;
} RedisLink;

static char      redis_host[256];
static int       redis_port = 0;
static RedisLink sub_link = { "subscriber", NULL, 0, 0, 0, -1, 0, BACKOFF_MIN_MS };
static RedisLink pub_link = { "publisher", NULL, 0, 0, 0, -1, 0, BACKOFF_MIN_MS };

static void redis_ready (noPollCtx * c, NOPOLL_SOCKET fd, nopoll_bool readable,
			 nopoll_bool writable, noPollPtr user_data)
{
	RedisLink * link = (RedisLink *) user_data;
	(void) c;
	(void) fd;
	if (link->ac == NULL)
		return;
	/* One at a time: reading may free the context (a disconnect); a
	 * socket still writable is reported again on the next pass. */
	if (readable)
		redisAsyncHandleRead (link->ac);
	else if (writable)
		redisAsyncHandleWrite (link->ac);
}

static void redis_watch (RedisLink * link)
{
	if (link->fd >= 0)
		nopoll_loop_watch_fd (ctx, link->fd, link->reading, link->writing, redis_ready, link);
}
static void ev_add_read (void * p) { RedisLink * l = (RedisLink *) p; l->reading = 1; redis_watch (l); }
static void ev_del_read (void * p) { RedisLink * l = (RedisLink *) p; l->reading = 0; redis_watch (l); }
static void ev_add_write (void * p) { RedisLink * l = (RedisLink *) p; l->writing = 1; redis_watch (l); }
static void ev_del_write (void * p) { RedisLink * l = (RedisLink *) p; l->writing = 0; redis_watch (l); }
static void ev_cleanup (void * p)
{
	RedisLink * l = (RedisLink *) p;
	if (l->fd >= 0)
		nopoll_loop_unwatch_fd (ctx, l->fd);
	l->fd = -1;
	l->reading = l->writing = 0;
}

static void link_down (RedisLink * link, const char * why)
{
	if (link->up || link->ac != NULL)
		printf ("chat-server: redis %s down (%s), retry in %ld ms\n", link->name,
			why ? why : "closed", link->backoff);
	fflush (stdout);
	link->up = 0;
	link->ac = NULL;
	link->retry_at = now_ms () + link->backoff;
	link->backoff = link->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : link->backoff * 2;
}

static RedisLink * link_of (const redisAsyncContext * ac)
{
	return ac == sub_link.ac ? &sub_link : ac == pub_link.ac ? &pub_link : NULL;
}

static void on_redis_disconnect (const redisAsyncContext * ac, int status)
{
	RedisLink * link = link_of (ac);
	(void) status;
	if (link != NULL)
		link_down (link, ac->errstr[0] ? ac->errstr : NULL);
}

/* Every reply of the subscriber: the subscription's confirmation, then
 * the channel's messages, in Redis's order. */
static void on_subscribed_reply (redisAsyncContext * ac, void * r, void * privdata)
{
	redisReply * reply = (redisReply *) r;
	(void) ac;
	(void) privdata;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
		return;
	if (strcmp (reply->element[0]->str, "subscribe") == 0) {
		sub_link.up = 1;
		sub_link.backoff = BACKOFF_MIN_MS;
		printf ("chat-server: redis subscriber up on %s:%d\n", redis_host, redis_port);
		fflush (stdout);
	} else if (strcmp (reply->element[0]->str, "message") == 0
		   && reply->element[2]->type == REDIS_REPLY_STRING) {
		broadcast (reply->element[2]->str, (long) reply->element[2]->len);
	}
}

static void on_redis_connect (const redisAsyncContext * ac, int status)
{
	RedisLink * link = link_of (ac);
	if (link == NULL)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		link_down (link, ac->errstr);
		return;
	}
	if (link == &pub_link) {
		pub_link.up = 1;
		pub_link.backoff = BACKOFF_MIN_MS;
		printf ("chat-server: redis publisher up on %s:%d\n", redis_host, redis_port);
		fflush (stdout);
	}
}

static void redis_connect (RedisLink * link)
{
	redisAsyncContext * ac = redisAsyncConnect (redis_host, redis_port);
	if (ac == NULL || ac->err) {
		if (ac != NULL)
			redisAsyncFree (ac);
		link->ac = NULL;
		link_down (link, "cannot connect");
		return;
	}
	link->ac = ac;
	link->fd = ac->c.fd;
	link->reading = link->writing = 0;
	ac->ev.data = link;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback (ac, on_redis_connect);
	redisAsyncSetDisconnectCallback (ac, on_redis_disconnect);
	if (link == &sub_link)
		redisAsyncCommand (ac, on_subscribed_reply, NULL, "SUBSCRIBE " CHAT_CHANNEL);
}

/* Called between loop passes: reconnects what is down once its back-off
 * passed. */
static void redis_tick (void)
{
	long t = now_ms ();
	if (sub_link.ac == NULL && t >= sub_link.retry_at)
		redis_connect (&sub_link);
	if (pub_link.ac == NULL && t >= pub_link.retry_at)
		redis_connect (&pub_link);
}

/* A publish failed (Redis went away meanwhile): the line still reaches
 * this instance's clients. */
static void on_published (redisAsyncContext * ac, void * r, void * privdata)
{
	redisReply * reply = (redisReply *) r;
	ChatLine * line = (ChatLine *) privdata;
	(void) ac;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		printf ("chat-server: redis publish failed, relayed locally\n");
		fflush (stdout);
		broadcast (line->text, line->size);
	}
	free ((char *) line->text);
	free (line);
}

/* Publishes a client's line; false when Redis is not there to carry it. */
static int redis_publish (const char * text, long size)
{
	ChatLine * line;
	char * copy;
	if (! pub_link.up || ! sub_link.up || pub_link.ac == NULL)
		return 0;
	line = (ChatLine *) malloc (sizeof (ChatLine));
	copy = (char *) malloc ((size_t) size + 1);
	if (line == NULL || copy == NULL) {
		free (line);
		free (copy);
		return 0;
	}
	memcpy (copy, text, (size_t) size);
	line->text = copy;
	line->size = size;
	if (redisAsyncCommand (pub_link.ac, on_published, line, "PUBLISH " CHAT_CHANNEL " %b",
			       copy, (size_t) size) != REDIS_OK) {
		free (copy);
		free (line);
		return 0;
	}
	return 1;
}

static void redis_stop (void)
{
	if (sub_link.ac != NULL)
		redisAsyncFree (sub_link.ac);
	if (pub_link.ac != NULL)
		redisAsyncFree (pub_link.ac);
}
#endif /* CHAT_WITH_REDIS */

static int use_redis = 0;

static void on_message (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	const char * text;
	long size;
	(void) c;
	(void) conn;
	(void) user_data;
	if (nopoll_msg_opcode (msg) != NOPOLL_TEXT_FRAME)
		return; /* a chat is text */
	text = (const char *) nopoll_msg_get_payload (msg);
	size = nopoll_msg_get_payload_size (msg);
	if (text == NULL)
		text = ""; /* an empty message has no payload */
#ifdef CHAT_WITH_REDIS
	/* Through Redis, this instance relays it when Redis delivers it. */
	if (use_redis && redis_publish (text, size))
		return;
#endif
	broadcast (text, size);
}

/* Parses the options after the port; false (with a message) when wrong. */
static int parse_options (int argc, char ** argv, int * proxy_protocol, const char ** trusted,
			  const char ** redis, const char ** cert, const char ** key)
{
	int i;
	for (i = 2; i < argc; i++) {
		if (strcmp (argv[i], "--proxy-protocol") == 0)
			*proxy_protocol = 1;
		else if (strcmp (argv[i], "--trusted") == 0 && i + 1 < argc)
			*trusted = argv[++i];
		else if (strcmp (argv[i], "--redis") == 0 && i + 1 < argc)
			*redis = argv[++i];
		else if (strncmp (argv[i], "--", 2) != 0 && *cert == NULL)
			*cert = argv[i];
		else if (strncmp (argv[i], "--", 2) != 0 && *key == NULL)
			*key = argv[i];
		else {
			fprintf (stderr, "chat-server: unknown option %s\n", argv[i]);
			return 0;
		}
	}
	return 1;
}

int main (int argc, char ** argv)
{
	const char * port = argc > 1 ? argv[1] : "8080";
	const char * trusted = NULL;
	const char * redis = NULL;
	const char * cert = NULL;
	const char * key = NULL;
	int proxy_protocol = 0;
	noPollConn * listener;

	if (! parse_options (argc, argv, &proxy_protocol, &trusted, &redis, &cert, &key))
		return 2;
	if (cert != NULL && key == NULL) {
		fprintf (stderr, "chat-server: a certificate wants its key: PORT CERT KEY\n");
		return 2;
	}
	if (redis != NULL) {
#ifdef CHAT_WITH_REDIS
		const char * colon = strrchr (redis, ':');
		if (colon == NULL || colon == redis || (size_t) (colon - redis) >= sizeof (redis_host)
		    || atoi (colon + 1) <= 0) {
			fprintf (stderr, "chat-server: --redis wants HOST:PORT\n");
			return 2;
		}
		memcpy (redis_host, redis, (size_t) (colon - redis));
		redis_port = atoi (colon + 1);
		use_redis = 1;
#else
		fprintf (stderr, "chat-server: built without Redis (build chat-server-redis)\n");
		return 2;
#endif
	}

	ctx = nopoll_ctx_new ();
	if (ctx == NULL)
		return 1;
	if (trusted != NULL && nopoll_ctx_set_trusted_proxies (ctx, trusted) < 0) {
		fprintf (stderr, "chat-server: --trusted: not a list of addresses or CIDRs\n");
		nopoll_ctx_unref (ctx);
		return 2;
	}
	nopoll_ctx_set_max_frame_size (ctx, CHAT_MAX_MESSAGE);

	if (cert != NULL) {
		/* TLS: the page over https, the room over wss */
		listener = nopoll_listener_tls_new (ctx, "127.0.0.1", port);
		if (! nopoll_listener_set_certificate (listener, cert, key, NULL)) {
			fprintf (stderr, "chat-server: cannot use certificate %s and key %s\n", cert, key);
			nopoll_ctx_unref (ctx);
			return 1;
		}
	} else
		listener = nopoll_listener_new (ctx, "127.0.0.1", port);
	if (! nopoll_conn_is_ok (listener)) {
		fprintf (stderr, "chat-server: cannot listen on 127.0.0.1:%s\n", port);
		nopoll_ctx_unref (ctx);
		return 1;
	}
	if (proxy_protocol)
		nopoll_listener_set_proxy_protocol (listener, nopoll_true);
	nopoll_ctx_set_on_http_request (ctx, on_http_request, NULL);
	nopoll_ctx_set_on_open (ctx, on_open, NULL);
	nopoll_ctx_set_on_ready (ctx, on_join, NULL);
	nopoll_ctx_set_on_msg (ctx, on_message, NULL);
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);
	signal (SIGUSR1, on_drain_signal);

	printf ("chat-server: open %s://127.0.0.1:%s/ in a browser\n", cert != NULL ? "https" : "http",
		nopoll_conn_port (listener));
	fflush (stdout);
	if (! use_redis)
		nopoll_loop_wait (ctx, 0);
#ifdef CHAT_WITH_REDIS
	/* In slices of 100 ms, to reconnect to Redis after its back-off. */
	while (use_redis && ! stop_requested) {
		redis_tick ();
		nopoll_loop_wait (ctx, 100000);
	}
#endif

	/* Say goodbye (1001 "going away") to everyone in the room, wait up to
	 * 2 s for their answers, then close. */
	printf ("chat-server: stopping\n");
	fflush (stdout);
	nopoll_ctx_drain (ctx, 0, "server shutting down", 2000);
#ifdef CHAT_WITH_REDIS
	redis_stop ();
#endif
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	printf ("chat-server: bye\n");
	return 0;
}
