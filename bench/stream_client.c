/* bench/stream_client: one-way bulk transfers against `net_server stream` (tests/c/net_server.c),
 * for bench/tcpbuf.sh.
 *
 *   stream_client HOST PORT send BYTES   host -> server: sends BYTES, then waits for the
 *                                        server's count of what it received (must match)
 *   stream_client HOST PORT recv BYTES   server -> host: asks for BYTES and reads them to
 *                                        end of stream (count and content checked)
 *   stream_client HOST PORT quit         ends the server
 *
 * Prints "MBps=... bytes=... secs=..." (MB = 10^6 bytes; the time runs from connect to the
 * last byte or the server's count). Exits 1 on any error or short transfer. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

static void write_full(int s, const void *p, size_t n) {
    for (size_t put = 0; put < n;) {
        ssize_t w = write(s, (const char *)p + put, n - put);
        if (w <= 0) fail("write");
        put += w;
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: stream_client HOST PORT send|recv BYTES | HOST PORT quit\n");
        return 2;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) fail("address");
    unsigned long long bytes = argc > 4 ? strtoull(argv[4], NULL, 0) : 0;
    static char buf[1 << 20];
    double t0 = now();
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) fail("socket");
    if (connect(s, (struct sockaddr *)&addr, sizeof addr)) fail("connect");
    unsigned long long got = 0;
    if (!strcmp(argv[3], "quit")) {
        write_full(s, "Q", 1);
        close(s);
        return 0;
    } else if (!strcmp(argv[3], "send")) {
        memset(buf, 'k', sizeof buf);
        write_full(s, "R", 1);
        for (unsigned long long left = bytes; left > 0;) {
            size_t n = left < sizeof buf ? left : sizeof buf;
            write_full(s, buf, n);
            left -= n;
        }
        shutdown(s, SHUT_WR);
        size_t have = 0;
        while (have < sizeof got) {
            ssize_t r = read(s, (char *)&got + have, sizeof got - have);
            if (r <= 0) fail("read count");
            have += r;
        }
    } else if (!strcmp(argv[3], "recv")) {
        char cmd[9] = {'S'};
        memcpy(cmd + 1, &bytes, 8);
        write_full(s, cmd, sizeof cmd);
        ssize_t r;
        while ((r = read(s, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != 'k') {
                    fprintf(stderr, "byte %llu is wrong\n", got + i);
                    return 1;
                }
            got += r;
        }
        if (r < 0) fail("read");
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[3]);
        return 2;
    }
    double secs = now() - t0;
    close(s);
    printf("MBps=%.1f bytes=%llu secs=%.3f\n", got / secs / 1e6, got, secs);
    if (got != bytes) {
        fprintf(stderr, "transferred %llu of %llu bytes\n", got, bytes);
        return 1;
    }
    return 0;
}
