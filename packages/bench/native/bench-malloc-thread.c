/*
 * heaplab's C port of glibc's bench-malloc-thread (as carried by mimalloc-bench), written
 * from the workload's description in docs/workloads/glibc-thread.md. It runs the same
 * tables, the same loop and the same timing as the TypeScript port, against the C library's
 * malloc, so the bench can show how far the TypeScript backends are from native code.
 *
 *   bench-malloc-thread THREADS [DURATION_SECONDS]     prints the upstream JSON line, then
 *                                                      "N iterations", then the trailer of
 *                                                      heaplab-native.h (wall, cpu, maxrss)
 *   bench-malloc-thread --tables                       prints facts of the size table
 *
 * Build: cc -O2 -pthread -ffp-contract=off (the size table is computed in float and must
 * not be contracted into fused multiply-adds, or it would differ from the C original's).
 * HEAPLAB_FILL=bytes fills blocks byte by byte as mimalloc-bench's copy does; the default is
 * one memset per block, as the TypeScript loop's 8-byte stores.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include "heaplab-native.h"

#define NUM_BLOCK_SIZES 8000
#define NUM_OFFSETS 4096
#define WORKING_SET_SIZE 1024
#define MIN_ALLOCATION_SIZE 4
#define MAX_ALLOCATION_SIZE 32768
/* Declared and printed, never passed to srand: rand() keeps its default seed. */
#define RANDOM_SEED 88

static volatile sig_atomic_t stop_requested;
static unsigned int block_sizes[NUM_BLOCK_SIZES];
static unsigned int slot_offsets[NUM_OFFSETS];

struct thread_run {
  pthread_t thread;
  size_t iterations;
  double seconds;
};

static enum hl_fill_mode fill_mode;

/* Sizes with density 1/x^2 on [4, 32768] by the inverse of the distribution, in float. */
static void build_tables(void) {
  const float lo = 1.0f / MIN_ALLOCATION_SIZE;
  const float hi = 1.0f / MAX_ALLOCATION_SIZE;
  const float range = hi - lo;
  for (int i = 0; i < NUM_BLOCK_SIZES; i++) {
    float r = (float)rand() / (float)RAND_MAX;
    block_sizes[i] = (unsigned int)(1.0f / (range * r + lo));
  }
  for (int i = 0; i < NUM_OFFSETS; i++) slot_offsets[i] = (unsigned int)(rand() % WORKING_SET_SIZE);
}

/* One thread's loop: both cursors advance before use; nothing is freed at the end. */
static size_t benchmark_loop(void **slots) {
  unsigned int offset_cursor = 0;
  unsigned int size_cursor = 0;
  size_t iterations = 0;
  while (!stop_requested) {
    offset_cursor = (offset_cursor + 1) & (NUM_OFFSETS - 1);
    size_cursor = size_cursor + 1 == NUM_BLOCK_SIZES ? 0 : size_cursor + 1;
    unsigned int slot = slot_offsets[offset_cursor];
    size_t size = block_sizes[size_cursor];
    free(slots[slot]);
    slots[slot] = malloc(size);
    if (slots[slot] == NULL) {
      fprintf(stderr, "malloc(%zu) failed after %zu iterations\n", size, iterations);
      exit(2);
    }
    hl_fill(slots[slot], size, (unsigned char)(iterations & 0xff), fill_mode);
    iterations++;
  }
  return iterations;
}

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  void **slots = calloc(WORKING_SET_SIZE, sizeof(void *));
  double started = hl_now();
  run->iterations = benchmark_loop(slots);
  run->seconds = hl_now() - started;
  return NULL;
}

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS [DURATION_SECONDS]   (THREADS >= 1, DURATION > 0)\n", program);
  return 1;
}

static int print_table_facts(void) {
  build_tables();
  unsigned long sum = 0;
  unsigned int min = block_sizes[0], max = block_sizes[0];
  for (int i = 0; i < NUM_BLOCK_SIZES; i++) {
    sum += block_sizes[i];
    if (block_sizes[i] < min) min = block_sizes[i];
    if (block_sizes[i] > max) max = block_sizes[i];
  }
  printf("{\"sum\": %lu, \"min\": %u, \"max\": %u, \"size0\": %u, \"offset0\": %u}\n", sum, min, max,
         block_sizes[0], slot_offsets[0]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--tables") == 0) return print_table_facts();
  if (argc < 2 || argc > 3) return usage(argv[0]);
  char *end;
  errno = 0;
  long threads = strtol(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || threads < 1 || threads > 1024) return usage(argv[0]);
  double duration = 2.0;
  if (argc == 3) {
    duration = strtod(argv[2], &end);
    if (*end != '\0' || !(duration > 0)) return usage(argv[0]);
  }
  build_tables();
  fill_mode = hl_fill_mode_from_env();

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
  /* The duration starts before the threads exist, as in the original. */
  double started = hl_now();
  setitimer(ITIMER_REAL, &timer, NULL);
  if (threads == 1) {
    thread_main(&runs[0]);
  } else {
    for (long i = 0; i < threads; i++) pthread_create(&runs[i].thread, NULL, thread_main, &runs[i]);
    for (long i = 0; i < threads; i++) pthread_join(runs[i].thread, NULL);
  }
  double wall = hl_now() - started;

  size_t iterations = 0;
  double duration_ns = 0;
  for (long i = 0; i < threads; i++) {
    iterations += runs[i].iterations;
    duration_ns += runs[i].seconds * 1e9;
  }
  /* glibc's max_rss field, from the process's own high-water mark (see hl_peak_rss_kib). */
  printf("{\"timing_type\": \"clock_gettime\", \"functions\": {\"malloc\": {\"\": {\"duration\": %.0f, "
         "\"iterations\": %zu, \"time_per_iteration\": %f, \"max_rss\": %ld, \"threads\": %ld, "
         "\"min_size\": %d, \"max_size\": %d, \"random_seed\": %d}}}}\n",
         duration_ns, iterations, iterations == 0 ? 0.0 : duration_ns / (double)iterations, hl_peak_rss_kib(),
         threads, MIN_ALLOCATION_SIZE, MAX_ALLOCATION_SIZE, RANDOM_SEED);
  printf("%zu iterations\n", iterations);
  hl_report(wall);
  return 0;
}
