/* getaddrinfo through a DNS server named in /etc/resolv.conf.
 *   dns_resolve local   serves DNS itself on 127.0.0.1:53 (a thread answering A queries for
 *                       *.kiln.test with 10.1.2.3), points /etc/resolv.conf at it and resolves
 *                       www.kiln.test with getaddrinfo (the libc's own resolver over UDP);
 *                       also resolves "localhost" (from /etc/hosts)
 *   dns_resolve conf    prints the nameserver lines of /etc/resolv.conf
 * Prints what it resolved; exits 1 with FAIL on an error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int ready_fd = -1;

static void *dns_server(void *arg) {
    int s = (int)(long)arg;
    unsigned char q[512], r[600];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        long n = recvfrom(s, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (n < 12) continue;
        /* The question: labels from offset 12, then type and class. */
        long p = 12;
        char name[256] = "";
        while (p < n && q[p]) {
            int len = q[p];
            strncat(name, (char *)q + p + 1, len);
            strcat(name, ".");
            p += len + 1;
        }
        p++;
        if (p + 4 > n) continue;
        int type = q[p] << 8 | q[p + 1];
        long qend = p + 4;
        int match = strlen(name) > 11 && !strcmp(name + strlen(name) - 11, ".kiln.test.");
        memcpy(r, q, qend);
        r[2] = 0x81; /* response, recursion desired */
        r[3] = 0x80 | (match ? 0 : 3); /* recursion available; NXDOMAIN when not ours */
        r[6] = 0; r[7] = (match && type == 1) ? 1 : 0; /* answers */
        r[8] = r[9] = r[10] = r[11] = 0;
        long len = qend;
        if (match && type == 1) {
            unsigned char ans[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3};
            memcpy(r + len, ans, sizeof ans);
            len += sizeof ans;
        }
        sendto(s, r, len, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static void show(const char *host) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    int e = getaddrinfo(host, "80", &hints, &res);
    if (e) {
        printf("FAIL getaddrinfo %s: %s\n", host, gai_strerror(e));
        exit(1);
    }
    char buf[64];
    inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, buf, sizeof buf);
    printf("%s -> %s\n", host, buf);
    freeaddrinfo(res);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "conf")) {
        FILE *f = fopen("/etc/resolv.conf", "r");
        if (!f) { printf("FAIL no /etc/resolv.conf\n"); return 1; }
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "nameserver", 10)) fputs(line, stdout);
        return 0;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a)) { printf("FAIL bind 127.0.0.1:53\n"); return 1; }
    pthread_t t;
    pthread_create(&t, NULL, dns_server, (void *)(long)s);
    (void)ready_fd;
    FILE *f = fopen("/etc/resolv.conf", "w");
    if (!f) { printf("FAIL cannot write /etc/resolv.conf\n"); return 1; }
    fputs("nameserver 127.0.0.1\noptions timeout:2 attempts:2\n", f);
    fclose(f);
    show("localhost");
    show("www.kiln.test");
    struct addrinfo hints = {.ai_family = AF_INET}, *res;
    int e = getaddrinfo("missing.example", NULL, &hints, &res);
    printf("missing.example -> %s\n", e == EAI_NONAME ? "EAI_NONAME" : gai_strerror(e));
    return 0;
}
