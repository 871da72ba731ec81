/* Servers and a client for host <-> guest networking tests and benchmarks.
 *
 *   net_server echo PORT N     TCP echo, a thread per connection; exits after N connections
 *                              have closed, printing the byte count.
 *   net_server udpecho PORT N  UDP echo of N datagrams (N = 0: until the datagram "quit").
 *   net_server http PORT       HTTP/1.1 keep-alive server on one epoll loop (edge-triggered,
 *                              nonblocking sockets, as nginx runs): every path answers
 *                              "hello, world\n"; GET /exit answers and ends the program.
 *   net_server client ADDR PORT  connects to ADDR:PORT (IPv4 or IPv6), sends a line, prints the reply line.
 *   net_server stream PORT BUF  one-way bulk transfers for bench/tcpbuf.sh, one connection at a
 *                              time: the client sends 'S' and 8 bytes of length (the server
 *                              sends that many bytes, then closes), 'R' (the server reads to
 *                              end of stream, then answers with the 8-byte count) or 'Q' (the
 *                              server exits). BUF > 0: SO_RCVBUF and SO_SNDBUF of the
 *                              listening socket (its connections inherit them); 0: defaults.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what) {
    printf("FAIL %s: %s\n", what, strerror(errno));
    fflush(stdout);
    exit(1);
}

static int listen_on(int port, int type) {
    int s = socket(AF_INET, type, 0);
    if (s < 0) die("socket");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(s, (struct sockaddr *)&a, sizeof a)) die("bind");
    if (type == SOCK_STREAM && listen(s, 512)) die("listen");
    return s;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static long total_bytes;
static int closed;

static void *echo_conn(void *arg) {
    int c = (int)(long)arg;
    char buf[16384];
    long n, bytes = 0;
    while ((n = read(c, buf, sizeof buf)) > 0) {
        if (write(c, buf, n) != n) die("write");
        bytes += n;
    }
    if (n < 0) die("read");
    close(c);
    pthread_mutex_lock(&lock);
    total_bytes += bytes;
    closed++;
    pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static int echo(int port, int n) {
    int s = listen_on(port, SOCK_STREAM);
    printf("listening on %d\n", port);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        int c = accept(s, NULL, NULL);
        if (c < 0) die("accept");
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, echo_conn, (void *)(long)c)) die("pthread_create");
    }
    pthread_mutex_lock(&lock);
    while (closed < n) pthread_cond_wait(&done_cv, &lock);
    pthread_mutex_unlock(&lock);
    printf("echo: connections=%d bytes=%ld\n", n, total_bytes);
    return 0;
}

static int udpecho(int port, int n) {
    int s = listen_on(port, SOCK_DGRAM);
    printf("listening on %d/udp\n", port);
    fflush(stdout);
    char buf[2048];
    long bytes = 0;
    int got = 0;
    /* Echo until the datagram "quit" (answered too), or n datagrams when n > 0. */
    while (n <= 0 || got < n) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        long r = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (r < 0) die("recvfrom");
        if (sendto(s, buf, r, 0, (struct sockaddr *)&from, len) != r) die("sendto");
        if (r == 4 && !memcmp(buf, "quit", 4)) break;
        bytes += r;
        got++;
    }
    printf("udpecho: datagrams=%d bytes=%ld\n", got, bytes);
    return 0;
}

#define BODY "hello, world\n"
#define RESPONSE "HTTP/1.1 200 OK\r\nServer: kiln-test\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" BODY

struct conn {
    int fd;
    size_t len;
    char buf[4096];
};

