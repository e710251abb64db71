/*
 * sio_host.c: a small Socket.IO app in C, on the engine with the built-in chat
 * off (palaver_config_set_builtin_chat(config, false)): "/" is the app's
 * namespace and every client event reaches this host, which answers with the
 * Socket.IO commands of include/palaver.h. Driven by tests/c/sio_host.test.js
 * and valgrind.test.js with socket.io-client.
 *
 *   sio_host [CONFIG_JSON]      (default: port 0)
 *
 * The app:
 *   "/"       on connect: listen to the events below only, then emit
 *             `ready` [sid] (so a client that waited for it knows that events
 *             outside the list are dropped)
 *     message ...args           → `message-back` ...args to the sender (binary too)
 *     message-with-ack ...args  → acknowledged with the same args (binary too)
 *     2 ...args                 → `2` ...args to every connection of "/"
 *     join ROOM (ack)           → joins ROOM; `user-joined` [sid, ROOM] to ROOM
 *                                 except the sender; ack ["joined", ROOM]
 *     leave ROOM (ack)          → one palaver_engine_run batch: leave ROOM,
 *                                 `user-left` [sid, ROOM] to ROOM, ack ["left", ROOM]
 *     fetch ROOM (ack)          → ack [fetch_sockets of ROOM]         (blocking query
 *     ask ...args (ack)         → `question` ...args to the sender with an ack,
 *                                 then ack [emit_with_ack answers]     in the callback)
 *     bye [CLOSE] (true/false)  → disconnect the sender (CLOSE: every namespace)
 *   "/admin"  gated: auth.token "s3cret" is admitted (then `admin-welcome`
 *             ["hello admin"]), "later" waits for the `admit`/`refuse` commands,
 *             anything else is refused with "not authorized"
 *   "/any"    listens to every event; one with an ack is answered
 *             [event_name_len, strlen(event_name)]
 *
 * stdout, one JSON object per line (test_host.h):
 *   {"type":"ready","port":N}        once the engine runs and its namespaces exist
 *   {"type":"event", ...}            every event, all its fields
 *   {"type":"gate_waiting","gate_id":N}   a "later" connection waits
 *   {"type":"app_error","call":..,"name":..,"error":..}  a call of the app failed
 *   {"type":"result","cmd":..,..}    a command's result ("answer": a query's JSON)
 *   {"type":"violation","what":..}   a broken rule of the header (never expected)
 *
 * stdin commands (JSON is the rest of the line):
 *   run JSON          palaver_engine_run, no attachments
 *   run_bin JSON      palaver_engine_run with two attachments: [1,2,3] and [0,255]
 *   query JSON        palaver_engine_query from this (the main) thread
 *   fetch [ROOM]      palaver_engine_fetch_sockets of "/" (ROOM: of that room)
 *   admit ID          refuse ID MESSAGE
 *   stats             stop             quit (free, exit 0; also at end of input)
 *
 * The JSON this app reads (room names, auth.token) it reads naively, for
 * brevity; a real host would use a JSON library.
 */

#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver.h"
#include "test_host.h"

#define DEFAULT_CONFIG "{\"port\": 0}"
#define ADMIN_TOKEN "s3cret"
#define ASK_TIMEOUT_MS 10000

typedef struct {
    palaver_engine *engine;
    bool stopped; /* stop or free has returned; guarded by out_lock */
    atomic_int in_callback;
} host;

/* The events of "/" this app listens to. */
static const char *const APP_EVENTS[] = {"message", "message-with-ack", "2", "join", "leave", "fetch", "ask", "bye"};

/* ---- helpers ---------------------------------------------------------------------- */

/* True on PALAVER_OK; otherwise an app_error line with the library's text. */
static bool check(const char *call, palaver_result result) {
    if (result == PALAVER_OK) {
        return true;
    }
    char error[1024];
    last_error(error, sizeof error);
    pthread_mutex_lock(&out_lock);
    printf("{\"type\":\"app_error\",\"call\":\"%s\",\"name\":\"%s\"", call, palaver_result_name(result));
    put_field("error", error);
    end_line();
    return false;
}

