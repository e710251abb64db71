/*
 * misuse.c: every documented failure of the C API, checked one by one.
 *
 * NULL arguments, _free(NULL), bad configurations, wrong engine states, too small
 * buffers, unknown acks, calls from inside the callback, restart and free of a
 * running engine, concurrent stops. Exits 1 with file:line and the library's error
 * text at the first check that fails; prints the number of checks and exits 0 when
 * all pass.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "palaver.h"
#include "polling_client.h"

/* Generous: the same program runs under valgrind. */
#define WAIT_SECONDS 60
#define CONFIG_JSON "{\"port\": 0, \"history\": {\"storage\": \"memory\"}}"

/* ---- checking ----------------------------------------------------------------- */

static int checks;

static void fail_at(int line, const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, "misuse: FAILED at misuse.c:%d: ", line);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    fflush(stdout);
    fflush(stderr);
    _exit(1); /* not exit(): library threads may still run */
}

/* Asserts a condition; the message says what was expected. */
#define REQUIRE(condition, ...)                                                                                    \
    do {                                                                                                           \
        checks++;                                                                                                  \
        if (!(condition)) {                                                                                        \
            fail_at(__LINE__, __VA_ARGS__);                                                                        \
        }                                                                                                          \
    } while (0)

/*
 * Asserts a call's result, and that palaver_last_error (on this thread) is empty
 * after a success and says something after a failure.
 */
#define EXPECT(call, expected) expect_result((call), (expected), #call, __LINE__)

static void expect_result(palaver_result got, palaver_result expected, const char *call, int line) {
    char error[1024] = "(palaver_last_error failed)";
    palaver_result error_result = palaver_last_error(error, sizeof error, NULL);
    checks++;
    if (got != expected) {
        fail_at(line, "%s returned %s, expected %s (last error: \"%s\")", call, palaver_result_name(got),
                palaver_result_name(expected), error);
    }
    if (error_result != PALAVER_OK) {
        fail_at(line, "palaver_last_error after %s returned %s", call, palaver_result_name(error_result));
    }
    if (expected == PALAVER_OK && error[0] != '\0') {
        fail_at(line, "%s succeeded, yet the last error is \"%s\" (documented: empty after a success)", call, error);
    }
    if (expected != PALAVER_OK && error[0] == '\0') {
        fail_at(line, "%s failed with %s but palaver_last_error is empty", call, palaver_result_name(got));
    }
}

static void section(const char *name) {
    printf("misuse: %s\n", name);
    fflush(stdout);
}

static void sleep_ms(unsigned ms) {
    struct timespec duration = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&duration, &duration) != 0 && errno == EINTR) {
    }
}

/* ---- the event callback --------------------------------------------------------- */

/* What the callback saw; shared with main under `lock`. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    palaver_engine *engine;
    unsigned slow_ms;  /* sleep in every callback */
    int events;        /* callbacks finished */
    int connected;     /* connected events */
    int disconnected;  /* disconnected events */
    int custom;        /* custom events */
    uint64_t ack_id;   /* the last custom event's (or socket event's) ack id */
    int socket_events; /* socket events */
    int running;       /* callbacks running now */
    int overlaps;      /* callbacks that started while another ran */
    bool stopped;      /* set by main once stop/free has returned */
    int after_stop;    /* callbacks that started after that */
    /* Calls made from inside the first `connected` callback when `probe` is set. */
    bool probe;
    bool probed;
    palaver_result stop_inside, free_inside_then_stats, set_callback_inside, start_inside, emit_inside;
    char stop_error_inside[256];
} tracker;

static void tracker_init(tracker *t) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->changed, NULL);
}

static void tracker_destroy(tracker *t) {
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
}

static void on_event(void *userdata, const palaver_event *event) {
    tracker *t = userdata;
    pthread_mutex_lock(&t->lock);
    t->running++;
    if (t->running > 1) {
        t->overlaps++;
    }
    if (t->stopped) {
        t->after_stop++;
    }
    bool probe = t->probe && !t->probed && event->kind == PALAVER_EVENT_CONNECTED;
    pthread_mutex_unlock(&t->lock);

    if (probe) {
        palaver_stats stats;
        t->stop_inside = palaver_engine_stop(t->engine, 1000);
        palaver_last_error(t->stop_error_inside, sizeof t->stop_error_inside, NULL);
        /* Documented: from the callback, free leaves the engine running and not freed. */
        palaver_engine_free(t->engine);
        t->free_inside_then_stats = palaver_engine_stats(t->engine, &stats);
        t->set_callback_inside = palaver_engine_set_callback(t->engine, on_event, t);
        t->start_inside = palaver_engine_start(t->engine);
        t->emit_inside = palaver_engine_emit_to_all(t->engine, "probe", "{\"inside\": true}");
    }
    if (t->slow_ms > 0) {
        sleep_ms(t->slow_ms);
    }

    pthread_mutex_lock(&t->lock);
    if (event->kind == PALAVER_EVENT_CONNECTED) {
        t->connected++;
    }
    if (event->kind == PALAVER_EVENT_DISCONNECTED) {
        t->disconnected++;
    }
    if (event->kind == PALAVER_EVENT_CUSTOM) {
        t->custom++;
        t->ack_id = event->ack_id;
    }
    if (event->kind == PALAVER_EVENT_SOCKET_EVENT) {
        t->socket_events++;
        t->ack_id = event->ack_id;
    }
    if (probe) {
        t->probed = true;
    }
    t->events++;
    t->running--;
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
}

/* Waits until *counter >= at_least; false after WAIT_SECONDS. */
static bool wait_count(tracker *t, const int *counter, int at_least) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&t->lock);
    int rc = 0;
    while (*counter < at_least && rc == 0) {
        rc = pthread_cond_timedwait(&t->changed, &t->lock, &deadline);
    }
    bool reached = *counter >= at_least;
    pthread_mutex_unlock(&t->lock);
    return reached;
}

static int read_count(tracker *t, const int *counter) {
    pthread_mutex_lock(&t->lock);
    int value = *counter;
    pthread_mutex_unlock(&t->lock);
    return value;
}

static void mark_stopped(tracker *t) {
    pthread_mutex_lock(&t->lock);
    t->stopped = true;
    pthread_mutex_unlock(&t->lock);
}

/* A new engine (port 0, history in memory) with `t` as the callback's userdata. */
static palaver_engine *new_engine(tracker *t) {
    palaver_config *config = NULL;
    palaver_engine *engine = NULL;
    EXPECT(palaver_config_from_json(CONFIG_JSON, &config), PALAVER_OK);
    EXPECT(palaver_engine_new(config, &engine), PALAVER_OK);
    palaver_config_free(config);
    if (t != NULL) {
        t->engine = engine;
        EXPECT(palaver_engine_set_callback(engine, on_event, t), PALAVER_OK);
    }
    return engine;
}