static int http(int port) {
    int s = listen_on(port, SOCK_STREAM);
    fcntl(s, F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev)) die("epoll_ctl");
    printf("listening on %d\n", port);
    fflush(stdout);
    long requests = 0;
    int quit = 0;
    struct epoll_event events[64];
    while (!quit) {
        int n = epoll_wait(ep, events, 64, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(s, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = nc};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev)) die("epoll_ctl conn");
                }
                if (errno != EAGAIN) die("accept4");
                continue;
            }
            int close_it = 0;
            for (;;) {
                long got = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
                if (got == 0) { close_it = 1; break; }
                if (got < 0) {
                    if (errno != EAGAIN) close_it = 1;
                    break;
                }
                c->len += got;
                /* Answer every complete request in the buffer (pipelining). */
                char *end;
                while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
                    size_t req = end + 4 - c->buf;
                    if (c->len >= 10 && !memcmp(c->buf, "GET /exit ", 10)) quit = 1;
                    if (write(c->fd, RESPONSE, sizeof RESPONSE - 1) != sizeof RESPONSE - 1) { close_it = 1; break; }
                    requests++;
                    memmove(c->buf, c->buf + req, c->len - req);
                    c->len -= req;
                }
                if (c->len == sizeof c->buf) { close_it = 1; break; }
            }
            if (close_it) {
                close(c->fd);
                free(c);
            }
        }
    }
    printf("http: requests=%ld\n", requests);
    return 0;
}

static int client(const char *addr, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    int s;
    if (inet_pton(AF_INET, addr, &a.sin_addr) == 1) {
        s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
    } else if (inet_pton(AF_INET6, addr, &a6.sin6_addr) == 1) {
        s = socket(AF_INET6, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a6, sizeof a6)) die("connect");
    } else {
        errno = EINVAL;
        die("address");
    }
    const char *line = "ping from the guest\n";
    if (write(s, line, strlen(line)) != (long)strlen(line)) die("write");
    char buf[256];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        long got = read(s, buf + len, sizeof buf - 1 - len);
        if (got < 0) die("read");
        if (got == 0) break;
        len += got;
        if (memchr(buf, '\n', len)) break;
    }
    buf[len] = 0;
    printf("client: reply %s", buf);
    close(s);
    return 0;
}

static int read_full(int c, void *p, size_t n) {
    for (size_t got = 0; got < n;) {
        long r = read(c, (char *)p + got, n - got);
        if (r <= 0) return -1;
        got += r;
    }
    return 0;
}

static int stream(int port, int buf) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (buf > 0) {
        if (setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf)) die("SO_RCVBUF");
        if (setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf)) die("SO_SNDBUF");
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(s, (struct sockaddr *)&a, sizeof a)) die("bind");
    if (listen(s, 16)) die("listen");
    int rcv = 0, snd = 0;
    socklen_t len = sizeof rcv;
    getsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcv, &len);
    len = sizeof snd;
    getsockopt(s, SOL_SOCKET, SO_SNDBUF, &snd, &len);
    printf("listening on %d (SO_RCVBUF %d, SO_SNDBUF %d)\n", port, rcv, snd);
    static char data[256 * 1024];
    memset(data, 'k', sizeof data);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) die("accept");
        char cmd;
        if (read_full(c, &cmd, 1)) { close(c); continue; }
        if (cmd == 'Q') { close(c); break; }
        if (cmd == 'S') {
            unsigned long long n;
            if (read_full(c, &n, sizeof n)) { close(c); continue; }
            while (n > 0) {
                long w = write(c, data, n < sizeof data ? n : sizeof data);
                if (w <= 0) break;
                n -= w;
            }
        } else if (cmd == 'R') {
            unsigned long long n = 0;
            long r;
            while ((r = read(c, data, sizeof data)) > 0) n += r;
            if (write(c, &n, sizeof n) != sizeof n) die("write");
        }
        close(c);
    }
    printf("stream: done\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 4 && !strcmp(argv[1], "echo")) return echo(atoi(argv[2]), atoi(argv[3]));
    if (argc >= 4 && !strcmp(argv[1], "udpecho")) return udpecho(atoi(argv[2]), atoi(argv[3]));
    if (argc >= 3 && !strcmp(argv[1], "http")) return http(atoi(argv[2]));
    if (argc >= 4 && !strcmp(argv[1], "client")) return client(argv[2], atoi(argv[3]));
    if (argc >= 4 && !strcmp(argv[1], "stream")) return stream(atoi(argv[2]), atoi(argv[3]));
    printf("usage: net_server echo PORT N | udpecho PORT N | http PORT | client ADDR PORT | stream PORT BUF\n");
    return 2;
}
