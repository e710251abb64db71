/*
 * chat_server.c: a Palaver chat server in plain C.
 *
 *   chat_server [--memory] [PORT]
 *
 * Starts the engine on PORT (default 3000, or $PALAVER_PORT) on 127.0.0.1 with open
 * identity (clients pick their names) and history in palaver-history.db (--memory:
 * in memory only). It logs every event, answers the custom event `roll` with a die
 * roll, broadcasts an `announcement` every $ANNOUNCE_SECONDS seconds (default 30,
 * 0 turns it off), and stops gracefully on Ctrl-C or SIGTERM.
 *
 * Every palaver_* call that can fail returns a palaver_result; this program checks
 * each one and prints the library's error text with palaver_last_error().
 */

#define _POSIX_C_SOURCE 200809L /* sigtimedwait, pthread_sigmask, flockfile */

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
#define HISTORY_FILE "palaver-history.db"
#define STOP_TIMEOUT_MS 5000

/* What the event callback needs: it receives this as its userdata. */
typedef struct {
    palaver_engine *engine;
} app;

/* ---- errors ----------------------------------------------------------------- */

/*
 * Returns true on PALAVER_OK. Otherwise prints what failed with the library's
 * error text and returns false. Call it on the thread that made the call: the
 * error text is kept per thread.
 */
static bool check(palaver_result result, const char *what) {
    if (result == PALAVER_OK) {
        return true;
    }
    char text[256];
    size_t needed = 0;
    if (palaver_last_error(text, sizeof text, &needed) == PALAVER_OK) {
        fprintf(stderr, "%s failed: %s (%s)\n", what, palaver_result_name(result), text);
        return false;
    }
    /* The text did not fit: ask again with a buffer of the size it needs. */
    char *long_text = malloc(needed);
    if (long_text != NULL && palaver_last_error(long_text, needed, NULL) == PALAVER_OK) {
        fprintf(stderr, "%s failed: %s (%s)\n", what, palaver_result_name(result), long_text);
    } else {
        fprintf(stderr, "%s failed: %s\n", what, palaver_result_name(result));
    }
    free(long_text);
    return false;
}

/* ---- events ------------------------------------------------------------------ */

static const char *kind_name(palaver_event_kind kind) {
    switch (kind) {
    case PALAVER_EVENT_CONNECTED: return "connected";
    case PALAVER_EVENT_DISCONNECTED: return "disconnected";
    case PALAVER_EVENT_JOINED: return "joined";
    case PALAVER_EVENT_LEFT: return "left";
    case PALAVER_EVENT_MESSAGE: return "message";
    case PALAVER_EVENT_PRIVATE: return "private";
    case PALAVER_EVENT_CUSTOM: return "custom";
    /* Host namespaces and plain WebSockets (socketio_server.c): not configured here. */
    case PALAVER_EVENT_SOCKET_GATE: return "socket_gate";
    case PALAVER_EVENT_SOCKET_CONNECT: return "socket_connect";
    case PALAVER_EVENT_SOCKET_EVENT: return "socket_event";
    case PALAVER_EVENT_SOCKET_DISCONNECT: return "socket_disconnect";
    case PALAVER_EVENT_WS_OPEN: return "ws_open";
    case PALAVER_EVENT_WS_MESSAGE: return "ws_message";
    case PALAVER_EVENT_WS_CLOSE: return "ws_close";
    }
    return "unknown";
}

/* Prints ` name="value"` (nothing for NULL), escaping what would break the line. */
static void log_field(const char *name, const char *value) {
    if (value == NULL) {
        return;
    }
    printf(" %s=\"", name);
    for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\') {
            printf("\\%c", *c);
        } else if (*c < 0x20 || *c == 0x7f) {
            printf("\\x%02x", *c); /* newlines and terminal escapes stay harmless */
        } else {
            putchar(*c);
        }
    }
    putchar('"');
}

/* Milliseconds since the Unix epoch, like the `ts` of Palaver messages. */
static int64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Answers `roll` with {"value": 1..6}. */
static void answer_roll(palaver_engine *engine, uint64_t ack_id) {
    char answer[32];
    snprintf(answer, sizeof answer, "{\"value\": %d}", rand() % 6 + 1);
    if (check(palaver_engine_ack(engine, ack_id, answer), "palaver_engine_ack")) {
        printf("answered roll #%" PRIu64 " with %s\n", ack_id, answer);
    }
}

/*
 * The event callback. The library calls it on its own thread ("palaver-events"),
 * one event at a time. The event and its strings are valid only during this call:
 * copy what you want to keep. Commands (emit, ack, rooms, stats, ...) may be called
 * from here; palaver_engine_stop and palaver_engine_free may not.
 */
static void on_event(void *userdata, const palaver_event *event) {
    app *chat = userdata;

    flockfile(stdout); /* one whole line, even while main() logs too */
    printf("[%s]", kind_name(event->kind));
    log_field("sid", event->sid);
    log_field("user", event->user_id);
    log_field("name", event->user_name);
    log_field("room", event->room);
    log_field("to", event->to_user_id);
    log_field("id", event->message_id);
    log_field("text", event->text);
    log_field("event", event->event_name);
    log_field("data", event->data_json);
    log_field("reason", event->reason);
    if (event->ts != 0) {
        printf(" ts=%" PRId64, event->ts);
    }
    if (event->ack_id != 0) {
        printf(" ack=%" PRIu64, event->ack_id);
    }
    putchar('\n');
    funlockfile(stdout);

    if (event->kind == PALAVER_EVENT_CUSTOM && event->event_name != NULL &&
        strcmp(event->event_name, "roll") == 0) {
        if (event->ack_id != 0) {
            answer_roll(chat->engine, event->ack_id);
        } else {
            printf("roll without an ack callback: nothing to answer\n");
        }
    }
}