/* Whether a text field of the event (pointer and length) is `expected`. */
static bool field_is(const char *field, size_t len, const char *expected) {
    return field != NULL && len == strlen(expected) && memcmp(field, expected, len) == 0;
}

/*
 * The first argument of the event when it is a simple name (letters, digits,
 * '-', '_'), into `out`.
 */
static bool first_name_arg(const palaver_event *event, char *out, size_t out_len) {
    const char *json = event->args_json;
    size_t len = event->args_json_len;
    if (json == NULL || len < 4 || json[0] != '[' || json[1] != '"') {
        return false;
    }
    size_t n = 0;
    for (size_t i = 2; i < len; i++) {
        char c = json[i];
        if (c == '"') {
            out[n] = '\0';
            return n > 0;
        }
        if (!(isalnum((unsigned char)c) || c == '-' || c == '_') || n + 1 >= out_len) {
            return false;
        }
        out[n++] = c;
    }
    return false;
}

/* Acknowledges with one argument, the JSON `value` of `len` bytes. */
static void ack_with_value(host *h, uint64_t ack_id, const char *value, size_t len) {
    char *args = malloc(len + 3);
    if (args == NULL) {
        abort();
    }
    args[0] = '[';
    memcpy(args + 1, value, len);
    args[len + 1] = ']';
    args[len + 2] = '\0';
    check("palaver_engine_ack_args", palaver_engine_ack_args(h->engine, ack_id, args, len + 2, NULL, 0));
    free(args);
}

/* Whether the handshake's `auth` object has "token": `token`. */
static bool auth_token_is(const palaver_event *event, const char *token) {
    /* JSON never holds a NUL: the C string functions see all of handshake_json. */
    const char *auth = strstr(event->handshake_json, "\"auth\":{");
    if (auth == NULL) {
        return false;
    }
    const char *end = strchr(auth, '}');
    char wanted[128];
    snprintf(wanted, sizeof wanted, "\"token\":\"%s\"", token);
    const char *found = strstr(auth, wanted);
    return found != NULL && end != NULL && found < end;
}

/* ---- the app ---------------------------------------------------------------------- */

static void decide_gate(host *h, const palaver_event *event) {
    if (auth_token_is(event, ADMIN_TOKEN)) {
        check("palaver_engine_admit", palaver_engine_admit(h->engine, event->gate_id));
    } else if (auth_token_is(event, "later")) {
        /* Decided from the main thread: the admit and refuse commands. */
        pthread_mutex_lock(&out_lock);
        printf("{\"type\":\"gate_waiting\",\"gate_id\":%" PRIu64, event->gate_id);
        end_line();
    } else {
        check("palaver_engine_refuse", palaver_engine_refuse(h->engine, event->gate_id, "not authorized"));
    }
}

static void set_up(host *h, const palaver_event *event) {
    if (field_is(event->ns, event->ns_len, "/admin")) {
        static const char welcome[] = "[\"hello admin\"]";
        check("palaver_engine_emit_to_socket", palaver_engine_emit_to_socket(h->engine, event->ns, event->sid,
                                                                             "admin-welcome", welcome,
                                                                             sizeof welcome - 1, NULL, 0));
        return;
    }
    bool any = field_is(event->ns, event->ns_len, "/any");
    /* Every event until this listen; afterwards only these (NULL: all, onAny). */
    check("palaver_engine_listen",
          palaver_engine_listen(h->engine, event->ns, event->sid, any ? NULL : APP_EVENTS,
                                any ? 0 : sizeof APP_EVENTS / sizeof APP_EVENTS[0]));
    char args[128];
    int len = snprintf(args, sizeof args, "[\"%s\"]", event->sid);
    /* Queued after the listen: the client gets `ready` once it applies. */
    check("palaver_engine_emit_to_socket",
          palaver_engine_emit_to_socket(h->engine, event->ns, event->sid, "ready", args, (size_t)len, NULL, 0));
}

