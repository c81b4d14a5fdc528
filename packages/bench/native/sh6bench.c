/*
 * heaplab's C port of sh6bench (MicroQuill's SmartHeap benchmark, as mimalloc-bench patches
 * and runs it), written from the workload's description in docs/workloads/sh6bench.md. The
 * same allocations, frees and timing as the TypeScript loop, so its rows compare with the
 * TypeScript backends'.
 *
 *   sh6bench THREADS [DURATION_SECONDS]   prints "N allocations", then "R allocations per
 *                                         second" (each thread's allocations over its own time
 *                                         in the loop, summed), then the trailer of
 *                                         heaplab-native.h
 *   sh6bench --pass                       prints the length and the byte sum of one pass
 *
 * Each thread owns 10000 / THREADS slots and allocates into them, in the order of one pass of
 * the original's size loops, one block after the other, writing its first and last byte;
 * each time the ring is full it frees every block but those of one fifth of the ring (the
 * bottom part in allocation order, the top part in reverse), and that fifth moves on by a
 * fifth each time. Blocks are never filled whole: the original writes two bytes of each.
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

#define TOTAL_SLOTS 10000
#define MIN_SIZE 1
#define MAX_SIZE 1000
#define KEPT_SHARE_DIVISOR 5
#define MAX_THREADS 1024

static volatile sig_atomic_t stop_requested;
static unsigned short *pass_sizes;
static size_t pass_length;

/* One pass of the original's loops: bases from 1 by *3/2+1 below 1000, each halved down to 1, 250 or 50 blocks of each size. */
static size_t build_pass(unsigned short *into) {
  size_t length = 0;
  for (int base = MIN_SIZE; base < MAX_SIZE; base = base * 3 / 2 + 1) {
    for (int size = base; size > 0; size /= 2) {
      int repeat = size < 10000 ? 10 : 1;
      if (size < 1000) repeat *= 5;
      if (size < 100) repeat *= 5;
      for (int i = 0; i < repeat; i++) {
        if (into != NULL) into[length] = (unsigned short)size;
        length++;
      }
    }
  }
  return length;
}

struct thread_run {
  pthread_t thread;
  size_t slots;
  size_t allocations;
  double seconds;
};

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  size_t slots = run->slots;
  unsigned char **ring = calloc(slots, sizeof *ring);
  if (ring == NULL) {
    fprintf(stderr, "no memory for the ring\n");
    exit(2);
  }
  size_t cursor = 0, kept_start = slots, kept_end = slots, pass_cursor = 0, allocations = 0;
  double started = hl_now();
  while (!stop_requested) {
    size_t size = pass_sizes[pass_cursor];
    pass_cursor = pass_cursor + 1 == pass_length ? 0 : pass_cursor + 1;
    unsigned char *block = malloc(size);
    if (block == NULL) {
      fprintf(stderr, "malloc(%zu) failed after %zu allocations\n", size, allocations);
      exit(2);
    }
    unsigned char mark = (unsigned char)allocations;
    block[0] = mark;
    block[size - 1] = mark;
    ring[cursor] = block;
    allocations++;
    cursor = cursor + 1 == kept_start ? kept_end : cursor + 1;
    if (cursor >= slots) {
      /* The full ring: the kept fifth moves on; free below it in order, above it in reverse. */
      kept_start = kept_end >= slots ? 0 : kept_end;
      kept_end = kept_start + slots / KEPT_SHARE_DIVISOR;
      if (kept_end > slots) kept_end = slots;
      for (size_t slot = 0; slot < kept_start; slot++) {
        free(ring[slot]);
        ring[slot] = NULL;
      }
      for (size_t slot = slots; slot-- > kept_end;) {
        free(ring[slot]);
        ring[slot] = NULL;
      }
      /* The original would overwrite (lose) a kept fifth at the start; heaplab skips it. */
      cursor = kept_start == 0 ? kept_end : 0;
    }
  }
  run->seconds = hl_now() - started;
  run->allocations = allocations;

  /* Not timed: what is left (an emptied slot is NULL, as the TypeScript loop's 0). */
  for (size_t slot = 0; slot < slots; slot++) free(ring[slot]);
  free(ring);
  return NULL;
}

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS [DURATION_SECONDS]   (1 <= THREADS <= %d, DURATION > 0)\n", program, MAX_THREADS);
  fprintf(stderr, "       %s --pass\n", program);
  return 1;
}

int main(int argc, char **argv) {
  pass_length = build_pass(NULL);
  pass_sizes = malloc(pass_length * sizeof *pass_sizes);
  build_pass(pass_sizes);
  if (argc == 2 && strcmp(argv[1], "--pass") == 0) {
    unsigned long bytes = 0;
    for (size_t i = 0; i < pass_length; i++) bytes += pass_sizes[i];
    printf("{\"length\": %zu, \"bytes\": %lu}\n", pass_length, bytes);
    return 0;
  }
  if (argc < 2 || argc > 3) return usage(argv[0]);
  char *end;
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
  for (long i = 0; i < threads; i++) runs[i].slots = TOTAL_SLOTS / (size_t)threads;
  double started = hl_now();
  setitimer(ITIMER_REAL, &timer, NULL);
  if (threads == 1) {
    thread_main(&runs[0]);
  } else {
    for (long i = 0; i < threads; i++) pthread_create(&runs[i].thread, NULL, thread_main, &runs[i]);
    for (long i = 0; i < threads; i++) pthread_join(runs[i].thread, NULL);
  }
  double wall = hl_now() - started;

  size_t allocations = 0;
  double rate = 0;
  for (long i = 0; i < threads; i++) {
    allocations += runs[i].allocations;
    if (runs[i].seconds > 0) rate += (double)runs[i].allocations / runs[i].seconds;
  }
  printf("%zu allocations\n", allocations);
  printf("%.0f allocations per second\n", rate);
  hl_report(wall);
  free(runs);
  free(pass_sizes);
  return 0;
}
