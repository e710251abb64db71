/*
 * test_host.h: what the C test hosts (driver.c, sio_host.c) share: the JSON lines
 * they print, so that tests/c/harness.js reads every host the same way, and the
 * parsing of their stdin commands. Header-only (static inline functions); needs
 * _POSIX_C_SOURCE 200809L.
 *
 *   {"type":"event","kind":..,"kind_value":N, every palaver_event field ..}
 *   {"type":"result","cmd":..,"result":N,"name":"PALAVER_..","error":".." ..}
 *   {"type":"violation","what":..}      a broken rule of the header (never expected)
 *
 * Every line is written whole under `out_lock` and flushed, so that lines of the
 * callback thread and the main thread never interleave. String fields of an event
 * are printed whole, with their lengths (a NUL inside a text shows as \u0000); a
 * field whose length disagrees with its pointer is counted by put_event.
 */

#ifndef PALAVER_TEST_HOST_H
#define PALAVER_TEST_HOST_H

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "palaver.h"

/* stdout (and what each program guards with it). */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static inline const char *kind_name(palaver_event_kind kind) {
    switch (kind) {
    case PALAVER_EVENT_CONNECTED: return "connected";
    case PALAVER_EVENT_DISCONNECTED: return "disconnected";
    case PALAVER_EVENT_JOINED: return "joined";
    case PALAVER_EVENT_LEFT: return "left";
    case PALAVER_EVENT_MESSAGE: return "message";
    case PALAVER_EVENT_PRIVATE: return "private";
    case PALAVER_EVENT_CUSTOM: return "custom";
    case PALAVER_EVENT_SOCKET_GATE: return "socket_gate";
    case PALAVER_EVENT_SOCKET_CONNECT: return "socket_connect";
    case PALAVER_EVENT_SOCKET_EVENT: return "socket_event";
    case PALAVER_EVENT_SOCKET_DISCONNECT: return "socket_disconnect";
    case PALAVER_EVENT_WS_OPEN: return "ws_open";
    case PALAVER_EVENT_WS_MESSAGE: return "ws_message";
    case PALAVER_EVENT_WS_CLOSE: return "ws_close";
    }
    return "(not a palaver_event_kind)";
}

/* Writes `len` bytes of `text` as a JSON string, or null for NULL. */
static inline void put_json_text(const char *text, size_t len) {
    if (text == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (c < 0x20) {
                printf("\\u%04x", c);
            } else {
                putchar(c); /* UTF-8 passes through */
            }
        }
    }
    putchar('"');
}

/* A NUL-terminated string (or NULL) as a JSON string. */
static inline void put_json_string(const char *text) {
    put_json_text(text, text == NULL ? 0 : strlen(text));
}

static inline void put_field(const char *name, const char *value) {
    printf(",\"%s\":", name);
    put_json_string(value);
}

/*
 * ,"name":"<the whole text>" for a string field of a palaver_event and its
 * length. False when they disagree: a NULL field with a length, or no NUL after
 * the text (the header promises one).
 */
static inline bool put_event_text(const char *name, const char *value, size_t len) {
    printf(",\"%s\":", name);
    put_json_text(value, len);
    return value == NULL ? len == 0 : value[len] == '\0';
}

/* This thread's last error text. */
static inline void last_error(char *buf, size_t len) {
    if (palaver_last_error(buf, len, NULL) != PALAVER_OK) {
        snprintf(buf, len, "(longer than %zu bytes)", len);
    }
}

/* {"type":"result","cmd":..,"result":N,"name":..,"error":..  (the caller ends the line) */
static inline void put_result_head(const char *cmd, palaver_result result, const char *error) {
    printf("{\"type\":\"result\",\"cmd\":");
    put_json_string(cmd);
    printf(",\"result\":%d,\"name\":\"%s\"", (int)result, palaver_result_name(result));
    put_field("error", error);
}

/*
 * {"type":"event", every field of `event` (the caller ends the line). Returns the
 * number of string fields whose length disagreed with their pointer.
 */
