// How much one delivery's system call costs, and what io_uring would take off it.
//
// Issue "Cheapest per delivery at every rate" asks whether io_uring (one submission carrying
// a whole drain's sends) beats one send(2) per member. This probe measures it without the
// server around it: N loopback TCP connections, a reader thread that drains the client
// ends (as the load generator does), and a sender that writes one 64-byte line to every
// server end per round, paced like run a of ../shared/bench (RATE rounds a second) or
// unpaced. The sender's own CPU (CLOCK_THREAD_CPUTIME_ID, which includes the loopback
// receive path the kernel runs in the sender's context) per delivery, for each mode:
//   send      one send(2) per member (what the server does)
//   uring     one IORING_OP_SEND per member, the round's sends in one io_uring_enter
//   fixed     the same on registered descriptors (IOSQE_FIXED_FILE: no file lookup)
// The modes take turns round-robin, so the machine's drift falls on all three alike.
//
// Build and run (liburing-dev):
//   cc -O2 -o /tmp/uring-probe Benchmarks/uring-probe/uring-probe.c -luring -lpthread
//   /tmp/uring-probe [members=500] [rounds-per-second=100, 0 = unpaced] [seconds-per-turn=5] [turns=3]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int members;
static int *server_ends, *client_ends;
static atomic_int stop_reader;
static atomic_long bytes_read;

static double now_s(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void *reader(void *unused) {
    (void)unused;
    int ep = epoll_create1(0);
    for (int i = 0; i < members; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = client_ends[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, client_ends[i], &ev) < 0) die("epoll_ctl");
    }
    struct epoll_event events[256];
    char buffer[65536];
    while (!atomic_load(&stop_reader)) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) {
            ssize_t got;
            while ((got = recv(events[i].data.fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
                atomic_fetch_add(&bytes_read, got);
        }
    }
    close(ep);
    return NULL;
}

static void connect_all(void) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0) die("bind");
    socklen_t length = sizeof address;
    getsockname(listener, (struct sockaddr *)&address, &length);
    if (listen(listener, 1024) < 0) die("listen");
    server_ends = calloc(members, sizeof(int));
    client_ends = calloc(members, sizeof(int));
    int one = 1;
    for (int i = 0; i < members; i++) {
        client_ends[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(client_ends[i], (struct sockaddr *)&address, sizeof address) < 0) die("connect");
        server_ends[i] = accept(listener, NULL, NULL);
        if (server_ends[i] < 0) die("accept");
        setsockopt(server_ends[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    close(listener);
}

enum mode { SEND, URING, FIXED };
static const char *names[] = {"send", "uring", "fixed"};

static struct io_uring ring;

static void round_of(enum mode mode, const char *line, size_t size) {
    if (mode == SEND) {
        for (int i = 0; i < members; i++)
            if (send(server_ends[i], line, size, MSG_DONTWAIT) != (ssize_t)size) die("send");
        return;
    }
    for (int i = 0; i < members; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        if (!sqe) die("io_uring_get_sqe");
        if (mode == FIXED) {
            io_uring_prep_send(sqe, i, line, size, MSG_DONTWAIT);
            sqe->flags |= IOSQE_FIXED_FILE;
        } else {
            io_uring_prep_send(sqe, server_ends[i], line, size, MSG_DONTWAIT);
        }
    }
    if (io_uring_submit_and_wait(&ring, members) < 0) die("io_uring_submit_and_wait");
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
        if (cqe->res != (int)size) {
            fprintf(stderr, "send: %d\n", cqe->res);
            exit(1);
        }
        seen++;
    }
    io_uring_cq_advance(&ring, seen);
}

int main(int argc, char **argv) {
    members = argc > 1 ? atoi(argv[1]) : 500;
    double rate = argc > 2 ? atof(argv[2]) : 100;
    double seconds = argc > 3 ? atof(argv[3]) : 5;
    int turns = argc > 4 ? atoi(argv[4]) : 3;
    connect_all();
    struct io_uring_params params = {0};
    if (io_uring_queue_init_params(members * 2 > 4096 ? 4096 : members * 2, &ring, &params) < 0)
        die("io_uring_queue_init");
    if (io_uring_register_files(&ring, server_ends, members) < 0) die("io_uring_register_files");
    pthread_t thread;
    pthread_create(&thread, NULL, reader, NULL);
    char line[64];
    memset(line, 'x', sizeof line);
    line[sizeof line - 1] = '\n';
    printf("members %d, %s, %.0f s per turn\n", members, rate > 0 ? "paced" : "unpaced", seconds);
    for (int turn = 0; turn < turns; turn++) {
        for (int m = 0; m < 3; m++) {
            long rounds = 0;
            double wall0 = now_s(CLOCK_MONOTONIC), cpu0 = now_s(CLOCK_THREAD_CPUTIME_ID);
            double next = wall0;
            while (now_s(CLOCK_MONOTONIC) - wall0 < seconds) {
                if (rate > 0) {
                    next += 1.0 / rate;
                    double wait = next - now_s(CLOCK_MONOTONIC);
                    if (wait > 0) {
                        struct timespec t = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
                        nanosleep(&t, NULL);
                    }
                }
                round_of((enum mode)m, line, sizeof line);
                rounds++;
            }
            double cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
            printf("turn %d %-5s %8ld deliveries  %.3f µs of the sender's CPU per delivery\n", turn + 1,
                   names[m], rounds * members, cpu * 1e6 / (rounds * members));
            fflush(stdout);
            usleep(200000);  // let the reader catch up
        }
    }
    atomic_store(&stop_reader, 1);
    pthread_join(thread, NULL);
    io_uring_queue_exit(&ring);
    return 0;
}
