/* Sockets inside one guest over the loopback interface. One sub-test per run (argv[1]):
 *   tcp4, tcp6  an echo server (a thread per connection) and 8 client threads, 64 KiB each,
 *               every byte checked
 *   many        200 connections open at once (single thread), echo through each
 *   udp         100 datagram round trips with their ids checked
 *   refused     connect to a closed port: blocking and non-blocking (EINPROGRESS, SO_ERROR)
 *   unix        socketpair and a named AF_UNIX stream socket
 *   epoll       a single-threaded edge-triggered epoll echo server, 20 client threads
 *   timeo       SO_RCVTIMEO on read() and recv(), SO_SNDTIMEO on write() to a full socket:
 *               each fails with EAGAIN after about the timeout; a blocking write() of 4 MiB
 *               to a reader that drains slowly returns 4 MiB (never a short count)
 * Prints one line and exits 0 on success; on a failure prints what failed and exits 1. */
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
#include <sys/un.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS 8
#define PER_CLIENT (64 * 1024)

static void die(const char *what) {
    printf("FAIL %s: %s\n", what, strerror(errno));
    exit(1);
}

static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAIL %s\n", what);
        exit(1);
    }
}

static int family;
static struct sockaddr_storage server_addr;
static socklen_t server_len;

static unsigned char pattern(int client, size_t i) { return (unsigned char)(client * 31 + i * 7 + (i >> 9)); }

static void write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

static void *echo_conn(void *arg) {
    int fd = (int)(long)arg;
    unsigned char buf[8192];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) die("server read");
        if (n == 0) break;
        write_all(fd, buf, (size_t)n);
    }
    close(fd);
    return NULL;
}

static void *server(void *arg) {
    int l = (int)(long)arg;
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        int c = accept(l, NULL, NULL);
        if (c < 0) die("accept");
        if (pthread_create(&t[i], NULL, echo_conn, (void *)(long)c)) die("pthread_create");
    }
    for (int i = 0; i < CLIENTS; i++) pthread_join(t[i], NULL);
    return NULL;
}

static void *client(void *arg) {
    int id = (int)(long)arg;
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&server_addr, server_len)) die("connect");
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) die("TCP_NODELAY");
    unsigned char *out = malloc(PER_CLIENT), *in = malloc(PER_CLIENT);
    for (size_t i = 0; i < PER_CLIENT; i++) out[i] = pattern(id, i);
    size_t sent = 0, got = 0;
    /* Send in 4 KiB pieces, reading back as we go so neither side's buffer fills. */
    while (got < PER_CLIENT) {
        if (sent < PER_CLIENT) {
            size_t n = PER_CLIENT - sent < 4096 ? PER_CLIENT - sent : 4096;
            write_all(fd, out + sent, n);
            sent += n;
        }
        while (got < sent) {
            ssize_t n = read(fd, in + got, sent - got);
            if (n < 0) die("client read");
            check(n > 0, "client read: early end of stream");
            got += (size_t)n;
        }
    }
    check(memcmp(in, out, PER_CLIENT) == 0, "echoed bytes differ");
    if (shutdown(fd, SHUT_WR)) die("shutdown");
    char c;
    check(read(fd, &c, 1) == 0, "end of stream after the server closed");
    close(fd);
    free(in);
    free(out);
    return NULL;
}

static void tcp(int fam, const char *name) {
    family = fam;
    int l = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) die("socket");
    int one = 1;
    if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) die("SO_REUSEADDR");
    memset(&server_addr, 0, sizeof server_addr);
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&server_addr;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        server_len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&server_addr;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        server_len = sizeof *a;
    }
    if (bind(l, (struct sockaddr *)&server_addr, server_len)) die("bind");
    if (listen(l, 64)) die("listen");
    if (getsockname(l, (struct sockaddr *)&server_addr, &server_len)) die("getsockname");
    pthread_t s, c[CLIENTS];
    if (pthread_create(&s, NULL, server, (void *)(long)l)) die("pthread_create");
    for (int i = 0; i < CLIENTS; i++)
        if (pthread_create(&c[i], NULL, client, (void *)(long)i)) die("pthread_create");
    for (int i = 0; i < CLIENTS; i++) pthread_join(c[i], NULL);
    pthread_join(s, NULL);
    close(l);
    printf("%s: connections=%d bytes=%d ok\n", name, CLIENTS, CLIENTS * PER_CLIENT);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

static int listener(int *port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 256)) die("listener");
    if (getsockname(l, (struct sockaddr *)&a, &len)) die("getsockname");
    *port = ntohs(a.sin_port);
    return l;
}

