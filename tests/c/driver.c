/*
 * driver.c: a C host for the tests, driven on stdin, reporting on stdout.
 *
 *   driver [CONFIG_JSON]      (default: port 0, history in memory)
 *
 * Every stdout line is one JSON object with a "type":
 *   {"type":"ready","port":N,"ready":true}      once the engine runs
 *   {"type":"callback_thread","name":...}  the callback thread's name, at the first event
 *   {"type":"event", "kind":..., every palaver_event field ...}   (test_host.h)
 *   {"type":"ping_ack", ...}       the answer to a custom `ping`, sent in the callback
 *   {"type":"later", ...}          a custom `later` was recorded for `ack_later`
 *   {"type":"result","cmd":...,"result":N,"name":"PALAVER_...","error":"..."}
 *   {"type":"violation","what":...} a broken threading rule, or a string field
 *                                   whose length disagrees with it (never expected)
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
 * whole lines under `out_lock` (test_host.h) and flush.
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
#include "test_host.h"

#define DEFAULT_CONFIG "{\"port\": 0, \"history\": {\"storage\": \"memory\"}}"
#define MAX_LATER 64

typedef struct {
    palaver_engine *engine;
    /* test_host.h's out_lock guards stdout, `stopped` and the recorded `later` ids. */
    bool stopped; /* stop or free has returned */
    uint64_t later[MAX_LATER];
    size_t later_count;
    atomic_int in_callback; /* callbacks running now (never more than one) */
    pthread_t callback_thread;
    bool callback_thread_known;
    pthread_t main_thread;
} driver;

/* ---- the event callback ------------------------------------------------------------ */

static void answer_ping(driver *d, const palaver_event *event) {
    size_t len = event->data_json_len + 32;
    char *answer = malloc(len);
    if (answer == NULL) {
        abort();
    }
    snprintf(answer, len, "{\"pong\": %.*s}", (int)event->data_json_len, event->data_json);
    palaver_result result = palaver_engine_ack(d->engine, event->ack_id, answer);
    char error[512];
    last_error(error, sizeof error);
    free(answer);
    pthread_mutex_lock(&out_lock);
    printf("{\"type\":\"ping_ack\",\"ack_id\":%" PRIu64 ",\"result\":%d,\"name\":\"%s\"", event->ack_id, (int)result,
           palaver_result_name(result));
    put_field("error", error);
    fputs("}\n", stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static void on_event(void *userdata, const palaver_event *event) {
    driver *d = userdata;
    int running = atomic_fetch_add(&d->in_callback, 1);

    pthread_mutex_lock(&out_lock);
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
    int bad_lengths = put_event(event);
    fputs("}\n", stdout);
    if (bad_lengths != 0) {
        put_violation("a string field's length disagrees with its pointer");
    }
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
    pthread_mutex_unlock(&out_lock);

    if (custom && strcmp(event->event_name, "ping") == 0) {
        answer_ping(d, event); /* answered inside the callback */
    }
    atomic_fetch_sub(&d->in_callback, 1);
}

/* ---- commands ------------------------------------------------------------------------ */

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
    begin_result("rooms", result);
    printf(",\"first\":{\"result\":%d,\"name\":\"%s\",\"needed\":%zu,\"untouched\":%s", (int)first,
           palaver_result_name(first), needed, untouched ? "true" : "false");
    put_field("error", first_error);
    printf("},\"needed\":%zu,\"rooms\":%s", needed_again, result == PALAVER_OK ? buf : "null");
    end_line();
    free(buf);
}

static void cmd_stats(driver *d) {
    palaver_stats s;
    memset(&s, 0, sizeof s);
    palaver_result result = palaver_engine_stats(d->engine, &s);
    begin_result("stats", result);
    if (result == PALAVER_OK) {
        put_stats(&s);
    }
    end_line();
}

static void cmd_ack_later(driver *d, char *rest) {
    pthread_mutex_lock(&out_lock);
    uint64_t ack_id = 0;
    if (d->later_count > 0) {
        ack_id = d->later[0];
        memmove(d->later, d->later + 1, (d->later_count - 1) * sizeof d->later[0]);
        d->later_count--;
    }
    pthread_mutex_unlock(&out_lock);
    palaver_result result = palaver_engine_ack(d->engine, ack_id, rest_or_null(rest));
    begin_result("ack_later", result);
    printf(",\"ack_id\":%" PRIu64, ack_id);
    end_line();
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
        simple_result(cmd, palaver_engine_emit_to_all(d->engine, event, rest_or_null(rest)));
    } else if (strcmp(cmd, "emit_room") == 0) {
        char *room = next_word(&rest);
        char *event = next_word(&rest);
        simple_result(cmd, palaver_engine_emit_to_room(d->engine, room, event, rest_or_null(rest)));
    } else if (strcmp(cmd, "emit_user") == 0) {
        char *user = next_word(&rest);
        char *event = next_word(&rest);
        simple_result(cmd, palaver_engine_emit_to_user(d->engine, user, event, rest_or_null(rest)));
    } else if (strcmp(cmd, "disconnect") == 0) {
        char *user = next_word(&rest);
        size_t count = 0;
        palaver_result result = palaver_engine_disconnect_user(d->engine, user, rest_or_null(rest), &count);
        begin_result(cmd, result);
        printf(",\"count\":%zu", count);
        end_line();
    } else if (strcmp(cmd, "rooms") == 0) {
        cmd_rooms(d, rest);
    } else if (strcmp(cmd, "stats") == 0) {
        cmd_stats(d);
    } else if (strcmp(cmd, "ack") == 0) {
        char *id = next_word(&rest);
        uint64_t ack_id = id ? strtoull(id, NULL, 10) : 0;
        simple_result(cmd, palaver_engine_ack(d->engine, ack_id, rest_or_null(rest)));
    } else if (strcmp(cmd, "ack_later") == 0) {
        cmd_ack_later(d, rest);
    } else if (strcmp(cmd, "stop") == 0) {
        palaver_result result = palaver_engine_stop(d->engine, 5000);
        pthread_mutex_lock(&out_lock);
        d->stopped = true;
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

int main(int argc, char **argv) {
    const char *config_json = argc > 1 ? argv[1] : DEFAULT_CONFIG;
    static driver d; /* zeroed; lives until exit */
    atomic_init(&d.in_callback, 0);
    d.main_thread = pthread_self();

    palaver_config *config = NULL;
    palaver_result result = palaver_config_from_json(config_json, &config);
    if (result != PALAVER_OK) {
        simple_result("config", result);
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
        simple_result("start", result);
        palaver_engine_free(d.engine);
        return 1;
    }
    pthread_mutex_lock(&out_lock);
    printf("{\"type\":\"ready\",\"ready\":true,\"port\":%u,\"version\":", (unsigned)port);
    put_json_string(palaver_version());
    end_line();

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
    pthread_mutex_lock(&out_lock);
    d.stopped = true;
    printf("{\"type\":\"bye\"");
    end_line();
    return 0;
}
