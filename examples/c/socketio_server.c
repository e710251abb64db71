/*
 * socketio_server.c: a plain Socket.IO server in C, on Palaver with its built-in
 * chat turned off. The host decides what every event does, with socket.io's
 * primitives:
 *
 *   "/"       chat message ...args → to everyone                 (io.emit)
 *             join ROOM, ack       → into ROOM; "joined" [id] to the room but
 *                                    the sender (socket.to(room).emit); ack "ok"
 *             who, ack             → ack with the connections of "/"  (fetchSockets)
 *             any other event      → dropped, as socket.io drops unheard events
 *   "/admin"  only with auth {token: $ADMIN_TOKEN} (default "s3cret"); others get
 *             connect_error "not authorized"                      (io.use)
 *
 * Every $ANNOUNCE_SECONDS (default 30, 0: never) the main thread emits
 * `announcement` to "/". Ctrl-C or SIGTERM stops it.
 *
 *   socketio_server [PORT]      (default 3000, or $PALAVER_PORT)
 *
 * Build and run: make -C examples/c run-socketio
 */

#define _POSIX_C_SOURCE 200809L /* sigtimedwait, pthread_sigmask, flockfile */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "palaver.h"

#define DEFAULT_PORT 3000
#define DEFAULT_ANNOUNCE_SECONDS 30
#define STOP_TIMEOUT_MS 5000

/* The events of "/" the app listens to. */
static const char *const EVENTS[] = {"chat message", "join", "who"};

typedef struct {
    palaver_engine *engine;
    const char *admin_token;
} app;

/* ---- errors ----------------------------------------------------------------- */

/* True on PALAVER_OK; otherwise prints what failed with the library's text (kept per thread). */
static bool check(palaver_result result, const char *what) {
    if (result == PALAVER_OK) {
        return true;
    }
    char text[512];
    if (palaver_last_error(text, sizeof text, NULL) != PALAVER_OK) {
        snprintf(text, sizeof text, "(error text longer than %zu bytes)", sizeof text);
    }
    fprintf(stderr, "%s failed: %s (%s)\n", what, palaver_result_name(result), text);
    return false;
}

/* ---- reading what clients sent ------------------------------------------------- */

/* Whether a field of an event (pointer and length: a text may hold a NUL) is `expected`. */
static bool is(const char *field, size_t len, const char *expected) {
    return field != NULL && len == strlen(expected) && memcmp(field, expected, len) == 0;
}

/*
 * The first argument when it is a simple name (letters, digits, '-', '_'). This
 * example reads JSON by hand to stay in one file; use a JSON library in a real host.
 */
static bool first_name(const palaver_event *event, char *out, size_t out_len) {
    const char *json = event->args_json;
    if (event->args_json_len < 4 || json[0] != '[' || json[1] != '"') {
        return false;
    }
    size_t n = 0;
    for (size_t i = 2; i < event->args_json_len && n + 1 < out_len; i++) {
        if (json[i] == '"') {
            out[n] = '\0';
            return n > 0;
        }
        if (!isalnum((unsigned char)json[i]) && json[i] != '-' && json[i] != '_') {
            return false;
        }
        out[n++] = json[i];
    }
    return false;
}

/* Whether the handshake's auth object is {"token": `token`} (the same hand-reading caveat). */
static bool has_token(const palaver_event *event, const char *token) {
    char wanted[256];
    snprintf(wanted, sizeof wanted, "\"auth\":{\"token\":\"%s\"}", token);
    return strstr(event->handshake_json, wanted) != NULL; /* JSON holds no NUL */
}

/* ---- the app -------------------------------------------------------------------- */