static void join_room(host *h, const palaver_event *event) {
    char room[64];
    if (!first_name_arg(event, room, sizeof room)) {
        static const char bad[] = "[\"bad room\"]";
        check("palaver_engine_ack_args", palaver_engine_ack_args(h->engine, event->ack_id, bad, sizeof bad - 1, NULL, 0));
        return;
    }
    const char *rooms[] = {room};
    const char *except[] = {event->sid};
    check("palaver_engine_join", palaver_engine_join(h->engine, event->ns, event->sid, rooms, 1));
    /* Applied after the join: socket.io's socket.to(room).emit(...). */
    palaver_target to = {.ns = event->ns, .rooms = rooms, .rooms_count = 1, .except = except, .except_count = 1};
    char args[192];
    int len = snprintf(args, sizeof args, "[\"%s\",\"%s\"]", event->sid, room);
    check("palaver_engine_emit", palaver_engine_emit(h->engine, &to, "user-joined", args, (size_t)len, NULL, 0));
    len = snprintf(args, sizeof args, "[\"joined\",\"%s\"]", room);
    check("palaver_engine_ack_args", palaver_engine_ack_args(h->engine, event->ack_id, args, (size_t)len, NULL, 0));
}

static void leave_room(host *h, const palaver_event *event) {
    char room[64];
    if (!first_name_arg(event, room, sizeof room)) {
        return;
    }
    /* Three commands in one batch, applied in order. */
    char batch[512];
    int len = snprintf(batch, sizeof batch,
                       "[{\"leave\":{\"ns\":\"/\",\"sid\":\"%s\",\"rooms\":[\"%s\"]}},"
                       "{\"emit\":{\"to\":{\"rooms\":[\"%s\"]},\"event\":\"user-left\",\"args\":[\"%s\",\"%s\"]}},"
                       "{\"ack\":{\"ack\":%" PRIu64 ",\"args\":[\"left\",\"%s\"]}}]",
                       event->sid, room, room, event->sid, room, event->ack_id, room);
    check("palaver_engine_run", palaver_engine_run(h->engine, batch, (size_t)len, NULL, 0));
}

/* A blocking query from inside the callback: the answer does not need this thread. */
static void fetch_room(host *h, const palaver_event *event) {
    char room[64];
    if (!first_name_arg(event, room, sizeof room)) {
        return;
    }
    const char *rooms[] = {room};
    palaver_target to = {.ns = event->ns, .rooms = rooms, .rooms_count = 1};
    char *answer = NULL;
    size_t len = 0;
    if (check("palaver_engine_fetch_sockets", palaver_engine_fetch_sockets(h->engine, &to, &answer, &len))) {
        ack_with_value(h, event->ack_id, answer, len);
        palaver_string_free(answer);
    }
}

/* Asks the sender `question` with the ask's arguments and passes its answers on. */
static void ask_back(host *h, const palaver_event *event) {
    const char *sender[] = {event->sid};
    palaver_target to = {.ns = event->ns, .rooms = sender, .rooms_count = 1};
    char *answer = NULL;
    size_t len = 0;
    palaver_result result =
        palaver_engine_emit_with_ack(h->engine, &to, "question", event->args_json, event->args_json_len,
                                     event->attachments, event->attachments_count, ASK_TIMEOUT_MS, &answer, &len);
    if (check("palaver_engine_emit_with_ack", result)) {
        ack_with_value(h, event->ack_id, answer, len);
        palaver_string_free(answer);
    }
}

