/*
 * roam-probe: a TCP echo server, a client that measures stalls, and an ARP counter, for
 * test guests.
 *   roam-probe server PORT
 *   roam-probe client HOST PORT SECONDS [INTERVAL_MS [GAP_MS]]   (HOST: IPv4 or IPv6)
 *   roam-probe arp-count FILE [ND_FILE]   (counts ARP frames received, and NS/NA/redirects)
 *   roam-probe send-na SRC TARGET   (one unsolicited NA on eth0: TARGET is at this MAC)
 * The client sends a sequence number every INTERVAL_MS (default 2) and reads the echoes;
 * it prints "progress N max_gap_ms G" once a second and, at the end,
 * "done echoes N max_gap_ms G". The gap is the longest time between two echoes received.
 * Every gap over GAP_MS (default 100) is printed as it ends: "gap AT_MS LEN_MS" (AT_MS since
 * the start).
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

static int serve(int port) {
    /* One IPv6 socket for both families (IPv4 clients arrive as ::ffff:a.b.c.d). */
    int s = socket(AF_INET6, SOCK_STREAM, 0), one = 1, zero = 0;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 8)) { perror("server"); return 1; }
    printf("listening %d\n", port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        if (fork() == 0) {
            char buf[4096];
            ssize_t n;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            while ((n = read(c, buf, sizeof buf)) > 0)
                if (write(c, buf, n) != n) break;
            _exit(0);
        }
        close(c);
    }
}

static int client(const char *host, int port, int seconds, int interval, int gap_ms) {
    int s = -1, one = 1;
    /* HOST is an IPv4 or an IPv6 address. */
    struct sockaddr_storage a = {0};
    socklen_t alen;
    int family = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        alen = sizeof *a6;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) { fprintf(stderr, "bad address %s\n", host); return 2; }
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        alen = sizeof *a4;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) { fprintf(stderr, "bad address %s\n", host); return 2; }
    }
    /* The server may still be starting (a fork and exec take a while under TCG): retry
     * for up to 10 s. */
    for (int tries = 0;; tries++) {
        s = socket(family, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, alen) == 0) break;
        close(s);
        if (tries == 100) { perror("connect"); return 1; }
        usleep(100000);
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    double start = now_ms(), last_echo = start, next_send = start, next_report = start + 1000, max_gap = 0;
    unsigned long sent = 0, echoed = 0;
    char buf[4096];
    while (now_ms() - start < seconds * 1000.0) {
        double t = now_ms();
        if (t >= next_send) {
            char msg[16];
            snprintf(msg, sizeof msg, "%015lu", sent++);
            if (write(s, msg, 16) != 16) { perror("write"); return 1; }
            next_send += interval;
        }
        struct pollfd p = {.fd = s, .events = POLLIN};
        int wait = (int)(next_send - now_ms());
        if (poll(&p, 1, wait < 0 ? 0 : wait) > 0) {
            ssize_t n = read(s, buf, sizeof buf);
            if (n <= 0) { printf("closed after %lu echoes\n", echoed); return 1; }
            t = now_ms();
            if (t - last_echo > max_gap) max_gap = t - last_echo;
            if (t - last_echo > gap_ms) { printf("gap %.0f %.1f\n", last_echo - start, t - last_echo); fflush(stdout); }
            last_echo = t;
            echoed += n / 16;
        }
        if (now_ms() >= next_report) {
            printf("progress %lu max_gap_ms %.1f\n", echoed, max_gap);
            fflush(stdout);
            next_report += 1000;
        }
    }
    double tail = now_ms() - last_echo;
    if (tail > max_gap) max_gap = tail;
    printf("done echoes %lu max_gap_ms %.1f\n", echoed, max_gap);
    fflush(stdout);
    return echoed > 0 ? 0 : 1;
}

/* Counts the ARP frames this guest receives into ARP_FILE and, if given, its neighbor
 * discovery frames that resolve or redirect (ICMPv6 NS, NA, redirect; not router or MLD
 * messages, which guests send on their own) into ND_FILE, followed by how many of them
 * were solicitations. Both files always hold the counts. */
