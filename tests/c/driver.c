/*
 * driver.c: a C host for the tests, driven on stdin, reporting on stdout.
 *
 *   driver [CONFIG_JSON]      (default: port 0, history in memory)
 *
 * Every stdout line is one JSON object with a "type":
 *   {"type":"ready","port":N,"ready":true}      once the engine runs
 *   {"type":"callback_thread","name":...}  the callback thread's name, at the first event
 *   {"type":"event", "kind":..., every palaver_event field ..., "json":"..."}
 *   {"type":"ping_ack", ...}       the answer to a custom `ping`, sent in the callback
 *   {"type":"later", ...}          a custom `later` was recorded for `ack_later`
 *   {"type":"result","cmd":...,"result":N,"name":"PALAVER_...","error":"..."}
 *   {"type":"violation","what":...} a broken threading rule (never expected)
 *
 * Commands, one per line (JSON is the rest of the line; none means NULL):
 *   emit_all EVENT [JSON]          emit_room ROOM EVENT [JSON]
 *   emit_user USER EVENT [JSON]    disconnect USER [REASON]
 *   rooms BUFLEN                   (BUFLEN 0: NULL buffer; retried with the size needed)
 *   stats                          ack ID [JSON]
 *   ack_later [JSON]               answers the oldest recorded `later` from this thread
 *   stop                           quit (free, exit 0; also at end of input)
 *
 * Lines from the callback thread and the main thread never interleave: both write
 * whole lines under `out_lock` and flush.
 */

#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "palaver.h"

#define DEFAULT_CONFIG "{\"port\": 0, \"history\": {\"storage\": \"memory\"}}"
#define MAX_LATER 64

typedef struct {
    palaver_engine *engine;
    pthread_mutex_t out_lock; /* stdout, `stopped`, the recorded `later` ids */
    bool stopped;             /* stop or free has returned */
    uint64_t later[MAX_LATER];
    size_t later_count;
    atomic_int in_callback; /* callbacks running now (never more than one) */
    pthread_t callback_thread;
    bool callback_thread_known;
    pthread_t main_thread;
} driver;

/* ---- output ------------------------------------------------------------------ */

static const char *kind_name(palaver_event_kind kind) {
    switch (kind) {
    case PALAVER_EVENT_CONNECTED: return "connected";
    case PALAVER_EVENT_DISCONNECTED: return "disconnected";
    case PALAVER_EVENT_JOINED: return "joined";
    case PALAVER_EVENT_LEFT: return "left";
    case PALAVER_EVENT_MESSAGE: return "message";
    case PALAVER_EVENT_PRIVATE: return "private";
    case PALAVER_EVENT_CUSTOM: return "custom";
    }
    return "(not a palaver_event_kind)";
}

/* Writes `text` as a JSON string, or null for NULL. */
static void put_json_string(const char *text) {
    if (text == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        switch (*c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*c < 0x20) {
                printf("\\u%04x", *c);
            } else {
                putchar(*c); /* UTF-8 passes through */
            }
        }
    }
    putchar('"');
}

static void put_field(const char *name, const char *value) {
    printf(",\"%s\":", name);
    put_json_string(value);
}

/* This thread's last error text. */
static void last_error(char *buf, size_t len) {
    if (palaver_last_error(buf, len, NULL) != PALAVER_OK) {
        snprintf(buf, len, "(longer than %zu bytes)", len);
    }
}

/* Starts a result line under the lock: {"type":"result","cmd":..,"result":..,"name":..,"error":.. */
static void begin_result(driver *d, const char *cmd, palaver_result result) {
    char error[1024];
    last_error(error, sizeof error); /* before anything else on this thread */
    pthread_mutex_lock(&d->out_lock);
    printf("{\"type\":\"result\",\"cmd\":");
    put_json_string(cmd);
    printf(",\"result\":%d,\"name\":\"%s\"", (int)result, palaver_result_name(result));
    put_field("error", error);
}