static uint16_t engine_port(palaver_engine *engine) {
    uint16_t port = 0;
    EXPECT(palaver_engine_port(engine, &port), PALAVER_OK);
    REQUIRE(port != 0, "palaver_engine_port gave port 0");
    return port;
}

static bool fd_is_open(int fd) {
    return fcntl(fd, F_GETFD) != -1;
}

/* ---- the checks ---------------------------------------------------------------- */

static void check_version(void) {
    section("palaver_version");
    const char *version = palaver_version();
    REQUIRE(version != NULL && strcmp(version, "0.1.0") == 0, "palaver_version() is \"%s\"",
            version ? version : "(NULL)");
    section("palaver_result_name");
    REQUIRE(strcmp(palaver_result_name(PALAVER_OK), "PALAVER_OK") == 0, "name of PALAVER_OK");
    REQUIRE(strcmp(palaver_result_name(PALAVER_PANIC), "PALAVER_PANIC") == 0,
            "name of PALAVER_PANIC");
    REQUIRE(strcmp(palaver_result_name(12345), "(not a palaver_result)") == 0,
            "name of a number that is no result");
}

/* Asserts this thread's last error text. */
#define EXPECT_LAST_ERROR(text) expect_last_error((text), __LINE__)

static void expect_last_error(const char *expected, int line) {
    char error[1024] = "(palaver_last_error failed)";
    palaver_last_error(error, sizeof error, NULL);
    checks++;
    if (strcmp(error, expected) != 0) {
        fail_at(line, "the last error is \"%s\", expected \"%s\"", error, expected);
    }
}

static void check_free(void) {
    section("_free(NULL) is a no-op; _free leaves the last error alone");
    EXPECT(palaver_config_new(NULL), PALAVER_INVALID_ARG);
    char before[256];
    palaver_last_error(before, sizeof before, NULL);
    palaver_config_free(NULL);
    palaver_engine_free(NULL);
    palaver_string_free(NULL);
    EXPECT_LAST_ERROR(before);

    /* Free reports no result: freeing a stopped (never started) or running engine
       and a configuration does not turn into a failure text either. */
    palaver_config *config = NULL;
    palaver_engine *engine = NULL;
    EXPECT(palaver_config_from_json(CONFIG_JSON, &config), PALAVER_OK);
    EXPECT(palaver_engine_new(config, &engine), PALAVER_OK);
    palaver_engine_free(engine);
    EXPECT_LAST_ERROR("");
    EXPECT(palaver_engine_new(config, &engine), PALAVER_OK);
    EXPECT(palaver_engine_start(engine), PALAVER_OK);
    palaver_engine_free(engine);
    EXPECT_LAST_ERROR("");
    palaver_config_free(config);
    EXPECT_LAST_ERROR("");
}

