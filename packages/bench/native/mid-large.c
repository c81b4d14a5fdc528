/*
 * heaplab's C port of mid-large, heaplab's own workload of mid-size and large blocks
 * (docs/workloads/mid-large.md): the same generator, draws and timing as the TypeScript
 * loop, so its rows compare with the TypeScript backends'.
 *
 *   mid-large THREADS [DURATION_SECONDS]   prints "N replacements", then "R replacements per
 *                                          second" (each thread's replacements over its own
 *                                          time in the loop, summed), then the trailer of
 *                                          heaplab-native.h
 *   mid-large --draws COUNT                prints, as JSON, the first COUNT draws of thread 0
 *                                          after its set-up (slot, size): the tests compare
 *                                          them with the TypeScript loop's
 *
 * Each thread holds 256 blocks of 8..32 KiB; a replacement frees a random one of them,
 * allocates a block of a random size in its place and writes its first and last bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "heaplab-native.h"

#define MIN_SIZE (8u << 10)
#define MAX_SIZE (32u << 10)
#define WORKING_SET 256
#define MAX_THREADS 1024

static volatile sig_atomic_t stop_requested;

/* heaplab's generator (core's Random, mulberry32), so that both ports draw the same numbers. */
struct generator {
  uint32_t state;
};

static inline uint32_t next_u32(struct generator *generator) {
  generator->state += 0x6d2b79f5u;
  uint32_t t = generator->state;
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  return t ^ (t >> 14);
}

/* A uniform integer in [low, high), computed in double as Random.int does. */
static inline uint32_t next_int(struct generator *generator, uint32_t low, uint32_t high) {
  return low + (uint32_t)(((double)next_u32(generator) / 4294967296.0) * (double)(high - low));
}

static inline size_t next_size(struct generator *generator) {
  return next_int(generator, MIN_SIZE, MAX_SIZE + 1);
}

struct thread_run {
  pthread_t thread;
  uint32_t seed;
  size_t replacements;
  double seconds;
};

static unsigned char *allocate(size_t size, unsigned char mark) {
  unsigned char *block = malloc(size);
  if (block == NULL) {
    fprintf(stderr, "malloc(%zu) failed\n", size);
    exit(2);
  }
  block[0] = mark;
  block[size - 1] = mark;
  return block;
}

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  struct generator generator = {run->seed};
  unsigned char *blocks[WORKING_SET];
  for (int slot = 0; slot < WORKING_SET; slot++) blocks[slot] = allocate(next_size(&generator), 0);
  size_t replacements = 0;
  double started = hl_now();
  while (!stop_requested) {
    uint32_t slot = next_int(&generator, 0, WORKING_SET);
    free(blocks[slot]);
    blocks[slot] = allocate(next_size(&generator), (unsigned char)replacements);
    replacements++;
  }
  run->seconds = hl_now() - started;
  run->replacements = replacements;
  for (int slot = 0; slot < WORKING_SET; slot++) free(blocks[slot]);
  return NULL;
}

static int print_draws(long count) {
  struct generator generator = {1};
  unsigned long setup_bytes = 0;
  for (int slot = 0; slot < WORKING_SET; slot++) setup_bytes += next_size(&generator);
  printf("{\"setupBytes\": %lu, \"draws\": [", setup_bytes);
  for (long i = 0; i < count; i++) {
    uint32_t slot = next_int(&generator, 0, WORKING_SET);
    size_t size = next_size(&generator);
    printf("%s[%u, %zu]", i == 0 ? "" : ", ", slot, size);
  }
  printf("]}\n");
  return 0;
}

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS [DURATION_SECONDS]   (1 <= THREADS <= %d, DURATION > 0)\n", program, MAX_THREADS);
  fprintf(stderr, "       %s --draws COUNT\n", program);
  return 1;
}

int main(int argc, char **argv) {
  char *end;
  if (argc == 3 && strcmp(argv[1], "--draws") == 0) {
    long count = strtol(argv[2], &end, 10);
    if (*end != '\0' || count < 0) return usage(argv[0]);
    return print_draws(count);
  }
  if (argc < 2 || argc > 3) return usage(argv[0]);
  errno = 0;
  long threads = strtol(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || threads < 1 || threads > MAX_THREADS) return usage(argv[0]);
  double duration = 2.0;
  if (argc == 3) {
    duration = strtod(argv[2], &end);
    if (*end != '\0' || !(duration > 0)) return usage(argv[0]);
  }

  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  sigaction(SIGALRM, &action, NULL);
  struct itimerval timer;
  memset(&timer, 0, sizeof timer);
  timer.it_value.tv_sec = (time_t)duration;
  timer.it_value.tv_usec = (suseconds_t)((duration - (double)(time_t)duration) * 1e6);
  if (timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0) timer.it_value.tv_usec = 1;

  struct thread_run *runs = calloc((size_t)threads, sizeof *runs);
  /* Thread i draws from seed i + 1, as the TypeScript loop. */
  for (long i = 0; i < threads; i++) runs[i].seed = (uint32_t)(i + 1);
  double started = hl_now();
  setitimer(ITIMER_REAL, &timer, NULL);
  if (threads == 1) {
    thread_main(&runs[0]);
  } else {
    for (long i = 0; i < threads; i++) pthread_create(&runs[i].thread, NULL, thread_main, &runs[i]);
    for (long i = 0; i < threads; i++) pthread_join(runs[i].thread, NULL);
  }
  double wall = hl_now() - started;

  size_t replacements = 0;
  double rate = 0;
  for (long i = 0; i < threads; i++) {
    replacements += runs[i].replacements;
    if (runs[i].seconds > 0) rate += (double)runs[i].replacements / runs[i].seconds;
  }
  printf("%zu replacements\n", replacements);
  printf("%.0f replacements per second\n", rate);
  hl_report(wall);
  free(runs);
  return 0;
}