/* ---- announcements -------------------------------------------------------------- */

/* Sends every client `announcement {"text": "...", "ts": ...}`. */
static void announce(palaver_engine *engine) {
    palaver_stats stats;
    if (!check(palaver_engine_stats(engine, &stats), "palaver_engine_stats")) {
        return;
    }
    char data[160];
    snprintf(data, sizeof data,
             "{\"text\": \"%" PRIu64 " user(s) online in %" PRIu64 " room(s)\", \"ts\": %" PRId64 "}",
             stats.users_online, stats.rooms, now_ms());
    if (check(palaver_engine_emit_to_all(engine, "announcement", data), "palaver_engine_emit_to_all")) {
        printf("announced %s\n", data);
    }
}

/* ---- settings ------------------------------------------------------------------ */

/* Parses a whole decimal number in [min, max]; false when `text` is anything else. */
static bool parse_number(const char *text, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
        return false;
    }
    *out = value;
    return true;
}

typedef struct {
    uint16_t port;
    bool memory;
    unsigned announce_seconds;
} settings;

static bool read_settings(int argc, char **argv, settings *out) {
    long number = 0;
    const char *port_text = getenv("PALAVER_PORT");
    const char *announce_text = getenv("ANNOUNCE_SECONDS");

    out->port = DEFAULT_PORT;
    out->memory = false;
    out->announce_seconds = DEFAULT_ANNOUNCE_SECONDS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--memory") == 0) {
            out->memory = true;
        } else if (argv[i][0] != '-') {
            port_text = argv[i];
        } else {
            return false;
        }
    }
    if (port_text != NULL) {
        if (!parse_number(port_text, 0, 65535, &number)) {
            fprintf(stderr, "invalid port: %s\n", port_text);
            return false;
        }
        out->port = (uint16_t)number;
    }
    if (announce_text != NULL) {
        if (!parse_number(announce_text, 0, 86400, &number)) {
            fprintf(stderr, "invalid ANNOUNCE_SECONDS: %s\n", announce_text);
            return false;
        }
        out->announce_seconds = (unsigned)number;
    }
    return true;
}

/* A configuration from the settings: port, open identity, history. */
static palaver_config *make_config(const settings *options) {
    palaver_config *config = NULL;
    if (!check(palaver_config_new(&config), "palaver_config_new")) {
        return NULL;
    }
    bool ok = check(palaver_config_set_port(config, options->port), "palaver_config_set_port") &&
              /* NULL secret: open identity, clients choose their names (the default). */
              check(palaver_config_set_token_secret(config, NULL), "palaver_config_set_token_secret") &&
              /* NULL path: history in memory only. */
              check(palaver_config_set_history_file(config, options->memory ? NULL : HISTORY_FILE),
                    "palaver_config_set_history_file");
    if (!ok) {
        palaver_config_free(config);
        return NULL;
    }
    return config;
}

/* ---- main ------------------------------------------------------------------------ */

/* Waits for SIGINT/SIGTERM, announcing every `announce_seconds` (0: never). */
static void serve_until_signal(palaver_engine *engine, const sigset_t *signals, unsigned announce_seconds) {
    for (;;) {
        int signal_number;
        if (announce_seconds == 0) {
            if (sigwait(signals, &signal_number) != 0) {
                continue;
            }
        } else {
            struct timespec period = {.tv_sec = announce_seconds, .tv_nsec = 0};
            signal_number = sigtimedwait(signals, NULL, &period);
            if (signal_number == -1) {
                if (errno == EAGAIN) {
                    announce(engine); /* the period passed without a signal */
                }
                continue; /* EINTR: another signal interrupted the wait */
            }
        }
        printf("\n%s received, stopping\n", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
        return;
    }
}

int main(int argc, char **argv) {
    settings options;
    if (!read_settings(argc, argv, &options)) {
        fprintf(stderr, "usage: %s [--memory] [PORT]   (env: PALAVER_PORT, ANNOUNCE_SECONDS)\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* one line at a time, also into a pipe or file */
    srand((unsigned)time(NULL));

    /*
     * SIGINT and SIGTERM are blocked before the engine starts its threads, which
     * inherit the mask: the signals then wait for sigtimedwait() in main() instead of
     * interrupting an arbitrary thread, and no signal handler is needed.
     */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    palaver_config *config = make_config(&options);
    if (config == NULL) {
        return 1;
    }
    app chat = {.engine = NULL};
    bool created = check(palaver_engine_new(config, &chat.engine), "palaver_engine_new");
    palaver_config_free(config); /* the engine keeps its own copy */
    if (!created) {
        return 1;
    }
    if (!check(palaver_engine_set_callback(chat.engine, on_event, &chat), "palaver_engine_set_callback") ||
        !check(palaver_engine_start(chat.engine), "palaver_engine_start")) {
        palaver_engine_free(chat.engine);
        return 1;
    }

    uint16_t port = 0;
    if (check(palaver_engine_port(chat.engine, &port), "palaver_engine_port")) {
        printf("Palaver %s chat on http://127.0.0.1:%u/ (history: %s); Ctrl-C stops\n",
               palaver_version(), (unsigned)port, options.memory ? "memory" : HISTORY_FILE);
    }

    serve_until_signal(chat.engine, &signals, options.announce_seconds);

    /* Clients get `shutdown` and a disconnect; no callback runs after stop returns. */
    int status = check(palaver_engine_stop(chat.engine, STOP_TIMEOUT_MS), "palaver_engine_stop") ? 0 : 1;
    palaver_engine_free(chat.engine);
    printf("stopped\n");
    return status;
}