static void check_config_null_args(void) {
    section("config functions: NULL arguments");
    palaver_config *config = NULL;
    EXPECT(palaver_config_new(NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_from_json(NULL, &config), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_from_json("{}", NULL), PALAVER_INVALID_ARG);
    REQUIRE(config == NULL, "palaver_config_from_json wrote *out on failure");
    EXPECT(palaver_config_set_host(NULL, "127.0.0.1"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_port(NULL, 1), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_listen(NULL, true), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_builtin_chat(NULL, false), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_token_secret(NULL, "secret"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_history_file(NULL, "x.db"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_cors_origin(NULL, "*"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_allowed_host(NULL, "*"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_limit(NULL, PALAVER_LIMIT_MAX_TEXT_CHARS, 10), PALAVER_INVALID_ARG);

    EXPECT(palaver_config_new(&config), PALAVER_OK);
    REQUIRE(config != NULL, "palaver_config_new gave NULL");
    EXPECT(palaver_config_set_host(config, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_cors_origin(config, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_allowed_host(config, NULL), PALAVER_INVALID_ARG);
    /* Documented NULLs: open mode, history in memory. */
    EXPECT(palaver_config_set_token_secret(config, NULL), PALAVER_OK);
    EXPECT(palaver_config_set_history_file(config, NULL), PALAVER_OK);
    palaver_config_free(config);
}

static void check_config_values(void) {
    section("config functions: invalid values");
    palaver_config *config = NULL;
    EXPECT(palaver_config_new(&config), PALAVER_OK);

    EXPECT(palaver_config_set_host(config, "not-an-ip"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_host(config, "localhost"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_host(config, ""), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_host(config, "\xff\xfe"), PALAVER_INVALID_ARG); /* not UTF-8 */
    EXPECT(palaver_config_set_host(config, "0.0.0.0"), PALAVER_OK);
    EXPECT(palaver_config_set_host(config, "::1"), PALAVER_OK);
    EXPECT(palaver_config_set_port(config, 0), PALAVER_OK);
    EXPECT(palaver_config_set_listen(config, false), PALAVER_OK);
    EXPECT(palaver_config_set_listen(config, true), PALAVER_OK);
    EXPECT(palaver_config_set_builtin_chat(config, false), PALAVER_OK);
    EXPECT(palaver_config_set_builtin_chat(config, true), PALAVER_OK);
    EXPECT(palaver_config_set_token_secret(config, ""), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_token_secret(config, "s3cret"), PALAVER_OK);
    EXPECT(palaver_config_set_token_secret(config, NULL), PALAVER_OK);
    EXPECT(palaver_config_add_cors_origin(config, "not an origin"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_cors_origin(config, "https://chat.example.com/path"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_cors_origin(config, "https://chat.example.com"), PALAVER_OK);
    EXPECT(palaver_config_add_cors_origin(config, "*"), PALAVER_OK);
    EXPECT(palaver_config_add_allowed_host(config, "https://chat.example.com"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_allowed_host(config, "chat.example.com:443"), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_allowed_host(config, ""), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_add_allowed_host(config, "chat.example.com"), PALAVER_OK);
    EXPECT(palaver_config_add_allowed_host(config, "*.example.org"), PALAVER_OK);
    EXPECT(palaver_config_add_allowed_host(config, "*"), PALAVER_OK);

    /* Limits: ids 0..9 exist; zero and out-of-range values are refused. */
    for (uint32_t limit = PALAVER_LIMIT_MAX_TEXT_CHARS; limit <= PALAVER_LIMIT_MAX_CONNECTIONS_PER_IP; limit++) {
        EXPECT(palaver_config_set_limit(config, limit, 100), PALAVER_OK);
        EXPECT(palaver_config_set_limit(config, limit, 0), PALAVER_INVALID_ARG);
    }
    EXPECT(palaver_config_set_limit(config, PALAVER_LIMIT_MAX_CONNECTIONS_PER_IP + 1, 5), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_limit(config, 1000, 5), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_limit(config, UINT32_MAX, 5), PALAVER_INVALID_ARG);
    EXPECT(palaver_config_set_limit(config, PALAVER_LIMIT_MESSAGES_PER_SECOND, UINT64_C(1) << 40),
           PALAVER_INVALID_ARG);

    /* The configuration is still usable after the refusals. */
    palaver_engine *engine = NULL;
    EXPECT(palaver_engine_new(config, &engine), PALAVER_OK);
    palaver_engine_free(engine);
    palaver_config_free(config);
}

static void check_config_json(void) {
    section("palaver_config_from_json: bad configurations");
    static const char *const bad[] = {
        "",                                                             /* not JSON */
        "{",                                                            /* malformed */
        "null",                                                         /* not an object */
        "[]",                                                           /* arrays: serde would read them */
        "[\"0.0.0.0\", 4000]",                                          /* as the fields in order */
        "{\"bogus\": 1}",                                               /* unknown field */
        "{\"limits\": {\"bogus\": 1}}",                                 /* unknown nested field */
        "{\"limits\": {\"max_text_chars\": 0}}",                        /* zero limit */
        "{\"event_queue_capacity\": 0}",                                /* zero limit */
        "{\"port\": 70000}",                                            /* out of range */
        "{\"port\": \"3000\"}",                                         /* wrong type */
        "{\"host\": \"not-an-ip\"}",                                    /* invalid host */
        "{\"identity\": {\"mode\": \"token\"}}",                        /* token mode without a secret */
        "{\"transport\": {\"websocket\": false, \"polling\": false}}",  /* no transport */
        "{\"cors_origins\": [\"nope\"]}",                               /* not an origin */
        "{\"history\": {\"storage\": \"tape\"}}",                       /* unknown storage */
    };
    int sentinel = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        palaver_config *config = (palaver_config *)&sentinel;
        palaver_result result = palaver_config_from_json(bad[i], &config);
        char error[512] = "";
        palaver_last_error(error, sizeof error, NULL);
        REQUIRE(result == PALAVER_INVALID_CONFIG, "palaver_config_from_json(%s) returned %s, expected %s", bad[i],
                palaver_result_name(result), palaver_result_name(PALAVER_INVALID_CONFIG));
        REQUIRE(error[0] != '\0', "palaver_config_from_json(%s) failed without an error text", bad[i]);
        REQUIRE(config == (palaver_config *)&sentinel, "palaver_config_from_json(%s) wrote *out on failure", bad[i]);
    }
    palaver_config *config = NULL;
    EXPECT(palaver_config_from_json("\xff{}", &config), PALAVER_INVALID_ARG); /* not UTF-8 */
    EXPECT(palaver_config_from_json("{}", &config), PALAVER_OK);
    palaver_config_free(config);
    EXPECT(palaver_config_from_json(CONFIG_JSON, &config), PALAVER_OK);
    palaver_config_free(config);
}

static void check_last_error_buffer(void) {
    section("palaver_last_error: too small buffers");
    palaver_config *config = NULL;
    EXPECT(palaver_config_from_json("{\"a_field_that_does_not_exist\": true}", &config), PALAVER_INVALID_CONFIG);

    size_t needed = 0;
    REQUIRE(palaver_last_error(NULL, 0, &needed) == PALAVER_BUFFER_TOO_SMALL,
            "palaver_last_error(NULL, 0, &needed) is not PALAVER_BUFFER_TOO_SMALL");
    REQUIRE(needed > 10, "palaver_last_error reported %zu bytes needed for a long text", needed);
    REQUIRE(palaver_last_error(NULL, 0, NULL) == PALAVER_BUFFER_TOO_SMALL,
            "palaver_last_error(NULL, 0, NULL) is not PALAVER_BUFFER_TOO_SMALL");

    char small[8];
    memset(small, 'X', sizeof small);
    size_t needed_small = 0;
    REQUIRE(palaver_last_error(small, sizeof small, &needed_small) == PALAVER_BUFFER_TOO_SMALL,
            "palaver_last_error with 8 bytes is not PALAVER_BUFFER_TOO_SMALL");
    REQUIRE(needed_small == needed, "needed size %zu, then %zu", needed, needed_small);
    for (size_t i = 0; i < sizeof small; i++) {
        REQUIRE(small[i] == 'X', "palaver_last_error wrote into a too small buffer (byte %zu)", i);
    }
    char *exact = malloc(needed);
    REQUIRE(exact != NULL, "out of memory");
    memset(exact, 'X', needed);
    /* One byte short is still too small (the NUL counts). */
    REQUIRE(palaver_last_error(exact, needed - 1, NULL) == PALAVER_BUFFER_TOO_SMALL,
            "palaver_last_error with needed-1 bytes is not PALAVER_BUFFER_TOO_SMALL");
    size_t needed_exact = 0;
    REQUIRE(palaver_last_error(exact, needed, &needed_exact) == PALAVER_OK,
            "palaver_last_error with the needed size failed");
    REQUIRE(needed_exact == needed && strlen(exact) == needed - 1, "text of %zu bytes for %zu needed", strlen(exact),
            needed);
    REQUIRE(strstr(exact, "a_field_that_does_not_exist") != NULL, "the error text does not name the field: \"%s\"",
            exact);
    /* Reading the text leaves it intact. */
    char again[1024];
    REQUIRE(palaver_last_error(again, sizeof again, NULL) == PALAVER_OK && strcmp(again, exact) == 0,
            "the error text changed on the second read: \"%s\" then \"%s\"", exact, again);
    free(exact);

    /* A success clears it. */
    EXPECT(palaver_config_new(&config), PALAVER_OK);
    palaver_config_free(config);
    needed = 0;
    REQUIRE(palaver_last_error(again, sizeof again, &needed) == PALAVER_OK && again[0] == '\0' && needed == 1,
            "after a success the last error is \"%s\" (needed %zu)", again, needed);
}

/*
 * Every Socket.IO function with valid arguments on `engine` (NULL, or not
 * running) gives `expected`, and a query leaves its outputs alone.
 */
static void check_socket_functions(palaver_engine *engine, palaver_result expected) {
    static const char batch[] = "[{\"emit\":{\"event\":\"x\"}}]";
    static const char args[] = "[1]";
    static const char query[] = "{\"fetch_sockets\":{}}";
    const char *rooms[] = {"room"};
    palaver_target to = {.rooms = rooms, .rooms_count = 1};
    char *answer = (char *)"untouched";
    size_t len = 4242;
    EXPECT(palaver_engine_run(engine, batch, sizeof batch - 1, NULL, 0), expected);
    EXPECT(palaver_engine_emit_to_socket(engine, "/", "sid", "x", args, sizeof args - 1, NULL, 0), expected);
    EXPECT(palaver_engine_emit(engine, &to, "x", NULL, 0, NULL, 0), expected);
    EXPECT(palaver_engine_join(engine, NULL, "sid", rooms, 1), expected);
    EXPECT(palaver_engine_leave(engine, NULL, "sid", rooms, 1), expected);
    EXPECT(palaver_engine_disconnect_socket(engine, NULL, "sid", true), expected);
    EXPECT(palaver_engine_ack_args(engine, 1, args, sizeof args - 1, NULL, 0), expected);
    EXPECT(palaver_engine_admit(engine, 1), expected);
    EXPECT(palaver_engine_refuse(engine, 1, "no"), expected);
    EXPECT(palaver_engine_listen(engine, NULL, "sid", NULL, 0), expected);
    EXPECT(palaver_engine_namespace(engine, "/admin", true), expected);
    EXPECT(palaver_engine_query(engine, query, sizeof query - 1, NULL, 0, &answer, &len), expected);
    EXPECT(palaver_engine_fetch_sockets(engine, NULL, &answer, &len), expected);
    EXPECT(palaver_engine_emit_with_ack(engine, &to, "x", NULL, 0, NULL, 0, 100, &answer, &len), expected);
    REQUIRE(strcmp(answer, "untouched") == 0 && len == 4242, "a failed query wrote its outputs");
}

/* Every engine function with a NULL engine, and with NULL where a pointer is required. */
static void check_engine_null_args(void) {
    section("engine functions: NULL arguments");
    palaver_engine *engine = NULL;
    palaver_stats stats;
    uint16_t port = 0;
    size_t count = 0;
    char buf[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0, "socket() failed");

    EXPECT(palaver_engine_new(NULL, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_set_callback(NULL, on_event, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_start(NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_port(NULL, &port), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_stop(NULL, 1000), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_all(NULL, "event", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_room(NULL, "room", "event", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_user(NULL, "user", "event", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_disconnect_user(NULL, "user", "reason", &count), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_rooms(NULL, buf, sizeof buf, &count), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_stats(NULL, &stats), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_ack(NULL, 1, "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_adopt(NULL, fd, NULL, 0), PALAVER_INVALID_ARG);
    REQUIRE(fd_is_open(fd), "adopt with PALAVER_INVALID_ARG closed the caller's fd");
    check_socket_functions(NULL, PALAVER_INVALID_ARG);

    /* NULL config: every default. */
    EXPECT(palaver_engine_new(NULL, &engine), PALAVER_OK);
    REQUIRE(engine != NULL, "palaver_engine_new gave NULL");
    EXPECT(palaver_engine_port(engine, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_stats(engine, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_all(engine, NULL, "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_room(engine, NULL, "event", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_room(engine, "room", NULL, "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_user(engine, NULL, "event", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_user(engine, "user", NULL, "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_disconnect_user(engine, NULL, "reason", &count), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_ack(engine, 1, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_adopt(engine, -1, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_adopt(engine, fd, NULL, 5), PALAVER_INVALID_ARG);
    REQUIRE(fd_is_open(fd), "adopt with PALAVER_INVALID_ARG closed the caller's fd");
    /* Registering and removing a callback while stopped is fine. */
    EXPECT(palaver_engine_set_callback(engine, on_event, NULL), PALAVER_OK);
    EXPECT(palaver_engine_set_callback(engine, NULL, NULL), PALAVER_OK);
    palaver_engine_free(engine); /* never started */
    close(fd);
}

/* Commands on an engine that is not running: PALAVER_NOT_RUNNING, outputs untouched. */
static void check_not_running(palaver_engine *engine, const char *state) {
    printf("misuse: commands on %s engine\n", state);
    palaver_stats stats;
    memset(&stats, 0xAB, sizeof stats);
    uint16_t port = 4242;
    size_t count = 4242;
    size_t needed = 4242;
    char buf[64] = "untouched";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0, "socket() failed");

    EXPECT(palaver_engine_port(engine, &port), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_emit_to_all(engine, "event", "{}"), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_emit_to_room(engine, "room", "event", "{}"), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_emit_to_user(engine, "user", "event", NULL), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_disconnect_user(engine, "user", NULL, &count), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_rooms(engine, buf, sizeof buf, &needed), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_rooms(engine, NULL, 0, NULL), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_stats(engine, &stats), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_ack(engine, 1, "{}"), PALAVER_NOT_RUNNING);
    EXPECT(palaver_engine_adopt(engine, fd, NULL, 0), PALAVER_NOT_RUNNING);
    REQUIRE(fd_is_open(fd), "adopt with PALAVER_NOT_RUNNING closed the caller's fd");
    EXPECT(palaver_engine_stop(engine, 1000), PALAVER_NOT_RUNNING);
    close(fd);
    check_socket_functions(engine, PALAVER_NOT_RUNNING);

    REQUIRE(port == 4242 && count == 4242 && strcmp(buf, "untouched") == 0,
            "a failed call wrote an output (port %u, count %zu, buf \"%s\")", (unsigned)port, count, buf);
    const unsigned char *bytes = (const unsigned char *)&stats;
    for (size_t i = 0; i < sizeof stats; i++) {
        REQUIRE(bytes[i] == 0xAB, "palaver_engine_stats wrote *out on failure");
    }
}

static void check_running_engine(void) {
    section("a running engine: state errors and argument errors");
    tracker t;
    tracker_init(&t);
    palaver_engine *engine = new_engine(&t);
    check_not_running(engine, "a new (never started)");

    EXPECT(palaver_engine_start(engine), PALAVER_OK);
    uint16_t port = engine_port(engine);
    EXPECT(palaver_engine_start(engine), PALAVER_ALREADY_STARTED);
    EXPECT(palaver_engine_set_callback(engine, on_event, &t), PALAVER_ALREADY_STARTED);
    EXPECT(palaver_engine_set_callback(engine, NULL, NULL), PALAVER_ALREADY_STARTED);

    /* Arguments a running engine refuses. */
    EXPECT(palaver_engine_emit_to_all(engine, "event", "{not json"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_all(engine, "", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_all(engine, "connect", "{}"), PALAVER_INVALID_ARG); /* reserved */
    EXPECT(palaver_engine_emit_to_all(engine, "disconnect", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_all(engine, "event", "\xff"), PALAVER_INVALID_ARG); /* not UTF-8 */
    EXPECT(palaver_engine_emit_to_room(engine, "", "event", "{}"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_room(engine, "room", "event", "[1,"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_user(engine, "nobody", "event", "{}"), PALAVER_USER_OFFLINE);
    EXPECT(palaver_engine_disconnect_user(engine, "nobody", NULL, NULL), PALAVER_USER_OFFLINE);
    EXPECT(palaver_engine_ack(engine, 987654321, "{}"), PALAVER_UNKNOWN_ACK);
    EXPECT(palaver_engine_ack(engine, 0, "{}"), PALAVER_UNKNOWN_ACK);
    EXPECT(palaver_engine_ack(engine, 1, "not json"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_ack(engine, 1, NULL), PALAVER_INVALID_ARG);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT(palaver_engine_adopt(engine, fd, NULL, 3), PALAVER_INVALID_ARG);
    REQUIRE(fd_is_open(fd), "adopt with PALAVER_INVALID_ARG closed the caller's fd");
    close(fd);

    /* Valid commands with nobody connected. */
    EXPECT(palaver_engine_emit_to_all(engine, "event", NULL), PALAVER_OK);
    EXPECT(palaver_engine_emit_to_all(engine, "event", "{\"a\": [1, 2]}"), PALAVER_OK);
    EXPECT(palaver_engine_emit_to_room(engine, "empty room", "event", "{}"), PALAVER_OK);
    palaver_stats stats;
    EXPECT(palaver_engine_stats(engine, &stats), PALAVER_OK);
    REQUIRE(stats.connections == 0 && stats.rooms == 0 && stats.messages == 0,
            "stats of an idle engine: %" PRIu64 " connections, %" PRIu64 " rooms", stats.connections, stats.rooms);

    /* Rooms: asking for the size, too small, exactly right. */
    size_t needed = 0;
    char buf[16];
    EXPECT(palaver_engine_rooms(engine, NULL, 0, &needed), PALAVER_BUFFER_TOO_SMALL);
    REQUIRE(needed == 3, "no rooms need 3 bytes (\"[]\"), reported %zu", needed);
    memset(buf, 'X', sizeof buf);
    EXPECT(palaver_engine_rooms(engine, buf, 2, &needed), PALAVER_BUFFER_TOO_SMALL);
    REQUIRE(buf[0] == 'X' && buf[1] == 'X', "palaver_engine_rooms wrote into a too small buffer");
    EXPECT(palaver_engine_rooms(engine, buf, 3, &needed), PALAVER_OK);
    REQUIRE(strcmp(buf, "[]") == 0, "rooms of an idle engine: \"%s\"", buf);
    EXPECT(palaver_engine_rooms(engine, buf, sizeof buf, NULL), PALAVER_OK);

    /* A port that is taken: another engine on the same port. */
    section("a port already taken");
    palaver_config *config = NULL;
    palaver_engine *second = NULL;
    EXPECT(palaver_config_from_json(CONFIG_JSON, &config), PALAVER_OK);
    EXPECT(palaver_config_set_port(config, port), PALAVER_OK);
    EXPECT(palaver_engine_new(config, &second), PALAVER_OK);
    palaver_config_free(config);
    EXPECT(palaver_engine_start(second), PALAVER_BIND_FAILED);
    check_not_running(second, "a failed-to-start");
    palaver_engine_free(second);

    section("stop twice");
    EXPECT(palaver_engine_stop(engine, 5000), PALAVER_OK);
    mark_stopped(&t);
    EXPECT(palaver_engine_stop(engine, 5000), PALAVER_NOT_RUNNING);
    check_not_running(engine, "a stopped");
    EXPECT(palaver_engine_set_callback(engine, on_event, &t), PALAVER_OK);
    palaver_engine_free(engine);
    REQUIRE(read_count(&t, &t.after_stop) == 0, "a callback ran after stop returned");
    tracker_destroy(&t);
}

/* The Socket.IO functions on a running engine with the built-in chat off. */
static void check_socket_commands(void) {
    section("Socket.IO commands and queries: argument errors, answers, busy");
    tracker t;
    tracker_init(&t);
    palaver_config *config = NULL;
    palaver_engine *engine = NULL;
    EXPECT(palaver_config_from_json(CONFIG_JSON, &config), PALAVER_OK);
    EXPECT(palaver_config_set_builtin_chat(config, false), PALAVER_OK);
    EXPECT(palaver_engine_new(config, &engine), PALAVER_OK);
    palaver_config_free(config);
    t.engine = engine;
    EXPECT(palaver_engine_set_callback(engine, on_event, &t), PALAVER_OK);
    EXPECT(palaver_engine_start(engine), PALAVER_OK);
    uint16_t port = engine_port(engine);

    static const char args[] = "[1,{\"_placeholder\":true,\"num\":0}]";
    static const uint8_t bytes[] = {1, 0, 2};
    const palaver_bytes attachment[] = {{bytes, sizeof bytes}};
    const palaver_bytes null_data[] = {{NULL, 3}};
    const char *rooms[] = {"room"};
    const char *null_room[] = {NULL};
    const char *reserved[] = {"connect"};

    section("palaver_engine_run: malformed batches are refused whole");
    static const char *const bad_batches[] = {
        "",
        "not json",
        "{\"emit\":{\"event\":\"x\"}}",
        "[{\"emit\":{\"event\":\"disconnect\"}}]",
        "[{\"emit\":{\"event\":\"x\",\"args\":{\"a\":1}}}]",
        "[{\"emit\":{\"event\":\"x\",\"bin\":2}}]", /* one attachment given below */
        "[{\"join\":{\"ns\":\"admin\",\"sid\":\"a\",\"rooms\":[]}}]",
        "[{\"teleport\":{}}]",
    };
    for (size_t i = 0; i < sizeof bad_batches / sizeof bad_batches[0]; i++) {
        EXPECT(palaver_engine_run(engine, bad_batches[i], strlen(bad_batches[i]), attachment, 1), PALAVER_INVALID_ARG);
    }
    EXPECT(palaver_engine_run(engine, NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_run(engine, "[]", 2, NULL, 1), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_run(engine, "[]", 2, null_data, 1), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_run(engine, "[\xff]", 3, NULL, 0), PALAVER_INVALID_ARG); /* not UTF-8 */
    EXPECT(palaver_engine_run(engine, "[]", 2, NULL, 0), PALAVER_OK);
    /* The length, not a NUL, ends the JSON: "[]" and what follows is not read. */
    EXPECT(palaver_engine_run(engine, "[]garbage", 2, NULL, 0), PALAVER_OK);

    section("typed commands: argument errors");
    EXPECT(palaver_engine_emit_to_socket(engine, "/", NULL, "x", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_socket(engine, "/", "sid", NULL, NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_socket(engine, "/", "sid", "connect", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_socket(engine, "admin", "sid", "x", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_socket(engine, "/", "sid", "x", "{\"a\":1}", 7, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_socket(engine, "/", "sid", "x", NULL, 3, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_socket(engine, "/", "sid", "x", NULL, 0, attachment, 1), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_to_socket(engine, "/", "sid", "x", args, sizeof args - 1, NULL, 1), PALAVER_INVALID_ARG);
    palaver_target bad_flags = {.flags = 4};
    palaver_target null_rooms = {.rooms = NULL, .rooms_count = 1};
    palaver_target null_name = {.except = null_room, .except_count = 1};
    palaver_target bad_ns = {.ns = "nope"};
    EXPECT(palaver_engine_emit(engine, &bad_flags, "x", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit(engine, &null_rooms, "x", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit(engine, &null_name, "x", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit(engine, &bad_ns, "x", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit(engine, NULL, "", NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_join(engine, NULL, NULL, rooms, 1), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_join(engine, NULL, "sid", NULL, 1), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_leave(engine, NULL, "sid", null_room, 1), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_disconnect_socket(engine, NULL, NULL, false), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_ack_args(engine, 0, NULL, 0, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_ack_args(engine, 1, "nope", 4, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_admit(engine, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_refuse(engine, 0, "no"), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_refuse(engine, 1, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_listen(engine, NULL, "sid", NULL, 2), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_listen(engine, NULL, NULL, NULL, 0), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_namespace(engine, NULL, false), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_namespace(engine, "no-slash", false), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_namespace(engine, "/a,b", false), PALAVER_INVALID_ARG);

    section("queries: argument errors leave the outputs alone; answers are freed with palaver_string_free");
    char *answer = (char *)"untouched";
    size_t len = 4242;
    static const char fetch_all[] = "{\"fetch_sockets\":{}}";
    static const char bad_ns_query[] = "{\"fetch_sockets\":{\"to\":{\"ns\":\"x\"}}}";
    EXPECT(palaver_engine_query(engine, fetch_all, sizeof fetch_all - 1, NULL, 0, NULL, &len), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_query(engine, NULL, 0, NULL, 0, &answer, &len), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_query(engine, "{}", 2, NULL, 0, &answer, &len), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_query(engine, bad_ns_query, strlen(bad_ns_query), NULL, 0, &answer, &len),
           PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_fetch_sockets(engine, &bad_flags, &answer, &len), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_fetch_sockets(engine, NULL, NULL, NULL), PALAVER_INVALID_ARG);
    EXPECT(palaver_engine_emit_with_ack(engine, NULL, "connect", NULL, 0, NULL, 0, 100, &answer, &len),
           PALAVER_INVALID_ARG);
    palaver_target reserved_room = {.rooms = reserved, .rooms_count = 1}; /* a room may be named anything */
    REQUIRE(strcmp(answer, "untouched") == 0 && len == 4242, "a failed query wrote its outputs");
    EXPECT(palaver_engine_query(engine, fetch_all, sizeof fetch_all - 1, NULL, 0, &answer, &len), PALAVER_OK);
    REQUIRE(strcmp(answer, "[]") == 0 && len == 2, "fetch_sockets with nobody connected: \"%s\" (%zu)", answer, len);
    palaver_string_free(answer);
    answer = NULL;
    EXPECT(palaver_engine_fetch_sockets(engine, &reserved_room, &answer, NULL), PALAVER_OK);
    REQUIRE(answer != NULL && strcmp(answer, "[]") == 0, "fetch_sockets of an empty room: \"%s\"", answer);
    palaver_string_free(answer);
    answer = NULL;
    EXPECT(palaver_engine_emit_with_ack(engine, NULL, "q", args, sizeof args - 1, attachment, 1, 100, &answer, &len),
           PALAVER_OK);
    REQUIRE(strcmp(answer, "[]") == 0, "emit_with_ack with nobody connected: \"%s\"", answer);
    palaver_string_free(answer);

    section("typed commands with nobody connected, in order with the queries");
    EXPECT(palaver_engine_emit_to_socket(engine, NULL, "nobody", "x", args, sizeof args - 1, attachment, 1), PALAVER_OK);
    palaver_target to = {.ns = "/", .rooms = rooms, .rooms_count = 1, .flags = PALAVER_TARGET_VOLATILE | PALAVER_TARGET_LOCAL};
    EXPECT(palaver_engine_emit(engine, &to, "x", NULL, 0, NULL, 0), PALAVER_OK);
    EXPECT(palaver_engine_join(engine, NULL, "nobody", rooms, 1), PALAVER_OK);
    EXPECT(palaver_engine_leave(engine, "/", "nobody", rooms, 0), PALAVER_OK);
    EXPECT(palaver_engine_disconnect_socket(engine, NULL, "nobody", true), PALAVER_OK);
    EXPECT(palaver_engine_ack_args(engine, 987654321, NULL, 0, NULL, 0), PALAVER_OK); /* not pending: ignored */
    EXPECT(palaver_engine_admit(engine, 987654321), PALAVER_OK);
    EXPECT(palaver_engine_refuse(engine, 987654321, ""), PALAVER_OK);
    EXPECT(palaver_engine_listen(engine, "/", "nobody", rooms, 1), PALAVER_OK);
    EXPECT(palaver_engine_namespace(engine, "/new", true), PALAVER_OK);
    palaver_target new_ns = {.ns = "/new"};
    EXPECT(palaver_engine_fetch_sockets(engine, &new_ns, &answer, NULL), PALAVER_OK); /* the namespace exists now */
    palaver_string_free(answer);

    section("a socket event answered from another thread with palaver_engine_ack_args");
    char sid[64];
    REQUIRE(polling_connect(port, NULL, sid, sizeof sid), "polling client cannot connect");
    REQUIRE(polling_send(port, sid, "421[\"misuse\",1,2]"), "cannot send a socket event");
    REQUIRE(wait_count(&t, &t.socket_events, 1), "no socket event");
    pthread_mutex_lock(&t.lock);
    uint64_t ack_id = t.ack_id;
    pthread_mutex_unlock(&t.lock);
    REQUIRE(ack_id != 0, "a socket event with an ack callback has ack_id 0");
    palaver_stats stats;
    EXPECT(palaver_engine_stats(engine, &stats), PALAVER_OK);
    REQUIRE(stats.pending_host_acks == 1, "%" PRIu64 " pending acks, expected 1", stats.pending_host_acks);
    EXPECT(palaver_engine_ack_args(engine, ack_id, "[\"ok\"]", 6, NULL, 0), PALAVER_OK);
    EXPECT(palaver_engine_ack_args(engine, ack_id, "[\"again\"]", 9, NULL, 0), PALAVER_OK); /* ignored */
    /* A query after the acks is answered once they are applied. */
    EXPECT(palaver_engine_fetch_sockets(engine, NULL, &answer, NULL), PALAVER_OK);
    REQUIRE(strstr(answer, "\"local\":true") != NULL, "fetch_sockets does not list the polling client: %s", answer);
    palaver_string_free(answer);
    EXPECT(palaver_engine_stats(engine, &stats), PALAVER_OK);
    REQUIRE(stats.pending_host_acks == 0, "%" PRIu64 " pending acks after the answer", stats.pending_host_acks);
    REQUIRE(polling_close(port, sid), "the polling client cannot close");

    EXPECT(palaver_engine_stop(engine, 5000), PALAVER_OK);
    mark_stopped(&t);
    check_not_running(engine, "a stopped Socket.IO");
    palaver_engine_free(engine);
    REQUIRE(read_count(&t, &t.after_stop) == 0, "a callback ran after stop returned");
    tracker_destroy(&t);

    section("a full command queue is PALAVER_BUSY, never a wait or a crash");
    /* A queue of one byte: a batch given while another waits is refused. */
    EXPECT(palaver_config_from_json("{\"port\": 0, \"builtin_chat\": false, \"command_queue_bytes\": 1}", &config),
           PALAVER_OK);
    EXPECT(palaver_engine_new(config, &engine), PALAVER_OK);
    palaver_config_free(config);
    EXPECT(palaver_engine_start(engine), PALAVER_OK);
    static const char one[] = "[{\"emit\":{\"event\":\"x\",\"args\":[\"a fairly long argument\"]}}]";
    int busy = 0;
    for (int i = 0; i < 200000 && busy == 0; i++) {
        palaver_result result = palaver_engine_run(engine, one, sizeof one - 1, NULL, 0);
        REQUIRE(result == PALAVER_OK || result == PALAVER_BUSY, "run returned %s", palaver_result_name(result));
        busy += result == PALAVER_BUSY;
    }
    REQUIRE(busy > 0, "no PALAVER_BUSY with a command queue of one byte");
    char error[256];
    palaver_last_error(error, sizeof error, NULL);
    REQUIRE(strstr(error, "full") != NULL, "the busy error text: \"%s\"", error);
    /* The queue drains: a query waits for every command before it. */
    EXPECT(palaver_engine_fetch_sockets(engine, NULL, &answer, NULL), PALAVER_OK);
    palaver_string_free(answer);
    EXPECT(palaver_engine_run(engine, one, sizeof one - 1, NULL, 0), PALAVER_OK);
    palaver_engine_free(engine);
}

/* A port bound by this program itself. */
static void check_bind_failed(void) {
    section("a port bound by another socket");
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof address;
    REQUIRE(listener >= 0 && bind(listener, (struct sockaddr *)&address, sizeof address) == 0 &&
                listen(listener, 1) == 0 && getsockname(listener, (struct sockaddr *)&address, &len) == 0,
            "cannot bind a loopback socket");
    palaver_config *config = NULL;
    palaver_engine *engine = NULL;
    EXPECT(palaver_config_from_json(CONFIG_JSON, &config), PALAVER_OK);
    EXPECT(palaver_config_set_port(config, ntohs(address.sin_port)), PALAVER_OK);
    EXPECT(palaver_engine_new(config, &engine), PALAVER_OK);
    palaver_config_free(config);
    EXPECT(palaver_engine_start(engine), PALAVER_BIND_FAILED);
    char error[512];
    palaver_last_error(error, sizeof error, NULL);
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%u", (unsigned)ntohs(address.sin_port));
    REQUIRE(strstr(error, port_text) != NULL, "the bind error does not name the port: \"%s\"", error);
    EXPECT(palaver_engine_stop(engine, 1000), PALAVER_NOT_RUNNING);
    palaver_engine_free(engine);
    close(listener);
}

/* Calls from inside the callback, acks, per-thread errors, restart, free while running. */
static void check_callback(void) {
    section("calls from inside the callback");
    tracker t;
    tracker_init(&t);
    t.probe = true;
    palaver_engine *engine = new_engine(&t);
    EXPECT(palaver_engine_start(engine), PALAVER_OK);
    uint16_t port = engine_port(engine);

    /* This thread's last error, which the callback thread's errors must not touch. */
    palaver_stats stats;
    EXPECT(palaver_engine_stats(NULL, &stats), PALAVER_INVALID_ARG);
    char mine[256];
    palaver_last_error(mine, sizeof mine, NULL);

    char sid[64];
    REQUIRE(polling_connect(port, "{\"name\":\"Probe\"}", sid, sizeof sid), "polling client cannot connect");
    /* The probe runs in the first connected callback, before `connected` counts it. */
    REQUIRE(wait_count(&t, &t.connected, 1), "no connected event");

    pthread_mutex_lock(&t.lock);
    palaver_result stop_inside = t.stop_inside, stats_after_free = t.free_inside_then_stats,
                   set_callback_inside = t.set_callback_inside, start_inside = t.start_inside,
                   emit_inside = t.emit_inside;
    pthread_mutex_unlock(&t.lock);
    REQUIRE(stop_inside == PALAVER_IN_CALLBACK, "palaver_engine_stop in the callback returned %s",
            palaver_result_name(stop_inside));
    REQUIRE(t.stop_error_inside[0] != '\0', "no error text on the callback thread after PALAVER_IN_CALLBACK");
    REQUIRE(stats_after_free == PALAVER_OK,
            "after palaver_engine_free in the callback, stats returned %s (documented: left running, not freed)",
            palaver_result_name(stats_after_free));
    REQUIRE(set_callback_inside == PALAVER_ALREADY_STARTED, "palaver_engine_set_callback in the callback returned %s",
            palaver_result_name(set_callback_inside));
    REQUIRE(start_inside == PALAVER_ALREADY_STARTED, "palaver_engine_start in the callback returned %s",
            palaver_result_name(start_inside));
    REQUIRE(emit_inside == PALAVER_OK, "palaver_engine_emit_to_all in the callback returned %s",
            palaver_result_name(emit_inside));
    char still_mine[256];
    palaver_last_error(still_mine, sizeof still_mine, NULL);
    REQUIRE(strcmp(mine, still_mine) == 0, "another thread changed this thread's last error: \"%s\" -> \"%s\"", mine,
            still_mine);
    EXPECT(palaver_engine_stats(engine, &stats), PALAVER_OK);
    REQUIRE(stats.connections == 1, "%" PRIu64 " connections, expected 1", stats.connections);

    section("acks: answered once, then unknown");
    REQUIRE(polling_send(port, sid, "421[\"misuse\",{\"n\":1}]"), "cannot send a custom event");
    REQUIRE(wait_count(&t, &t.custom, 1), "no custom event");
    uint64_t ack_id = 0;
    pthread_mutex_lock(&t.lock);
    ack_id = t.ack_id;
    pthread_mutex_unlock(&t.lock);
    REQUIRE(ack_id != 0, "a custom event with an ack callback has ack_id 0");
    EXPECT(palaver_engine_stats(engine, &stats), PALAVER_OK);
    REQUIRE(stats.pending_host_acks == 1, "%" PRIu64 " pending acks, expected 1", stats.pending_host_acks);
    EXPECT(palaver_engine_ack(engine, ack_id, "{\"answer\": 42}"), PALAVER_OK);
    EXPECT(palaver_engine_ack(engine, ack_id, "{\"answer\": 43}"), PALAVER_UNKNOWN_ACK);
    REQUIRE(polling_send(port, sid, "42[\"misuse\",{\"n\":2}]"), "cannot send a custom event");
    REQUIRE(wait_count(&t, &t.custom, 2), "no second custom event");
    pthread_mutex_lock(&t.lock);
    ack_id = t.ack_id;
    pthread_mutex_unlock(&t.lock);
    REQUIRE(ack_id == 0, "a custom event without an ack callback has ack_id %" PRIu64, ack_id);

    section("disconnect a user (NULL reason, count)");
    EXPECT(palaver_engine_emit_to_user(engine, "Probe", "hello", "{}"), PALAVER_OK);
    size_t count = 0;
    EXPECT(palaver_engine_disconnect_user(engine, "Probe", NULL, &count), PALAVER_OK);
    REQUIRE(count == 1, "disconnect_user closed %zu connections, expected 1", count);
    /* Like a real client, fetch the goodbye, so that the session ends. */
    REQUIRE(polling_until_closed(port, sid), "the kicked session was not closed");

    section("stop, then restart the same engine");
    EXPECT(palaver_engine_stop(engine, 5000), PALAVER_OK);
    mark_stopped(&t);
    int events_at_stop = read_count(&t, &t.events);
    check_not_running(engine, "a stopped");
    pthread_mutex_lock(&t.lock);
    t.stopped = false;
    pthread_mutex_unlock(&t.lock);
    EXPECT(palaver_engine_start(engine), PALAVER_OK);
    port = engine_port(engine);
    REQUIRE(read_count(&t, &t.events) == events_at_stop, "callbacks ran between stop and restart");
    int connected_before = read_count(&t, &t.connected);
    REQUIRE(polling_connect(port, "{\"name\":\"Again\"}", sid, sizeof sid), "cannot connect after restart");
    REQUIRE(wait_count(&t, &t.connected, connected_before + 1), "no connected event after restart");
    EXPECT(palaver_engine_stats(engine, &stats), PALAVER_OK);
    REQUIRE(stats.connections_total == 1, "after a restart connections_total is %" PRIu64 ", expected 1",
            stats.connections_total);
    int disconnected_before = read_count(&t, &t.disconnected);
    REQUIRE(polling_close(port, sid), "the polling client cannot close");
    REQUIRE(wait_count(&t, &t.disconnected, disconnected_before + 1), "no disconnected event");

    section("free a running engine");
    palaver_engine_free(engine);
    mark_stopped(&t);
    sleep_ms(200);
    REQUIRE(read_count(&t, &t.after_stop) == 0, "%d callbacks ran after stop or free returned",
            read_count(&t, &t.after_stop));
    REQUIRE(read_count(&t, &t.overlaps) == 0, "callbacks ran concurrently");
    tracker_destroy(&t);
}

/* Two threads stop the same engine while a slow callback still has events to deliver. */
typedef struct {
    palaver_engine *engine;
    tracker *t;
    palaver_result result;
    int running_at_return; /* callbacks running when stop returned */
    int events_at_return;
} stopper;

static void *stop_thread(void *arg) {
    stopper *s = arg;
    s->result = palaver_engine_stop(s->engine, 5000);
    pthread_mutex_lock(&s->t->lock);
    s->running_at_return = s->t->running;
    s->events_at_return = s->t->events;
    pthread_mutex_unlock(&s->t->lock);
    return NULL;
}

static void check_concurrent_stop(void) {
    section("two threads stop at once, while a slow callback has events queued");
    tracker t;
    tracker_init(&t);
    t.slow_ms = 150;
    palaver_engine *engine = new_engine(&t);
    EXPECT(palaver_engine_start(engine), PALAVER_OK);
    uint16_t port = engine_port(engine);
    /* Three connects and three closes: six slow callbacks queued. */
    char sid[64];
    for (int i = 0; i < 3; i++) {
        REQUIRE(polling_connect(port, NULL, sid, sizeof sid), "polling client cannot connect");
        REQUIRE(polling_close(port, sid), "polling client cannot close");
    }
    REQUIRE(wait_count(&t, &t.events, 1), "no event");

    stopper stoppers[2] = {{.engine = engine, .t = &t}, {.engine = engine, .t = &t}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&threads[i], NULL, stop_thread, &stoppers[i]) == 0, "pthread_create failed");
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
    }
    mark_stopped(&t);
    sleep_ms(300);
    int events = read_count(&t, &t.events);
    REQUIRE((stoppers[0].result == PALAVER_OK && stoppers[1].result == PALAVER_NOT_RUNNING) ||
                (stoppers[0].result == PALAVER_NOT_RUNNING && stoppers[1].result == PALAVER_OK),
            "concurrent stops returned %s and %s, expected PALAVER_OK and PALAVER_NOT_RUNNING",
            palaver_result_name(stoppers[0].result), palaver_result_name(stoppers[1].result));
    for (int i = 0; i < 2; i++) {
        REQUIRE(stoppers[i].running_at_return == 0 && stoppers[i].events_at_return == events,
                "palaver_engine_stop returned %s while callbacks still ran (%d running; %d of %d events delivered): "
                "documented: no callback runs after stop has returned",
                palaver_result_name(stoppers[i].result), stoppers[i].running_at_return, stoppers[i].events_at_return, events);
    }
    palaver_engine_free(engine);
    tracker_destroy(&t);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_version();
    check_free();
    check_config_null_args();
    check_config_values();
    check_config_json();
    check_last_error_buffer();
    check_engine_null_args();
    check_running_engine();
    check_bind_failed();
    check_socket_commands();
    check_callback();
    check_concurrent_stop();
    printf("misuse: all %d checks passed\n", checks);
    return 0;
}