static void on_app_event(host *h, const palaver_event *event) {
    const char *name = event->event_name;
    size_t name_len = event->event_name_len;
    if (field_is(name, name_len, "message")) {
        /* Every argument back, the binary ones as the attachments they came with. */
        check("palaver_engine_emit_to_socket",
              palaver_engine_emit_to_socket(h->engine, event->ns, event->sid, "message-back", event->args_json,
                                            event->args_json_len, event->attachments, event->attachments_count));
    } else if (field_is(name, name_len, "message-with-ack") && event->ack_id != 0) {
        check("palaver_engine_ack_args",
              palaver_engine_ack_args(h->engine, event->ack_id, event->args_json, event->args_json_len,
                                      event->attachments, event->attachments_count));
    } else if (field_is(name, name_len, "2")) {
        palaver_target everyone = {.ns = event->ns};
        check("palaver_engine_emit", palaver_engine_emit(h->engine, &everyone, "2", event->args_json,
                                                         event->args_json_len, event->attachments,
                                                         event->attachments_count));
    } else if (field_is(name, name_len, "join") && event->ack_id != 0) {
        join_room(h, event);
    } else if (field_is(name, name_len, "leave") && event->ack_id != 0) {
        leave_room(h, event);
    } else if (field_is(name, name_len, "fetch") && event->ack_id != 0) {
        fetch_room(h, event);
    } else if (field_is(name, name_len, "ask") && event->ack_id != 0) {
        ask_back(h, event);
    } else if (field_is(name, name_len, "bye")) {
        bool close = field_is(event->args_json, event->args_json_len, "[true]");
        check("palaver_engine_disconnect_socket",
              palaver_engine_disconnect_socket(h->engine, event->ns, event->sid, close));
    }
}

static void on_any_event(host *h, const palaver_event *event) {
    if (event->ack_id == 0) {
        return;
    }
    char args[64];
    int len = snprintf(args, sizeof args, "[%zu,%zu]", event->event_name_len, strlen(event->event_name));
    check("palaver_engine_ack_args", palaver_engine_ack_args(h->engine, event->ack_id, args, (size_t)len, NULL, 0));
}

static void on_event(void *userdata, const palaver_event *event) {
    host *h = userdata;
    int running = atomic_fetch_add(&h->in_callback, 1);

    pthread_mutex_lock(&out_lock);
    if (running != 0) {
        put_violation("the callback ran concurrently with itself");
    }
    if (h->stopped) {
        put_violation("a callback ran after stop or free returned");
    }
    int bad_lengths = put_event(event);
    fputs("}\n", stdout);
    if (bad_lengths != 0) {
        put_violation("a string field's length disagrees with its pointer");
    }
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);

    switch (event->kind) {
    case PALAVER_EVENT_SOCKET_GATE:
        decide_gate(h, event);
        break;
    case PALAVER_EVENT_SOCKET_CONNECT:
        set_up(h, event);
        break;
    case PALAVER_EVENT_SOCKET_EVENT:
        if (field_is(event->ns, event->ns_len, "/any")) {
            on_any_event(h, event);
        } else if (field_is(event->ns, event->ns_len, "/")) {
            on_app_event(h, event);
        }
        break;
    default: /* disconnects: nothing to do; the chat's kinds do not happen here */
        break;
    }
    atomic_fetch_sub(&h->in_callback, 1);
}

/* ---- commands ------------------------------------------------------------------------ */

/* A result line with the query's answer ("answer": its JSON, or null). */
static void answer_result(const char *cmd, palaver_result result, char *answer) {
    begin_result(cmd, result);
    fputs(",\"answer\":", stdout);
    fputs(result == PALAVER_OK ? answer : "null", stdout);
    end_line();
    palaver_string_free(answer); /* NULL when it failed: ignored */
}

static void cmd_stats(host *h) {
    palaver_stats s;
    memset(&s, 0, sizeof s);
    palaver_result result = palaver_engine_stats(h->engine, &s);
    begin_result("stats", result);
    if (result == PALAVER_OK) {
        put_stats(&s);
    }
    end_line();
}