static void write_count(const char *file, unsigned long n) {
    FILE *f = fopen(file, "w");
    if (f) { fprintf(f, "%lu\n", n); fclose(f); }
}

static void write_nd(const char *file, unsigned long nd, unsigned long ns) {
    FILE *f = fopen(file, "w");
    if (f) { fprintf(f, "%lu %lu\n", nd, ns); fclose(f); }
}

static int arp_count(const char *arp_file, const char *nd_file) {
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (s < 0) { perror("arp-count"); return 1; }
    unsigned long arp = 0, nd = 0, ns = 0;
    unsigned char buf[2048];
    struct sockaddr_ll from;
    write_count(arp_file, 0);
    if (nd_file) write_nd(nd_file, 0, 0);
    for (;;) {
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n < 14 || from.sll_pkttype == PACKET_OUTGOING) continue;
        int type = buf[12] << 8 | buf[13];
        if (type == ETH_P_ARP) {
            write_count(arp_file, ++arp);
        } else if (nd_file && type == ETH_P_IPV6 && n >= 14 + 40 + 1 && buf[14 + 6] == 58 &&
                   buf[14 + 40] >= 135 && buf[14 + 40] <= 137) {
            if (buf[14 + 40] == 135) ++ns;
            write_nd(nd_file, ++nd, ns);
        }
    }
}

/* Sends one unsolicited neighbor advertisement out of eth0, from the IPv6 address SRC,
 * saying TARGET is at eth0's MAC (override set), to all-nodes: what a guest that claims
 * another VM's address sends. */
static int send_na(const char *src, const char *target) {
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IPV6));
    struct ifreq ifr = {0};
    strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
    unsigned char mac[6], f[14 + 40 + 32] = {0}, *ip = f + 14, *na = ip + 40;
    /* ifreq is a union: the MAC first, then the index. */
    if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr)) { perror("send-na"); return 1; }
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    if (ioctl(s, SIOCGIFINDEX, &ifr)) { perror("send-na"); return 1; }
    memcpy(f, "\x33\x33\x00\x00\x00\x01", 6);
    memcpy(f + 6, mac, 6);
    f[12] = 0x86, f[13] = 0xdd;
    ip[0] = 0x60, ip[5] = 32, ip[6] = 58, ip[7] = 255;
    if (inet_pton(AF_INET6, src, ip + 8) != 1 || inet_pton(AF_INET6, "ff02::1", ip + 24) != 1 ||
        inet_pton(AF_INET6, target, na + 8) != 1) { fprintf(stderr, "send-na: bad address\n"); return 2; }
    na[0] = 136, na[4] = 0x20, na[24] = 2, na[25] = 1;
    memcpy(na + 26, mac, 6);
    /* The checksum over the pseudo-header (addresses, length, next header) and the message. */
    unsigned long sum = 32 + 58;
    for (int i = 8; i < 40; i += 2) sum += ip[i] << 8 | ip[i + 1];
    for (int i = 0; i < 32; i += 2) sum += na[i] << 8 | na[i + 1];
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    na[2] = ~sum >> 8, na[3] = ~sum & 0xff;
    struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = ifr.ifr_ifindex, .sll_halen = 6};
    memcpy(to.sll_addr, f, 6);
    if (sendto(s, f, sizeof f, 0, (struct sockaddr *)&to, sizeof to) != sizeof f) { perror("send-na"); return 1; }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "arp-count")) return arp_count(argv[2], argc > 3 ? argv[3] : NULL);
    if (argc >= 3 && !strcmp(argv[1], "server")) return serve(atoi(argv[2]));
    if (argc >= 4 && !strcmp(argv[1], "send-na")) return send_na(argv[2], argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "client")) return client(argv[2], atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 2, argc > 6 ? atoi(argv[6]) : 100);
    fprintf(stderr, "usage: roam-probe server PORT | client HOST PORT SECONDS [INTERVAL_MS [GAP_MS]] |\n"
                    "       arp-count FILE [ND_FILE] | send-na SRC TARGET\n");
    return 2;
}