static void on_connect(app *a, const palaver_event *event) {
    if (is(event->ns, event->ns_len, "/admin")) {
        printf("admin %s connected\n", event->sid);
        return;
    }
    /* Until this, every event of the connection reaches the callback; from now on
       only these (palaver_engine_listen with NULL: all of them, like onAny). */
    check(palaver_engine_listen(a->engine, event->ns, event->sid, EVENTS, sizeof EVENTS / sizeof EVENTS[0]),
          "palaver_engine_listen");
    char args[96];
    int len = snprintf(args, sizeof args, "[\"%s\"]", event->sid);
    check(palaver_engine_emit_to_socket(a->engine, event->ns, event->sid, "welcome", args, (size_t)len, NULL, 0),
          "palaver_engine_emit_to_socket");
}

static void join(app *a, const palaver_event *event) {
    char room[64];
    if (!first_name(event, room, sizeof room)) {
        static const char refused[] = "[\"bad room name\"]";
        check(palaver_engine_ack_args(a->engine, event->ack_id, refused, sizeof refused - 1, NULL, 0),
              "palaver_engine_ack_args");
        return;
    }
    const char *rooms[] = {room};
    const char *sender[] = {event->sid};
    check(palaver_engine_join(a->engine, event->ns, event->sid, rooms, 1), "palaver_engine_join");
    /* Commands apply in order: the emit reaches the room as it is after the join. */
    palaver_target to = {.ns = event->ns, .rooms = rooms, .rooms_count = 1, .except = sender, .except_count = 1};
    char args[128];
    int len = snprintf(args, sizeof args, "[\"%s\"]", event->sid);
    check(palaver_engine_emit(a->engine, &to, "joined", args, (size_t)len, NULL, 0), "palaver_engine_emit");
    static const char ok[] = "[\"ok\"]";
    check(palaver_engine_ack_args(a->engine, event->ack_id, ok, sizeof ok - 1, NULL, 0), "palaver_engine_ack_args");
}

/* Answers with the connections of the namespace. The query blocks this thread
   until the engine answers; the answer needs no callback, so this is safe here. */
static void who(app *a, const palaver_event *event) {
    palaver_target everyone = {.ns = event->ns};
    char *sockets = NULL;
    size_t len = 0;
    if (!check(palaver_engine_fetch_sockets(a->engine, &everyone, &sockets, &len), "palaver_engine_fetch_sockets")) {
        return;
    }
    char *args = malloc(len + 3); /* [ answer ] NUL */
    if (args != NULL) {
        snprintf(args, len + 3, "[%s]", sockets);
        check(palaver_engine_ack_args(a->engine, event->ack_id, args, len + 2, NULL, 0), "palaver_engine_ack_args");
    }
    free(args);
    palaver_string_free(sockets);
}

/*
 * The event callback: on the library's own thread, one event at a time. The
 * event and everything it points to are valid only during this call; commands
 * copy what they are given, so the event's own args and attachments can be passed
 * straight on.
 */
static void on_event(void *userdata, const palaver_event *event) {
    app *a = userdata;
    switch (event->kind) {
    case PALAVER_EVENT_SOCKET_GATE: /* only "/admin" is gated */
        if (has_token(event, a->admin_token)) {
            check(palaver_engine_admit(a->engine, event->gate_id), "palaver_engine_admit");
        } else {
            check(palaver_engine_refuse(a->engine, event->gate_id, "not authorized"), "palaver_engine_refuse");
        }
        break;
    case PALAVER_EVENT_SOCKET_CONNECT:
        on_connect(a, event);
        break;
    case PALAVER_EVENT_SOCKET_EVENT:
        flockfile(stdout);
        printf("%.*s %s: %.*s %.*s (%zu binary)\n", (int)event->ns_len, event->ns, event->sid,
               (int)event->event_name_len, event->event_name, (int)event->args_json_len, event->args_json,
               event->attachments_count);
        funlockfile(stdout);
        if (is(event->event_name, event->event_name_len, "chat message")) {
            /* Every argument, binary ones too, to every connection of "/". */
            palaver_target everyone = {.ns = event->ns};
            check(palaver_engine_emit(a->engine, &everyone, "chat message", event->args_json, event->args_json_len,
                                      event->attachments, event->attachments_count),
                  "palaver_engine_emit");
        } else if (event->ack_id != 0 && is(event->event_name, event->event_name_len, "join")) {
            join(a, event);
        } else if (event->ack_id != 0 && is(event->event_name, event->event_name_len, "who")) {
            who(a, event);
        }
        break;
    case PALAVER_EVENT_SOCKET_DISCONNECT:
        printf("%s %s left (%s)\n", event->ns, event->sid, event->reason);
        break;
    default: /* the built-in chat's and plain WebSocket events: not used here */
        break;
    }
}

