/* bench/echo_client: load for a TCP echo server (tests/c/net_server.c echo).
 *
 *   echo_client HOST PORT CONNS SECONDS SIZE
 *
 * Opens CONNS connections, then on each one (a thread per connection) sends SIZE bytes and
 * waits for them to come back, again and again for SECONDS. Prints round trips per second,
 * mean and 99th-percentile round-trip latency, and the bytes echoed; every byte is checked.
 * Closes the connections at the end (the server counts them). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr;
static int size;
static double seconds;

struct worker {
    pthread_t thread;
    int fd;
    long trips;
    double *lat;
    long cap;
    int failed;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *run(void *arg) {
    struct worker *w = arg;
    char *out = malloc(size), *in = malloc(size);
    for (int i = 0; i < size; i++) out[i] = (char)(i * 7 + w->fd);
    double end = now() + seconds;
    while (now() < end) {
        double t0 = now();
        if (write(w->fd, out, size) != size) { w->failed = 1; break; }
        int got = 0;
        while (got < size) {
            long n = read(w->fd, in + got, size - got);
            if (n <= 0) { w->failed = 1; goto done; }
            got += n;
        }
        if (memcmp(in, out, size)) { w->failed = 2; break; }
        if (w->trips == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
        }
        w->lat[w->trips++] = now() - t0;
    }
done:
    close(w->fd);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: echo_client HOST PORT CONNS SECONDS SIZE\n");
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    int conns = atoi(argv[3]);
    seconds = atof(argv[4]);
    size = atoi(argv[5]);
    struct worker *ws = calloc(conns, sizeof *ws);
    for (int i = 0; i < conns; i++) {
        ws[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(ws[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(ws[i].fd, (struct sockaddr *)&addr, sizeof addr)) { perror("connect"); return 1; }
    }
    double t0 = now();
    for (int i = 0; i < conns; i++) pthread_create(&ws[i].thread, NULL, run, &ws[i]);
    long trips = 0, failed = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(ws[i].thread, NULL);
        trips += ws[i].trips;
        failed += ws[i].failed != 0;
    }
    double elapsed = now() - t0;
    double *all = malloc((trips + 1) * sizeof *all);
    long k = 0;
    double sum = 0;
    for (int i = 0; i < conns; i++)
        for (long j = 0; j < ws[i].trips; j++) { all[k++] = ws[i].lat[j]; sum += ws[i].lat[j]; }
    qsort(all, trips, sizeof *all, cmp);
    printf("echo: conns=%d size=%d trips=%ld trips_per_s=%.0f mean_us=%.0f p99_us=%.0f MBps=%.2f failed=%ld\n",
           conns, size, trips, trips / elapsed, trips ? sum / trips * 1e6 : 0, trips ? all[(long)(trips * 0.99)] * 1e6 : 0,
           2.0 * trips * size / elapsed / 1e6, failed);
    return failed ? 1 : 0;
}
