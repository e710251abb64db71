/*
 * lifecycle_loop.c: new / start / stop / free, N times.
 *
 *   lifecycle_loop [CYCLES] [--abandon]      (CYCLES: default 10)
 *
 * Each cycle registers a callback, starts an engine on port 0, connects one
 * long-polling client, waits for its `connected` event, closes the client (with
 * --abandon: leaves its session open, as a client that vanished), then stops (even cycles:
 * palaver_engine_stop then palaver_engine_free; odd cycles: palaver_engine_free of
 * the running engine). After each cycle no callback may run any more, and from
 * the second cycle on the process must be back to the threads and file
 * descriptors it had after the first.
 * Exits 1 with a message at the first failure.
 */

#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "palaver.h"
#include "polling_client.h"

#define WAIT_SECONDS 60 /* generous: valgrind runs this too */

static bool abandon_client;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int connected;
    int disconnected;
    int events;
    bool stopped;   /* set once stop/free returned */
    int after_stop; /* callbacks after that */
} counters;

static void on_event(void *userdata, const palaver_event *event) {
    counters *c = userdata;
    pthread_mutex_lock(&c->lock);
    if (c->stopped) {
        c->after_stop++;
    }
    if (event->kind == PALAVER_EVENT_CONNECTED) {
        c->connected++;
    }
    if (event->kind == PALAVER_EVENT_DISCONNECTED) {
        c->disconnected++;
    }
    c->events++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

static void die(int cycle, const char *what, palaver_result result) {
    char error[512] = "";
    palaver_last_error(error, sizeof error, NULL);
    fprintf(stderr, "lifecycle_loop: cycle %d: %s (result %d: \"%s\")\n", cycle, what, (int)result, error);
    fflush(stderr);
    _exit(1);
}

static void must(int cycle, palaver_result result, const char *what) {
    if (result != PALAVER_OK) {
        die(cycle, what, result);
    }
}

/* Waits until *counter >= at_least; false after WAIT_SECONDS. */
static bool wait_count(counters *c, const int *counter, int at_least) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    while (*counter < at_least && rc == 0) {
        rc = pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
    }
    bool reached = *counter >= at_least;
    pthread_mutex_unlock(&c->lock);
    return reached;
}

static bool wait_connected(counters *c, int at_least) {
    return wait_count(c, &c->connected, at_least);
}

static bool wait_disconnected(counters *c, int at_least) {
    return wait_count(c, &c->disconnected, at_least);
}

/* Threads of this process, from /proc/self/status. */
static int thread_count(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    int threads = -1;
    while (status != NULL && fgets(line, sizeof line, status) != NULL) {
        if (sscanf(line, "Threads: %d", &threads) == 1) {
            break;
        }
    }
    if (status != NULL) {
        fclose(status);
    }
    return threads;
}

/* Open file descriptors, from /proc/self/fd. */
static int fd_count(void) {
    DIR *dir = opendir("/proc/self/fd");
    int count = 0;
    if (dir == NULL) {
        return -1;
    }
    while (readdir(dir) != NULL) {
        count++;
    }
    closedir(dir);
    return count;
}

static void sleep_ms(unsigned ms) {
    struct timespec duration = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&duration, &duration) != 0 && errno == EINTR) {
    }
}

static void run_cycle(int cycle, int threads_before, int fds_before) {
    counters c = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
    palaver_config *config = NULL;
    palaver_engine *engine = NULL;
    must(cycle, palaver_config_from_json("{\"port\": 0, \"history\": {\"storage\": \"memory\"}}", &config),
         "palaver_config_from_json");
    must(cycle, palaver_engine_new(config, &engine), "palaver_engine_new");
    palaver_config_free(config);
    must(cycle, palaver_engine_set_callback(engine, on_event, &c), "palaver_engine_set_callback");
    must(cycle, palaver_engine_start(engine), "palaver_engine_start");
    uint16_t port = 0;
    must(cycle, palaver_engine_port(engine, &port), "palaver_engine_port");

    char sid[64];
    if (!polling_connect(port, "{\"name\":\"Cycle\"}", sid, sizeof sid)) {
        die(cycle, "the polling client cannot connect", PALAVER_OK);
    }
    if (!wait_connected(&c, 1)) {
        die(cycle, "no connected event", PALAVER_OK);
    }
    if (!abandon_client) {
        /* An Engine.IO close packet; the engine reports the disconnect. */
        if (!polling_send(port, sid, "1")) {
            die(cycle, "the polling client cannot close", PALAVER_OK);
        }
        if (!wait_disconnected(&c, 1)) {
            die(cycle, "no disconnected event", PALAVER_OK);
        }
    }

    if (cycle % 2 == 0) {
        must(cycle, palaver_engine_stop(engine, 5000), "palaver_engine_stop");
        pthread_mutex_lock(&c.lock);
        c.stopped = true;
        pthread_mutex_unlock(&c.lock);
        palaver_engine_free(engine);
    } else {
        palaver_engine_free(engine); /* stops the running engine */
        pthread_mutex_lock(&c.lock);
        c.stopped = true;
        pthread_mutex_unlock(&c.lock);
    }

    /* Threads end right after being joined; give the kernel a moment to reap them. */
    int threads = thread_count();
    int fds = fd_count();
    if (threads_before < 0) { /* first cycle: no baseline yet */
        threads_before = threads;
        fds_before = fds;
    }
    for (int i = 0; i < 100 && (threads > threads_before || fds > fds_before); i++) {
        sleep_ms(20);
        threads = thread_count();
        fds = fd_count();
    }
    pthread_mutex_lock(&c.lock);
    int after_stop = c.after_stop;
    int events = c.events;
    pthread_mutex_unlock(&c.lock);
    if (after_stop != 0) {
        die(cycle, "a callback ran after stop/free returned", PALAVER_OK);
    }
    if (threads != threads_before) {
        fprintf(stderr, "lifecycle_loop: cycle %d: %d threads, %d before the cycle\n", cycle, threads, threads_before);
        _exit(1);
    }
    if (fds != fds_before) {
        fprintf(stderr, "lifecycle_loop: cycle %d: %d open fds, %d before the cycle\n", cycle, fds, fds_before);
        _exit(1);
    }
    printf("cycle %d: port %u, %d events, %s%s\n", cycle, (unsigned)port, events,
           cycle % 2 == 0 ? "stop + free" : "free while running", abandon_client ? ", client abandoned" : "");
    pthread_cond_destroy(&c.changed);
    pthread_mutex_destroy(&c.lock);
}

int main(int argc, char **argv) {
    int cycles = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--abandon") == 0) {
            abandon_client = true;
        } else if ((cycles = atoi(argv[i])) <= 0) {
            fprintf(stderr, "usage: %s [CYCLES] [--abandon]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /*
     * The first cycle sets the baseline: the first runtime also creates what
     * lives as long as the process (tokio's signal pipe, for example). Every
     * later cycle must end with exactly those threads and descriptors.
     */
    int threads_before = thread_count();
    int fds_before = fd_count();
    for (int cycle = 0; cycle < cycles; cycle++) {
        run_cycle(cycle, cycle == 0 ? -1 : threads_before, cycle == 0 ? -1 : fds_before);
        if (cycle == 0) {
            threads_before = thread_count();
            fds_before = fd_count();
            printf("baseline after the first cycle: %d threads, %d fds\n", threads_before, fds_before);
        }
    }
    printf("lifecycle_loop: %d cycles passed (palaver %s)\n", cycles, palaver_version());
    return 0;
}