/* Runs one command; false for quit. */
static bool run_command(host *h, char *line) {
    char *rest = line;
    char *cmd = next_word(&rest);
    if (cmd == NULL) {
        return true;
    }
    const char *json = rest_or_null(rest);
    size_t json_len = json == NULL ? 0 : strlen(json);
    if (strcmp(cmd, "run") == 0) {
        simple_result(cmd, palaver_engine_run(h->engine, json, json_len, NULL, 0));
    } else if (strcmp(cmd, "run_bin") == 0) {
        static const uint8_t first[] = {1, 2, 3};
        static const uint8_t second[] = {0, 255};
        const palaver_bytes attachments[] = {{first, sizeof first}, {second, sizeof second}};
        simple_result(cmd, palaver_engine_run(h->engine, json, json_len, attachments, 2));
    } else if (strcmp(cmd, "query") == 0) {
        char *answer = NULL;
        palaver_result result = palaver_engine_query(h->engine, json, json_len, NULL, 0, &answer, NULL);
        answer_result(cmd, result, answer);
    } else if (strcmp(cmd, "fetch") == 0) {
        const char *room = next_word(&rest);
        const char *rooms[] = {room};
        palaver_target to = {.rooms = rooms, .rooms_count = room != NULL ? 1 : 0};
        char *answer = NULL;
        palaver_result result = palaver_engine_fetch_sockets(h->engine, &to, &answer, NULL);
        answer_result(cmd, result, answer);
    } else if (strcmp(cmd, "admit") == 0) {
        char *id = next_word(&rest);
        simple_result(cmd, palaver_engine_admit(h->engine, id ? strtoull(id, NULL, 10) : 0));
    } else if (strcmp(cmd, "refuse") == 0) {
        char *id = next_word(&rest);
        simple_result(cmd, palaver_engine_refuse(h->engine, id ? strtoull(id, NULL, 10) : 0, rest_or_null(rest)));
    } else if (strcmp(cmd, "stats") == 0) {
        cmd_stats(h);
    } else if (strcmp(cmd, "stop") == 0) {
        palaver_result result = palaver_engine_stop(h->engine, 5000);
        pthread_mutex_lock(&out_lock);
        h->stopped = true;
        pthread_mutex_unlock(&out_lock);
        simple_result(cmd, result);
    } else if (strcmp(cmd, "quit") == 0) {
        return false;
    } else {
        pthread_mutex_lock(&out_lock);
        printf("{\"type\":\"unknown_command\",\"cmd\":");
        put_json_string(cmd);
        end_line();
    }
    return true;
}

/* ---- main ---------------------------------------------------------------------------- */

/* Config, engine, callback, start, the namespaces; PALAVER_OK or what failed. */
static palaver_result start(host *h, const char *config_json, uint16_t *port) {
    palaver_config *config = NULL;
    palaver_result result = palaver_config_from_json(config_json, &config);
    if (result != PALAVER_OK) {
        return result;
    }
    result = palaver_config_set_builtin_chat(config, false);
    if (result == PALAVER_OK) {
        result = palaver_engine_new(config, &h->engine);
    }
    palaver_config_free(config);
    if (result == PALAVER_OK) {
        result = palaver_engine_set_callback(h->engine, on_event, h);
    }
    if (result == PALAVER_OK) {
        result = palaver_engine_start(h->engine);
    }
    if (result == PALAVER_OK) {
        result = palaver_engine_namespace(h->engine, "/admin", true);
    }
    if (result == PALAVER_OK) {
        result = palaver_engine_namespace(h->engine, "/any", false);
    }
    if (result == PALAVER_OK) {
        /* Answered after the commands before it: both namespaces exist now. */
        palaver_target admins = {.ns = "/admin"};
        char *answer = NULL;
        result = palaver_engine_fetch_sockets(h->engine, &admins, &answer, NULL);
        palaver_string_free(answer);
    }
    if (result == PALAVER_OK) {
        result = palaver_engine_port(h->engine, port);
    }
    return result;
}

int main(int argc, char **argv) {
    static host h; /* zeroed; lives until exit */
    atomic_init(&h.in_callback, 0);

    uint16_t port = 0;
    palaver_result result = start(&h, argc > 1 ? argv[1] : DEFAULT_CONFIG, &port);
    if (result != PALAVER_OK) {
        simple_result("start", result);
        palaver_engine_free(h.engine);
        return 1;
    }
    pthread_mutex_lock(&out_lock);
    printf("{\"type\":\"ready\",\"port\":%u", (unsigned)port);
    end_line();

    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    while ((len = getline(&line, &capacity, stdin)) != -1) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (!run_command(&h, line)) {
            break;
        }
    }
    free(line);

    palaver_engine_free(h.engine); /* stops it first when it still runs */
    pthread_mutex_lock(&out_lock);
    h.stopped = true;
    printf("{\"type\":\"bye\"");
    end_line();
    return 0;
}