static inline int put_event(const palaver_event *event) {
    int bad = 0;
    printf("{\"type\":\"event\",\"kind\":\"%s\",\"kind_value\":%d", kind_name(event->kind), (int)event->kind);
    bad += !put_event_text("sid", event->sid, event->sid_len);
    bad += !put_event_text("user_id", event->user_id, event->user_id_len);
    bad += !put_event_text("user_name", event->user_name, event->user_name_len);
    bad += !put_event_text("room", event->room, event->room_len);
    bad += !put_event_text("text", event->text, event->text_len);
    bad += !put_event_text("message_id", event->message_id, event->message_id_len);
    bad += !put_event_text("to_user_id", event->to_user_id, event->to_user_id_len);
    bad += !put_event_text("event_name", event->event_name, event->event_name_len);
    bad += !put_event_text("data_json", event->data_json, event->data_json_len);
    bad += !put_event_text("reason", event->reason, event->reason_len);
    bad += !put_event_text("ns", event->ns, event->ns_len);
    bad += !put_event_text("args_json", event->args_json, event->args_json_len);
    bad += !put_event_text("handshake_json", event->handshake_json, event->handshake_json_len);
    printf(",\"ts\":%" PRId64 ",\"ack_id\":%" PRIu64 ",\"gate_id\":%" PRIu64 ",\"ws_id\":%" PRIu64
           ",\"close_code\":%u",
           event->ts, event->ack_id, event->gate_id, event->ws_id, (unsigned)event->close_code);
    /* The attachments as arrays of byte values. */
    fputs(",\"attachments\":[", stdout);
    for (size_t i = 0; i < event->attachments_count; i++) {
        const palaver_bytes *view = &event->attachments[i];
        printf("%s[", i > 0 ? "," : "");
        for (size_t j = 0; j < view->len; j++) {
            printf("%s%u", j > 0 ? "," : "", (unsigned)view->data[j]);
        }
        putchar(']');
    }
    putchar(']');
    bad += (event->attachments == NULL) != (event->attachments_count == 0);
    bad += !put_event_text("json", event->json, event->json_len);
    return bad;
}

/* ,"stats":{every palaver_stats field} */
static inline void put_stats(const palaver_stats *s) {
    printf(",\"stats\":{\"connections\":%" PRIu64 ",\"connections_total\":%" PRIu64
           ",\"connections_refused\":%" PRIu64 ",\"users_online\":%" PRIu64 ",\"rooms\":%" PRIu64
           ",\"messages\":%" PRIu64 ",\"private_messages\":%" PRIu64 ",\"requests_rejected\":%" PRIu64
           ",\"packets_dropped\":%" PRIu64 ",\"events_dropped\":%" PRIu64 ",\"pending_host_acks\":%" PRIu64
           ",\"uptime_ms\":%" PRIu64 ",\"cluster_mode\":%s,\"redis_connected\":%s,\"redis_outages\":%" PRIu64
           ",\"journal_pending\":%" PRIu64 ",\"nodes_alive\":%" PRIu64 ",\"events_queued\":%" PRIu64
           ",\"events_queued_bytes\":%" PRIu64 ",\"commands_queued_bytes\":%" PRIu64 ",\"pending_gates\":%" PRIu64
           ",\"pubsub_dropped\":%" PRIu64 "}",
           s->connections, s->connections_total, s->connections_refused, s->users_online, s->rooms, s->messages,
           s->private_messages, s->requests_rejected, s->packets_dropped, s->events_dropped, s->pending_host_acks,
           s->uptime_ms, s->cluster_mode ? "true" : "false", s->redis_connected ? "true" : "false",
           s->redis_outages, s->journal_pending, s->nodes_alive, s->events_queued, s->events_queued_bytes,
           s->commands_queued_bytes, s->pending_gates, s->pubsub_dropped);
}

/* Starts a result line under the lock: {"type":"result","cmd":..,"result":..,"name":..,"error":.. */
static inline void begin_result(const char *cmd, palaver_result result) {
    char error[1024];
    last_error(error, sizeof error); /* before anything else on this thread */
    pthread_mutex_lock(&out_lock);
    put_result_head(cmd, result, error);
}

/* Ends a line begun under the lock, flushes and unlocks. */
static inline void end_line(void) {
    fputs("}\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static inline void simple_result(const char *cmd, palaver_result result) {
    begin_result(cmd, result);
    end_line();
}

/* A violation line; the caller holds out_lock. */
static inline void put_violation(const char *what) {
    printf("{\"type\":\"violation\",\"what\":\"%s\"}\n", what);
    fflush(stdout);
    fprintf(stderr, "VIOLATION: %s\n", what);
}

/* ---- stdin commands ------------------------------------------------------------ */

/* Splits off the next space-separated word of *rest; NULL when there is none. */
static inline char *next_word(char **rest) {
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
static inline char *rest_or_null(char *rest) {
    while (*rest == ' ') {
        rest++;
    }
    return *rest == '\0' ? NULL : rest;
}

#endif /* PALAVER_TEST_HOST_H */