static void end_line(driver *d) {
    fputs("}\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&d->out_lock);
}

static void simple_result(driver *d, const char *cmd, palaver_result result) {
    begin_result(d, cmd, result);
    end_line(d);
}

/* A violation line; the caller holds out_lock. */
static void put_violation(const char *what) {
    printf("{\"type\":\"violation\",\"what\":\"%s\"}\n", what);
    fflush(stdout);
    fprintf(stderr, "driver: VIOLATION: %s\n", what);
}

/* ---- the event callback ------------------------------------------------------------ */

static void answer_ping(driver *d, const palaver_event *event) {
    size_t len = strlen(event->data_json) + 32;
    char *answer = malloc(len);
    if (answer == NULL) {
        abort();
    }
    snprintf(answer, len, "{\"pong\": %s}", event->data_json);
    palaver_result result = palaver_engine_ack(d->engine, event->ack_id, answer);
    char error[512];
    last_error(error, sizeof error);
    free(answer);
    pthread_mutex_lock(&d->out_lock);
    printf("{\"type\":\"ping_ack\",\"ack_id\":%" PRIu64 ",\"result\":%d,\"name\":\"%s\"", event->ack_id, (int)result,
           palaver_result_name(result));
    put_field("error", error);
    fputs("}\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&d->out_lock);
}

static void on_event(void *userdata, const palaver_event *event) {
    driver *d = userdata;
    int running = atomic_fetch_add(&d->in_callback, 1);

    pthread_mutex_lock(&d->out_lock);
    if (running != 0) {
        put_violation("the callback ran concurrently with itself");
    }
    if (d->stopped) {
        put_violation("a callback ran after stop or free returned");
    }
    if (!d->callback_thread_known) {
        d->callback_thread = pthread_self();
        d->callback_thread_known = true;
        char name[32] = "";
        prctl(PR_GET_NAME, name, 0, 0, 0);
        printf("{\"type\":\"callback_thread\",\"name\":");
        put_json_string(name);
        fputs("}\n", stdout);
    } else if (!pthread_equal(d->callback_thread, pthread_self())) {
        put_violation("the callback ran on another thread");
    }
    if (pthread_equal(d->main_thread, pthread_self())) {
        put_violation("the callback ran on the host's main thread");
    }
    printf("{\"type\":\"event\",\"kind\":\"%s\",\"kind_value\":%d", kind_name(event->kind), (int)event->kind);
    put_field("sid", event->sid);
    put_field("user_id", event->user_id);
    put_field("user_name", event->user_name);
    put_field("room", event->room);
    put_field("text", event->text);
    put_field("message_id", event->message_id);
    put_field("to_user_id", event->to_user_id);
    put_field("event_name", event->event_name);
    put_field("data_json", event->data_json);
    put_field("reason", event->reason);
    printf(",\"ts\":%" PRId64 ",\"ack_id\":%" PRIu64, event->ts, event->ack_id);
    put_field("json", event->json);
    fputs("}\n", stdout);
    fflush(stdout);

    bool custom = event->kind == PALAVER_EVENT_CUSTOM && event->event_name != NULL && event->ack_id != 0;
    if (custom && strcmp(event->event_name, "later") == 0) {
        /* Answered later, from the main thread (`ack_later`), after this call returned. */
        if (d->later_count < MAX_LATER) {
            d->later[d->later_count++] = event->ack_id;
        }
        printf("{\"type\":\"later\",\"ack_id\":%" PRIu64 ",\"pending\":%zu}\n", event->ack_id, d->later_count);
        fflush(stdout);
    }
    pthread_mutex_unlock(&d->out_lock);

    if (custom && strcmp(event->event_name, "ping") == 0) {
        answer_ping(d, event); /* answered inside the callback */
    }
    atomic_fetch_sub(&d->in_callback, 1);
}

/* ---- commands ------------------------------------------------------------------------ */

/* Splits off the next space-separated word of *rest; NULL when there is none. */
static char *next_word(char **rest) {
    char *word = *rest;
    while (*word == ' ') {
        word++;
    }
    if (*word == '\0') {
        *rest = word;
        return NULL;
    }
    char *end = strchr(word, ' ');
    if (end != NULL) {
        *end = '\0';
        *rest = end + 1;
    } else {
        *rest = word + strlen(word);
    }
    return word;
}

/* The rest of the line, or NULL when it is empty. */
static char *rest_or_null(char *rest) {
    while (*rest == ' ') {
        rest++;
    }
    return *rest == '\0' ? NULL : rest;
}

static void cmd_rooms(driver *d, char *rest) {
    char *word = next_word(&rest);
    size_t len = word ? strtoul(word, NULL, 10) : 0;
    char *buf = len > 0 ? malloc(len) : NULL;
    if (buf != NULL) {
        memset(buf, 'X', len);
    }
    size_t needed = 0;
    palaver_result first = palaver_engine_rooms(d->engine, buf, len, &needed);
    char first_error[512];
    last_error(first_error, sizeof first_error);
    bool untouched = true;
    for (size_t i = 0; buf != NULL && first != PALAVER_OK && i < len; i++) {
        untouched = untouched && buf[i] == 'X';
    }
    palaver_result result = first;
    size_t needed_again = needed;
    if (first == PALAVER_BUFFER_TOO_SMALL) {
        free(buf);
        len = needed;
        buf = malloc(len);
        result = palaver_engine_rooms(d->engine, buf, len, &needed_again);
    }
    begin_result(d, "rooms", result);
    printf(",\"first\":{\"result\":%d,\"name\":\"%s\",\"needed\":%zu,\"untouched\":%s", (int)first,
           palaver_result_name(first), needed, untouched ? "true" : "false");
    put_field("error", first_error);
    printf("},\"needed\":%zu,\"rooms\":%s", needed_again, result == PALAVER_OK ? buf : "null");
    end_line(d);
    free(buf);
}

static void cmd_stats(driver *d) {
    palaver_stats s;
    memset(&s, 0, sizeof s);
    palaver_result result = palaver_engine_stats(d->engine, &s);
    begin_result(d, "stats", result);
    if (result == PALAVER_OK) {
        printf(",\"stats\":{\"connections\":%" PRIu64 ",\"connections_total\":%" PRIu64
               ",\"connections_refused\":%" PRIu64 ",\"users_online\":%" PRIu64 ",\"rooms\":%" PRIu64
               ",\"messages\":%" PRIu64 ",\"private_messages\":%" PRIu64 ",\"requests_rejected\":%" PRIu64
               ",\"events_dropped\":%" PRIu64 ",\"pending_host_acks\":%" PRIu64 ",\"uptime_ms\":%" PRIu64
               ",\"cluster_mode\":%s,\"redis_connected\":%s,\"redis_outages\":%" PRIu64
               ",\"journal_pending\":%" PRIu64 ",\"nodes_alive\":%" PRIu64 "}",
               s.connections, s.connections_total, s.connections_refused, s.users_online, s.rooms, s.messages,
               s.private_messages, s.requests_rejected, s.events_dropped, s.pending_host_acks, s.uptime_ms,
               s.cluster_mode ? "true" : "false", s.redis_connected ? "true" : "false", s.redis_outages,
               s.journal_pending, s.nodes_alive);
    }
    end_line(d);
}

static void cmd_ack_later(driver *d, char *rest) {
    pthread_mutex_lock(&d->out_lock);
    uint64_t ack_id = 0;
    if (d->later_count > 0) {
        ack_id = d->later[0];
        memmove(d->later, d->later + 1, (d->later_count - 1) * sizeof d->later[0]);
        d->later_count--;
    }
    pthread_mutex_unlock(&d->out_lock);
    palaver_result result = palaver_engine_ack(d->engine, ack_id, rest_or_null(rest));
    begin_result(d, "ack_later", result);
    printf(",\"ack_id\":%" PRIu64, ack_id);
    end_line(d);
}

/* Runs one command; false for quit. */
static bool run_command(driver *d, char *line) {
    char *rest = line;
    char *cmd = next_word(&rest);
    if (cmd == NULL) {
        return true;
    }
    if (strcmp(cmd, "emit_all") == 0) {
        char *event = next_word(&rest);
        simple_result(d, cmd, palaver_engine_emit_to_all(d->engine, event, rest_or_null(rest)));
    } else if (strcmp(cmd, "emit_room") == 0) {
        char *room = next_word(&rest);
        char *event = next_word(&rest);
        simple_result(d, cmd, palaver_engine_emit_to_room(d->engine, room, event, rest_or_null(rest)));
    } else if (strcmp(cmd, "emit_user") == 0) {
        char *user = next_word(&rest);
        char *event = next_word(&rest);
        simple_result(d, cmd, palaver_engine_emit_to_user(d->engine, user, event, rest_or_null(rest)));
    } else if (strcmp(cmd, "disconnect") == 0) {
        char *user = next_word(&rest);
        size_t count = 0;
        palaver_result result = palaver_engine_disconnect_user(d->engine, user, rest_or_null(rest), &count);
        begin_result(d, cmd, result);
        printf(",\"count\":%zu", count);
        end_line(d);
    } else if (strcmp(cmd, "rooms") == 0) {
        cmd_rooms(d, rest);
    } else if (strcmp(cmd, "stats") == 0) {
        cmd_stats(d);
    } else if (strcmp(cmd, "ack") == 0) {
        char *id = next_word(&rest);
        uint64_t ack_id = id ? strtoull(id, NULL, 10) : 0;
        simple_result(d, cmd, palaver_engine_ack(d->engine, ack_id, rest_or_null(rest)));
    } else if (strcmp(cmd, "ack_later") == 0) {
        cmd_ack_later(d, rest);
    } else if (strcmp(cmd, "stop") == 0) {
        palaver_result result = palaver_engine_stop(d->engine, 5000);
        pthread_mutex_lock(&d->out_lock);
        d->stopped = true;
        pthread_mutex_unlock(&d->out_lock);
        simple_result(d, cmd, result);
    } else if (strcmp(cmd, "quit") == 0) {
        return false;
    } else {
        pthread_mutex_lock(&d->out_lock);
        printf("{\"type\":\"unknown_command\",\"cmd\":");
        put_json_string(cmd);
        end_line(d);
    }
    return true;
}

int main(int argc, char **argv) {
    const char *config_json = argc > 1 ? argv[1] : DEFAULT_CONFIG;
    static driver d; /* zeroed; lives until exit */
    pthread_mutex_init(&d.out_lock, NULL);
    atomic_init(&d.in_callback, 0);
    d.main_thread = pthread_self();

    palaver_config *config = NULL;
    palaver_result result = palaver_config_from_json(config_json, &config);
    if (result != PALAVER_OK) {
        simple_result(&d, "config", result);
        return 1;
    }
    result = palaver_engine_new(config, &d.engine);
    palaver_config_free(config);
    if (result == PALAVER_OK) {
        result = palaver_engine_set_callback(d.engine, on_event, &d);
    }
    if (result == PALAVER_OK) {
        result = palaver_engine_start(d.engine);
    }
    uint16_t port = 0;
    if (result == PALAVER_OK) {
        result = palaver_engine_port(d.engine, &port);
    }
    if (result != PALAVER_OK) {
        simple_result(&d, "start", result);
        palaver_engine_free(d.engine);
        return 1;
    }
    pthread_mutex_lock(&d.out_lock);
    printf("{\"type\":\"ready\",\"ready\":true,\"port\":%u,\"version\":", (unsigned)port);
    put_json_string(palaver_version());
    end_line(&d);

    char *line = NULL;
    size_t capacity = 0;
    ssize_t len;
    while ((len = getline(&line, &capacity, stdin)) != -1) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (!run_command(&d, line)) {
            break;
        }
    }
    free(line);

    palaver_engine_free(d.engine); /* stops it first when it still runs */
    pthread_mutex_lock(&d.out_lock);
    d.stopped = true;
    printf("{\"type\":\"bye\"");
    end_line(&d);
    pthread_mutex_destroy(&d.out_lock);
    return 0;
}
