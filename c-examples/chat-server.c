/* chat-server: a WebSocket chat room written against the nopoll API.
 *
 *   chat-server [PORT]          (default 8080; listens on 127.0.0.1)
 *   chat-server PORT CERT KEY   the same over TLS: https:// and wss://
 *                               (`make demo-tls` makes a certificate)
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
 * The page sends JSON ({"id", "name", "text"}) so that it can show names and
 * tell its own messages apart; the server does not look inside messages. */
#include <nopoll.h>
#include <signal.h>

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

static void on_signal (int sig)
{
	(void) sig;
	nopoll_loop_stop (ctx);
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
	(void) c;
	(void) user_data;
	if (strcmp (method, "GET") == 0 && (path_is (url, "/") || path_is (url, "/index.html")))
		nopoll_conn_send_http_response (conn, 200, "text/html; charset=utf-8",
						chat_page, (long) sizeof (chat_page) - 1);
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
	online++;
	nopoll_conn_set_on_close (conn, on_leave, NULL);
	printf ("chat-server: client %d joined from %s:%s (%d online)\n", nopoll_conn_get_id (conn),
		nopoll_conn_host (conn), nopoll_conn_port (conn), online);
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

static void on_message (noPollCtx * c, noPollConn * conn, noPollMsg * msg, noPollPtr user_data)
{
	ChatLine line;
	(void) conn;
	(void) user_data;
	if (nopoll_msg_opcode (msg) != NOPOLL_TEXT_FRAME)
		return; /* a chat is text */
	line.text = (const char *) nopoll_msg_get_payload (msg);
	line.size = nopoll_msg_get_payload_size (msg);
	if (line.text == NULL)
		line.text = ""; /* an empty message has no payload */
	nopoll_ctx_foreach_conn (c, send_to_client, &line);
}

/* On shutdown: say goodbye (1001 "going away") to everyone in the room. */
static nopoll_bool close_client (noPollCtx * c, noPollConn * conn, noPollPtr user_data)
{
	(void) c;
	(void) user_data;
	if (nopoll_conn_role (conn) == NOPOLL_ROLE_LISTENER)
		nopoll_conn_close_ext (conn, 1001, "server shutting down", 20);
	return nopoll_false;
}

int main (int argc, char ** argv)
{
	const char * port = argc > 1 ? argv[1] : "8080";
	noPollConn * listener;

	ctx = nopoll_ctx_new ();
	if (ctx == NULL)
		return 1;
	nopoll_ctx_set_max_frame_size (ctx, CHAT_MAX_MESSAGE);

	if (argc > 3) {
		/* TLS: the page over https, the room over wss */
		listener = nopoll_listener_tls_new (ctx, "127.0.0.1", port);
		if (! nopoll_listener_set_certificate (listener, argv[2], argv[3], NULL)) {
			fprintf (stderr, "chat-server: cannot use certificate %s and key %s\n", argv[2], argv[3]);
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
	nopoll_ctx_set_on_http_request (ctx, on_http_request, NULL);
	nopoll_ctx_set_on_open (ctx, on_open, NULL);
	nopoll_ctx_set_on_ready (ctx, on_join, NULL);
	nopoll_ctx_set_on_msg (ctx, on_message, NULL);
	signal (SIGINT, on_signal);
	signal (SIGTERM, on_signal);

	printf ("chat-server: open %s://127.0.0.1:%s/ in a browser\n", argc > 3 ? "https" : "http",
		nopoll_conn_port (listener));
	fflush (stdout);
	nopoll_loop_wait (ctx, 0);

	printf ("chat-server: stopping\n");
	nopoll_ctx_foreach_conn (ctx, close_client, NULL);
	nopoll_conn_close (listener);
	nopoll_ctx_unref (ctx);
	printf ("chat-server: bye\n");
	return 0;
}
