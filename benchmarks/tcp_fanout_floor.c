/*
 * The kernel's floor under `vms bench events`, without Node: one process
 * writes a 300-byte frame to each of N loopback TCP connections (one write()
 * per socket, the least any server can do), a second process (or several)
 * waits in epoll and reads them. Latency = read time - the time the write
 * loop started (CLOCK_MONOTONIC, one clock for all processes).
 *
 *   gcc -O2 -o /tmp/tcp_fanout_floor benchmarks/tcp_fanout_floor.c && /tmp/tcp_fanout_floor 1000 1 30
 *   (connections, reader processes, rounds; rounds 300 ms apart, the first three are warm-up)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000, readers = argc > 2 ? atoi(argv[2]) : 1, rounds = argc > 3 ? atoi(argv[3]) : 30;
  int one = 1;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(0x7f000001);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  bind(listener, (struct sockaddr *)&addr, sizeof addr);
  listen(listener, 4096);
  socklen_t len = sizeof addr;
  getsockname(listener, (struct sockaddr *)&addr, &len);
  int *server = malloc(n * sizeof(int));
  int results[2];
  pipe(results);
  for (int r = 0; r < readers; r++) {
    int share = n / readers + (r < n % readers);
    int *client = malloc(share * sizeof(int));
    for (int i = 0; i < share; i++) {
      client[i] = socket(AF_INET, SOCK_STREAM, 0);
      connect(client[i], (struct sockaddr *)&addr, sizeof addr);
    }
    if (fork() == 0) {
      int ep = epoll_create1(0);
      for (int i = 0; i < share; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = client[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, client[i], &ev);
      }
      int total = share * rounds, got = 0, measured = 0;
      double *lat = malloc(total * sizeof(double));
      struct epoll_event events[256];
      char buf[4096];
      while (got < total) {
        int k = epoll_wait(ep, events, 256, 5000);
        if (k <= 0) break;
        for (int e = 0; e < k; e++) {
          ssize_t m = read(events[e].data.fd, buf, sizeof buf);
          double arrived = now_ms();
          for (ssize_t off = 0; off + 300 <= m; off += 300) {
            double sent;
            int round;
            memcpy(&sent, buf + off, sizeof sent);
            memcpy(&round, buf + off + 8, sizeof round);
            got++;
            if (round >= 3) lat[measured++] = arrived - sent;
          }
        }
      }
      write(results[1], &measured, sizeof measured);
      write(results[1], lat, measured * sizeof(double));
      _exit(0);
    }
    for (int i = 0; i < share; i++) close(client[i]);
    free(client);
  }
  for (int i = 0; i < n; i++) {
    server[i] = accept(listener, NULL, NULL);
    setsockopt(server[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  char frame[300];
  memset(frame, 'x', sizeof frame);
  double *loops = malloc(rounds * sizeof(double));
  for (int round = 0; round < rounds; round++) {
    usleep(300000);
    double sent = now_ms();
    memcpy(frame, &sent, sizeof sent);
    memcpy(frame + 8, &round, sizeof round);
    for (int i = 0; i < n; i++) write(server[i], frame, sizeof frame);
    loops[round] = now_ms() - sent;
  }
  double *all = malloc(n * rounds * sizeof(double));
  int count = 0;
  for (int r = 0; r < readers; r++) {
    int measured;
    read(results[0], &measured, sizeof measured);
    for (size_t want = measured * sizeof(double), have = 0; have < want;) {
      ssize_t m = read(results[0], (char *)(all + count) + have, want - have);
      if (m <= 0) break;
      have += m;
    }
    count += measured;
  }
  while (wait(NULL) > 0) {}
  qsort(all, count, sizeof(double), cmp);
  qsort(loops + 3, rounds - 3, sizeof(double), cmp);
#define P(a, c, p) ((c) == 0 ? 0 : (a)[(int)((p) / 100.0 * (c) + 0.999999) - 1])
  printf("{\"connections\":%d,\"readers\":%d,\"frames\":%d,\"writeLoopMs\":{\"p50\":%.2f,\"max\":%.2f},"
         "\"arrivalMs\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f}}\n",
         n, readers, count, P(loops + 3, rounds - 3, 50), loops[rounds - 1], P(all, count, 50), P(all, count, 90),
         P(all, count, 99), all[count - 1]);
  return 0;
}
