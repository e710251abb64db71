/*
 * polling_client.h: just enough of a Socket.IO client (Engine.IO v4 long-polling,
 * plain blocking sockets) for the standalone C tests to make the engine produce
 * events: connect to the namespace, send a packet, close, poll until the server
 * closed the session. Header-only (static inline functions); needs
 * _POSIX_C_SOURCE 200809L.
 */

#ifndef PALAVER_TEST_POLLING_CLIENT_H
#define PALAVER_TEST_POLLING_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Seconds a request may take (generous: the tests also run under valgrind). */
#define POLLING_CLIENT_TIMEOUT_S 60

/*
 * One HTTP/1.1 request with `Connection: close`; writes the response body
 * (NUL-terminated, cut to fit) into `body`. True on status 200.
 */
static inline bool http_request(uint16_t port, const char *method, const char *path, const char *payload, char *body,
                         size_t body_len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct timeval timeout = {.tv_sec = POLLING_CLIENT_TIMEOUT_S, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close(fd);
        return false;
    }
    char request[1024];
    size_t payload_len = payload ? strlen(payload) : 0;
    int head = snprintf(request, sizeof request,
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
                        "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
                        method, path, (unsigned)port, payload_len, payload ? payload : "");
    if (head < 0 || (size_t)head >= sizeof request || write(fd, request, (size_t)head) != head) {
        close(fd);
        return false;
    }
    char response[8192];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof response - 1 && (n = read(fd, response + got, sizeof response - 1 - got)) > 0) {
        got += (size_t)n;
    }
    close(fd);
    response[got] = '\0';
    const char *start = strstr(response, "\r\n\r\n");
    if (strncmp(response, "HTTP/1.1 200", 12) != 0 || start == NULL) {
        return false;
    }
    snprintf(body, body_len, "%s", start + 4);
    return true;
}

/*
 * Opens an Engine.IO session and connects it to the namespace `/` (the engine then
 * reports a `connected` event), and returns once the connect is answered (the
 * packets of that poll are read). `auth_json` (or NULL) is the handshake's auth, for
 * example {"name":"Ada"}. Writes the Engine.IO session id into `sid`.
 */
static inline bool polling_connect(uint16_t port, const char *auth_json, char *sid, size_t sid_len) {
    char body[2048];
    if (!http_request(port, "GET", "/socket.io/?EIO=4&transport=polling", NULL, body, sizeof body)) {
        return false;
    }
    /* The open packet: 0{"sid":"...",...} */
    const char *key = strstr(body, "\"sid\":\"");
    if (body[0] != '0' || key == NULL) {
        return false;
    }
    key += strlen("\"sid\":\"");
    size_t len = strcspn(key, "\"");
    if (len + 1 > sid_len) {
        return false;
    }
    memcpy(sid, key, len);
    sid[len] = '\0';
    char connect_packet[512];
    snprintf(connect_packet, sizeof connect_packet, "40%s", auth_json ? auth_json : "");
    char path[256];
    snprintf(path, sizeof path, "/socket.io/?EIO=4&transport=polling&sid=%s", sid);
    if (!http_request(port, "POST", path, connect_packet, body, sizeof body)) {
        return false;
    }
    /*
     * Like socket.io-client, waits for the namespace's answer before sending
     * anything to it: the server ignores packets for a namespace the session is
     * not connected to yet. 40 is the connect, 44 a connect_error.
     */
    char poll[8192];
    for (int polls = 0; polls < 10; polls++) {
        if (!http_request(port, "GET", path, NULL, poll, sizeof poll)) {
            return false;
        }
        for (char *packet = poll, *end; packet != NULL; packet = end ? end + 1 : NULL) {
            end = strchr(packet, '\x1e');
            if (strncmp(packet, "40", 2) == 0) {
                return true;
            }
            if (strncmp(packet, "44", 2) == 0) {
                return false;
            }
        }
    }
    return false;
}

/* Sends one Engine.IO packet, for example 42["event",{}] or 421["event",{}] (ack 1). */
static inline bool polling_send(uint16_t port, const char *sid, const char *packet) {
    char path[256];
    char body[256];
    snprintf(path, sizeof path, "/socket.io/?EIO=4&transport=polling&sid=%s", sid);
    return http_request(port, "POST", path, packet, body, sizeof body);
}

/* Closes the session from the client side (an Engine.IO close packet). */
static inline bool polling_close(uint16_t port, const char *sid) {
    return polling_send(port, sid, "1");
}

/*
 * Polls, as socket.io-client does, until the server ended the session (after a
 * kick or a stop): on the Socket.IO disconnect packet `41` the client closes the
 * Engine.IO session itself; an Engine.IO close packet `1`, or a poll the session
 * no longer exists for, ends it too. (A session whose client never polls again
 * stays open on the server.)
 */
static inline bool polling_until_closed(uint16_t port, const char *sid) {
    char path[256];
    char body[8192];
    snprintf(path, sizeof path, "/socket.io/?EIO=4&transport=polling&sid=%s", sid);
    for (int polls = 0; polls < 10; polls++) {
        if (!http_request(port, "GET", path, NULL, body, sizeof body)) {
            return true; /* the session is gone */
        }
        /* The packets of one poll are separated by the record separator 0x1e. */
        for (char *packet = body, *end; packet != NULL; packet = end ? end + 1 : NULL) {
            end = strchr(packet, '\x1e');
            size_t len = end ? (size_t)(end - packet) : strlen(packet);
            if (len == 1 && packet[0] == '1') {
                return true;
            }
            if (len == 2 && packet[0] == '4' && packet[1] == '1') {
                polling_close(port, sid); /* fails harmlessly if the server closed it first */
                return true;
            }
        }
    }
    return false;
}

#endif /* PALAVER_TEST_POLLING_CLIENT_H */