/* ---- main ------------------------------------------------------------------------ */

static bool parse_number(const char *text, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0 || value > max) {
        return false;
    }
    *out = value;
    return true;
}

/* Emits `announcement` [{"ts": ...}] to every connection of "/". */
static void announce(palaver_engine *engine) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char args[64];
    int len = snprintf(args, sizeof args, "[{\"ts\":%" PRId64 "}]", (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    check(palaver_engine_emit(engine, NULL, "announcement", args, (size_t)len, NULL, 0), "palaver_engine_emit");
}

int main(int argc, char **argv) {
    long port = DEFAULT_PORT;
    long announce_seconds = DEFAULT_ANNOUNCE_SECONDS;
    const char *port_text = argc > 1 ? argv[1] : getenv("PALAVER_PORT");
    const char *announce_text = getenv("ANNOUNCE_SECONDS");
    if ((port_text != NULL && !parse_number(port_text, 65535, &port)) ||
        (announce_text != NULL && !parse_number(announce_text, 86400, &announce_seconds))) {
        fprintf(stderr, "usage: %s [PORT]   (env: PALAVER_PORT, ANNOUNCE_SECONDS, ADMIN_TOKEN)\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    app a = {.engine = NULL, .admin_token = getenv("ADMIN_TOKEN") ? getenv("ADMIN_TOKEN") : "s3cret"};

    /* Blocked before the engine starts its threads, which inherit the mask; main collects them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    palaver_config *config = NULL;
    if (!check(palaver_config_new(&config), "palaver_config_new")) {
        return 1;
    }
    bool ok = check(palaver_config_set_port(config, (uint16_t)port), "palaver_config_set_port") &&
              /* "/" is the host's: every client event comes to on_event. */
              check(palaver_config_set_builtin_chat(config, false), "palaver_config_set_builtin_chat") &&
              check(palaver_engine_new(config, &a.engine), "palaver_engine_new");
    palaver_config_free(config); /* the engine keeps its own copy */
    ok = ok && check(palaver_engine_set_callback(a.engine, on_event, &a), "palaver_engine_set_callback") &&
         check(palaver_engine_start(a.engine), "palaver_engine_start") &&
         /* A namespace whose connections wait for on_event's decision. */
         check(palaver_engine_namespace(a.engine, "/admin", true), "palaver_engine_namespace");
    if (!ok) {
        palaver_engine_free(a.engine);
        return 1;
    }
    uint16_t bound = 0;
    if (check(palaver_engine_port(a.engine, &bound), "palaver_engine_port")) {
        printf("Palaver %s Socket.IO server on http://127.0.0.1:%u/ (namespaces / and /admin); Ctrl-C stops\n",
               palaver_version(), (unsigned)bound);
    }

    for (;;) {
        struct timespec period = {.tv_sec = announce_seconds > 0 ? announce_seconds : 3600, .tv_nsec = 0};
        int signal_number = sigtimedwait(&signals, NULL, &period);
        if (signal_number == SIGINT || signal_number == SIGTERM) {
            break;
        }
        if (signal_number == -1 && errno == EAGAIN && announce_seconds > 0) {
            announce(a.engine);
        }
    }

    /* Clients are disconnected; no callback runs after stop returns. */
    int status = check(palaver_engine_stop(a.engine, STOP_TIMEOUT_MS), "palaver_engine_stop") ? 0 : 1;
    palaver_engine_free(a.engine);
    printf("stopped\n");
    return status;
}