static void many(void) {
    enum { N = 200 };
    int port, l = listener(&port);
    int c[N], s[N];
    struct sockaddr_in a = loopback(port);
    for (int i = 0; i < N; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (c[i] < 0 || connect(c[i], (struct sockaddr *)&a, sizeof a)) die("connect");
    }
    for (int i = 0; i < N; i++)
        if ((s[i] = accept(l, NULL, NULL)) < 0) die("accept");
    for (int i = 0; i < N; i++) {
        char msg[64], back[64];
        int n = snprintf(msg, sizeof msg, "connection %d says hello", i);
        write_all(c[i], (unsigned char *)msg, n);
        check(read(s[i], back, sizeof back) == n, "server read");
        write_all(s[i], (unsigned char *)back, n);
        check(read(c[i], back, sizeof back) == n && memcmp(back, msg, n) == 0, "echo");
    }
    for (int i = 0; i < N; i++) {
        close(c[i]);
        char x;
        check(read(s[i], &x, 1) == 0, "end of stream");
        close(s[i]);
    }
    printf("many: connections=%d ok\n", N);
}

static void udp(void) {
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = loopback(0), from;
    socklen_t len = sizeof sa;
    if (a < 0 || b < 0 || bind(a, (struct sockaddr *)&sa, sizeof sa)) die("udp bind");
    if (getsockname(a, (struct sockaddr *)&sa, &len)) die("getsockname");
    for (int i = 0; i < 100; i++) {
        int v = i * 1000 + 7, got = 0;
        if (sendto(b, &v, sizeof v, 0, (struct sockaddr *)&sa, sizeof sa) != sizeof v) die("sendto");
        len = sizeof from;
        if (recvfrom(a, &got, sizeof got, 0, (struct sockaddr *)&from, &len) != sizeof got) die("recvfrom");
        check(got == v, "datagram payload");
        got += 1;
        if (sendto(a, &got, sizeof got, 0, (struct sockaddr *)&from, len) != sizeof got) die("reply");
        if (recv(b, &v, sizeof v, 0) != sizeof v) die("recv reply");
        check(v == i * 1000 + 8, "reply payload");
    }
    printf("udp: roundtrips=100 ok\n");
}

static const char *err_name(int e) {
    switch (e) {
    case 0: return "0";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EINPROGRESS: return "EINPROGRESS";
    default: return strerror(e);
    }
}

static void refused(void) {
    int port, l = listener(&port);
    close(l);
    struct sockaddr_in a = loopback(port);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(b, (struct sockaddr *)&a, sizeof a);
    int blocking = r == 0 ? 0 : errno;
    int n = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(n, (struct sockaddr *)&a, sizeof a);
    int nb = r == 0 ? 0 : errno;
    /* The refusal arrives at once on loopback; wait a little for it anyway. */
    int soerr = 0;
    socklen_t len = sizeof soerr;
    for (int i = 0; i < 100; i++) {
        if (getsockopt(n, SOL_SOCKET, SO_ERROR, &soerr, &len)) die("SO_ERROR");
        if (soerr) break;
        usleep(10000);
    }
    printf("refused: blocking=%s nonblocking=%s so_error=%s\n", err_name(blocking), err_name(nb), err_name(soerr));
}

static void unix_sockets(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
    char buf[32];
    write_all(sv[0], (const unsigned char *)"pair", 4);
    check(read(sv[1], buf, sizeof buf) == 4 && memcmp(buf, "pair", 4) == 0, "socketpair data");
    close(sv[0]);
    check(read(sv[1], buf, sizeof buf) == 0, "socketpair end of file");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {0};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/kiln-net-test-%d.sock", (int)getpid());
    unlink(a.sun_path);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4)) die("unix listen");
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) die("unix connect");
    int s = accept(l, NULL, NULL);
    if (s < 0) die("unix accept");
    write_all(c, (const unsigned char *)"named", 5);
    check(read(s, buf, sizeof buf) == 5 && memcmp(buf, "named", 5) == 0, "named socket data");
    unlink(a.sun_path);
    printf("unix: ok\n");
}


#define EP_CLIENTS 20
#define EP_BYTES (16 * 1024)

struct conn {
    int fd;
    unsigned char out[EP_BYTES * 2];
    size_t out_len;
    int eof;
};

static void flush_conn(struct conn *c) {
    while (c->out_len > 0) {
        ssize_t w = write(c->fd, c->out, c->out_len);
        if (w < 0) {
            if (errno == EAGAIN) return;
            die("epoll write");
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
}

static void *ep_client(void *arg) {
    int id = (int)(long)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&server_addr, server_len)) die("epoll client connect");
    static __thread unsigned char out[EP_BYTES], in[EP_BYTES];
    for (size_t i = 0; i < EP_BYTES; i++) out[i] = pattern(id, i);
    write_all(fd, out, EP_BYTES);
    size_t got = 0;
    while (got < EP_BYTES) {
        ssize_t n = read(fd, in + got, EP_BYTES - got);
        if (n <= 0) die("epoll client read");
        got += (size_t)n;
    }
    check(memcmp(in, out, EP_BYTES) == 0, "epoll echo bytes differ");
    close(fd);
    return NULL;
}

