/*
 * heaplab's C port of Larson and Krishnan's larson benchmark (as mimalloc-bench runs it),
 * written from the workload's description in docs/workloads/larson.md. The same arrays,
 * draws and operations as the TypeScript loop; unlike it, and like the original, an array
 * whose generation is over is continued by a NEW thread (a C thread costs microseconds,
 * a Node worker tens of milliseconds), so later threads free blocks earlier ones allocated.
 *
 *   larson THREADS DURATION_SECONDS [MIN_SIZE MAX_SIZE CHUNKS ROUNDS SEED]
 *
 * Prints the original's line "Throughput = N operations per second, relative time: Ts.",
 * then "N operations, G generations", then the trailer of heaplab-native.h. An operation
 * is the free of a random chunk and the malloc of its replacement (the original counts
 * its mallocs). Defaults: 8 1000 5000 100 4141, as mimalloc-bench's `larson 5 8 1000 5000
 * 100 4141 N`. The original writes two bytes per block, not a fill, so HEAPLAB_FILL does
 * not apply.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heaplab-native.h"

/* Gloger's lran2: an LCG modulo 714025 behind a 97-entry shuffle table. */
#define LRAN2_MODULUS 714025L
#define LRAN2_MULTIPLIER 1366L
#define LRAN2_INCREMENT 150889L
#define LRAN2_TABLE 97

struct lran2 {
  long x, y, table[LRAN2_TABLE];
};

static void lran2_seed(struct lran2 *g, long seed) {
  long x = (LRAN2_INCREMENT - seed) % LRAN2_MODULUS;
  if (x < 0) x = -x;
  for (int i = 0; i < LRAN2_TABLE; i++) {
    x = (LRAN2_MULTIPLIER * x + LRAN2_INCREMENT) % LRAN2_MODULUS;
    g->table[i] = x;
  }
  g->x = (LRAN2_MULTIPLIER * x + LRAN2_INCREMENT) % LRAN2_MODULUS;
  g->y = g->x;
}

static long lran2_next(struct lran2 *g) {
  int slot = (int)(g->y % LRAN2_TABLE);
  g->y = g->table[slot];
  g->x = (LRAN2_MULTIPLIER * g->x + LRAN2_INCREMENT) % LRAN2_MODULUS;
  g->table[slot] = g->x;
  return g->y;
}

/* One array and what travels with it from thread to thread. */
struct lane {
  char **blocks;
  struct lran2 random;
  long ops;
  long generations;
  atomic_int done;
};

static long min_size, size_range, chunks, rounds;
static atomic_int stop_requested;
static pthread_attr_t detached;

static char *allocate(size_t size) {
  char *block = malloc(size);
  if (block == NULL) {
    fprintf(stderr, "malloc(%zu) failed\n", size);
    exit(2);
  }
  /* As the original: write the first two bytes. */
  ((volatile char *)block)[0] = 'a';
  ((volatile char *)block)[1] = 'b';
  return block;
}

/* `count` operations on `lane` (fewer when stopped); returns how many ran. */
static long run_ops(struct lane *lane, long count, int watch_stop) {
  long done = 0;
  for (; done < count; done++) {
    if (watch_stop && atomic_load_explicit(&stop_requested, memory_order_relaxed)) break;
    long victim = lran2_next(&lane->random) % chunks;
    free(lane->blocks[victim]);
    lane->blocks[victim] = allocate((size_t)(min_size + lran2_next(&lane->random) % size_range));
  }
  return done;
}

/* The original's warm-up, per array: allocate, shuffle, churn 4 x chunks operations. */
static void warm_up(struct lane *lane) {
  for (long slot = 0; slot < chunks; slot++) lane->blocks[slot] = allocate((size_t)(min_size + lran2_next(&lane->random) % size_range));
  for (long remaining = chunks; remaining > 0; remaining--) {
    long victim = lran2_next(&lane->random) % remaining;
    char *swap = lane->blocks[victim];
    lane->blocks[victim] = lane->blocks[remaining - 1];
    lane->blocks[remaining - 1] = swap;
  }
  run_ops(lane, 4 * chunks, 0);
}

/* One generation on a lane; then a new thread continues it, unless the run is over. */
static void *generation(void *argument) {
  struct lane *lane = argument;
  for (;;) {
    long target = rounds * chunks;
    long done = run_ops(lane, target, 1);
    lane->ops += done;
    if (done < target || atomic_load(&stop_requested)) break;
    lane->generations++;
    pthread_t next;
    if (pthread_create(&next, &detached, generation, lane) == 0) return NULL;
    /* No thread to be had: this one goes on, as the next would. */
  }
  atomic_store(&lane->done, 1);
  return NULL;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS DURATION_SECONDS [MIN_SIZE MAX_SIZE CHUNKS ROUNDS SEED]\n", program);
  return 1;
}

static int parse_long(const char *text, long low, long *out) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < low) return 0;
  *out = value;
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 8) return usage(argv[0]);
  long threads, max_size = 1000, seed = 4141;
  min_size = 8;
  chunks = 5000;
  rounds = 100;
  char *end;
  double duration = strtod(argv[2], &end);
  if (!parse_long(argv[1], 1, &threads) || threads > 1024 || *end != '\0' || !(duration > 0)) return usage(argv[0]);
  if (argc == 8 && (!parse_long(argv[3], 1, &min_size) || !parse_long(argv[4], min_size + 1, &max_size) || !parse_long(argv[5], 1, &chunks) ||
                    !parse_long(argv[6], 1, &rounds) || !parse_long(argv[7], 0, &seed))) {
    return usage(argv[0]);
  }
  size_range = max_size - min_size;

  struct lran2 main_random;
  lran2_seed(&main_random, seed);
  struct lane *lanes = calloc((size_t)threads, sizeof *lanes);
  for (long i = 0; i < threads; i++) {
    lanes[i].blocks = calloc((size_t)chunks, sizeof(char *));
    lran2_seed(&lanes[i].random, lran2_next(&main_random));
    warm_up(&lanes[i]);
  }
  pthread_attr_init(&detached);
  pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);

  double started = hl_now();
  for (long i = 0; i < threads; i++) {
    pthread_t first;
    if (pthread_create(&first, &detached, generation, &lanes[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 2;
    }
  }
  struct timespec slice = {0, 1000000};
  while (hl_now() - started < duration) nanosleep(&slice, NULL);
  atomic_store(&stop_requested, 1);
  for (long i = 0; i < threads; i++)
    while (!atomic_load(&lanes[i].done)) sched_yield();
  double wall = hl_now() - started;

  long ops = 0, generations = 0;
  for (long i = 0; i < threads; i++) {
    ops += lanes[i].ops;
    generations += lanes[i].generations;
  }
  double throughput = (double)ops / wall;
  printf("Throughput = %8.0f operations per second, relative time: %.3fs.\n", throughput, 1e9 / throughput);
  printf("%ld operations, %ld generations\n", ops, generations);
  hl_report(wall);
  for (long i = 0; i < threads; i++) {
    for (long slot = 0; slot < chunks; slot++) free(lanes[i].blocks[slot]);
    free(lanes[i].blocks);
  }
  free(lanes);
  return 0;
}
