/*
 * Warm start for ffmpeg (LD_PRELOAD). A node keeps a few ffmpeg processes
 * started ahead of need: the dynamic linker has loaded and relocated ffmpeg's
 * ~200 libraries (most of its start-up cost), and the process waits here,
 * before ffmpeg's main, for the run it is to do. The node then writes
 *
 *     <working directory> NUL <arg 1> NUL <arg 2> NUL ... <arg n> NUL
 *
 * on the process's stdin and closes it; ffmpeg's main starts at once with
 * those arguments, in that directory. An empty message (stdin closed with
 * nothing written) ends the process without running ffmpeg.
 *
 * Only a process started with VMS_WARM_PARENT set waits; it dies with the
 * node that started it (PR_SET_PDEATHSIG), as every ingest ffmpeg does.
 * The real arguments are written over the placeholder ones, so
 * /proc/<pid>/cmdline (ps, the tests' process scans) shows what it runs.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern char **environ;

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);

/* More than any camera URL and argument list; a longer message is refused. */
#define MAX_MESSAGE (1 << 20)

static char *read_message(size_t *length) {
  size_t capacity = 4096, used = 0;
  char *buffer = malloc(capacity);
  if (buffer == NULL) return NULL;
  for (;;) {
    if (used == capacity) {
      if (capacity >= MAX_MESSAGE) return NULL;
      capacity *= 2;
      char *grown = realloc(buffer, capacity);
      if (grown == NULL) return NULL;
      buffer = grown;
    }
    ssize_t n = read(STDIN_FILENO, buffer + used, capacity - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return NULL;
    if (n == 0) break;
    used += (size_t)n;
  }
  *length = used;
  return buffer;
}

/* Writes the arguments over the original ones, as far as they fit; the rest is zeroed. */
static void show_arguments(int argc, char **argv, int count, char **args) {
  char *area = argv[0];
  char *end = argv[argc - 1] + strlen(argv[argc - 1]);
  size_t room = (size_t)(end - area), at = 0;
  for (int i = 0; i < count; i++) {
    size_t size = strlen(args[i]) + 1;
    if (at + size > room) break;
    memcpy(area + at, args[i], size);
    at += size;
  }
  memset(area + at, 0, room - at + 1);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end) {
  start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
  const char *parent = getenv("VMS_WARM_PARENT");
  if (real == NULL) _exit(127);
  if (parent == NULL) return real(main, argc, argv, init, fini, rtld_fini, stack_end);

  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != (pid_t)atol(parent)) _exit(0); /* the node died before the line above */
  unsetenv("VMS_WARM_PARENT");
  unsetenv("LD_PRELOAD");

  size_t length = 0;
  char *message = read_message(&length);
  if (message == NULL || length == 0 || message[length - 1] != '\0') _exit(0);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    if (devnull != STDIN_FILENO) close(devnull);
  }

  int strings = 0;
  for (size_t i = 0; i < length; i++) strings += message[i] == '\0';
  size_t variables = 0;
  while (environ[variables] != NULL) variables++;
  /* argv, NULL, then the environment, as the kernel lays them out (glibc may look for it there). */
  char **args = calloc((size_t)strings + 2 + variables, sizeof(char *));
  if (args == NULL) _exit(126);
  args[0] = strdup(argv[0]);
  char *cursor = message;
  if (chdir(cursor) != 0) _exit(126);
  cursor += strlen(cursor) + 1;
  int count = 1;
  while (cursor < message + length) {
    args[count++] = cursor;
    cursor += strlen(cursor) + 1;
  }
  args[count] = NULL;
  memcpy(args + count + 1, environ, (variables + 1) * sizeof(char *));
  show_arguments(argc, argv, count, args);
  return real(main, count, args, init, fini, rtld_fini, stack_end);
}