static void epoll_echo(void) {
    int port, l = listener(&port);
    struct sockaddr_in a = loopback(port);
    memcpy(&server_addr, &a, sizeof a);
    server_len = sizeof a;
    if (fcntl(l, F_SETFL, O_NONBLOCK)) die("O_NONBLOCK");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev)) die("epoll_ctl listener");
    pthread_t t[EP_CLIENTS];
    for (int i = 0; i < EP_CLIENTS; i++)
        if (pthread_create(&t[i], NULL, ep_client, (void *)(long)i)) die("pthread_create");
    int closed = 0, accepted = 0;
    while (closed < EP_CLIENTS) {
        struct epoll_event evs[16];
        int n = epoll_wait(ep, evs, 16, 10000);
        if (n < 0) die("epoll_wait");
        check(n > 0, "epoll_wait timed out");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) {
                        if (errno == EAGAIN) break;
                        die("accept4");
                    }
                    accepted++;
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev)) die("epoll_ctl conn");
                }
                continue;
            }
            if (evs[i].events & EPOLLIN) {
                for (;;) {
                    if (c->out_len + 4096 > sizeof c->out) break;
                    ssize_t r = read(c->fd, c->out + c->out_len, 4096);
                    if (r < 0) {
                        if (errno == EAGAIN) break;
                        die("epoll read");
                    }
                    if (r == 0) {
                        c->eof = 1;
                        break;
                    }
                    c->out_len += (size_t)r;
                }
            }
            flush_conn(c);
            if (c->eof && c->out_len == 0) {
                close(c->fd);
                free(c);
                closed++;
            }
        }
    }
    for (int i = 0; i < EP_CLIENTS; i++) pthread_join(t[i], NULL);
    printf("epoll: connections=%d accepted=%d ok\n", EP_CLIENTS, accepted);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *slow_reader(void *arg) {
    int fd = (int)(long)arg;
    static char buf[8192];
    long total = 0, n;
    while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
    return (void *)total;
}

static void timeo(void) {
    int port, l = listener(&port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) die("connect");
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    if (setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv)) die("SO_RCVTIMEO");
    char b[16];
    double t0 = now_s();
    long r = read(c, b, sizeof b);
    double dt = now_s() - t0;
    check(r == -1 && errno == EAGAIN, "read() with SO_RCVTIMEO fails with EAGAIN");
    check(dt > 0.15 && dt < 5, "read() waited about SO_RCVTIMEO");
    t0 = now_s();
    r = recv(c, b, sizeof b, 0);
    check(r == -1 && errno == EAGAIN && now_s() - t0 > 0.15, "recv() with SO_RCVTIMEO fails with EAGAIN after the timeout");
    /* Fill the connection: nobody reads s. */
    if (setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv)) die("SO_SNDTIMEO");
    static char big[1 << 16];
    long sent = 0;
    for (;;) {
        r = write(c, big, sizeof big);
        if (r < 0) break;
        sent += r;
        check(sent < (64L << 20), "a socket nobody reads stops taking data");
    }
    check(errno == EAGAIN && sent > 0, "write() with SO_SNDTIMEO to a full socket fails with EAGAIN");
    close(c);
    close(s);
    /* A blocking write of 4 MiB while a thread drains the other end. */
    c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) die("connect 2");
    s = accept(l, NULL, NULL);
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, (void *)(long)s);
    static char four[4 << 20];
    memset(four, 'k', sizeof four);
    r = write(c, four, sizeof four);
    check(r == (long)sizeof four, "a blocking write() to a stream socket sends everything");
    close(c);
    void *got;
    pthread_join(t, &got);
    check((long)got == (long)sizeof four, "the reader got every byte");
    close(s);
    close(l);
    printf("timeo: ok\n");
}

int main(int argc, char **argv) {
    const char *t = argc > 1 ? argv[1] : "";
    if (!strcmp(t, "tcp4")) tcp(AF_INET, "tcp4");
    else if (!strcmp(t, "tcp6")) tcp(AF_INET6, "tcp6");
    else if (!strcmp(t, "many")) many();
    else if (!strcmp(t, "udp")) udp();
    else if (!strcmp(t, "refused")) refused();
    else if (!strcmp(t, "unix")) unix_sockets();
    else if (!strcmp(t, "epoll")) epoll_echo();
    else if (!strcmp(t, "timeo")) timeo();
    else {
        printf("usage: net_loopback tcp4|tcp6|many|udp|refused|unix|epoll|timeo\n");
        return 2;
    }
    return 0;
}
