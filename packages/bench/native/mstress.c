/*
 * heaplab's C port of mstress (mimalloc's stress test as mimalloc-bench runs it), written
 * from docs/workloads/mstress.md. It makes the same requests in the same order as the
 * TypeScript loop (packages/bench/src/workloads/mstress/loop.ts): the same generator, rounds,
 * sizes, pattern check and transfer array, timed the same way.
 *
 *   mstress THREADS DURATION_SECONDS [SCALE]    SCALE defaults to 50 (mimalloc-bench's)
 *
 * prints "N allocations" (steps, all threads), "R allocations/s" (each thread's steps over its
 * own time in its rounds, summed: the TypeScript rows' rate), "D drained" (blocks the last
 * thread found in the transfer array), then the trailer of heaplab-native.h.
 *
 *   mstress --sizes N    prints the byte sizes of the first N blocks one thread allocates
 *                        (one per line, untimed), for the tests to compare with the TypeScript
 *
 * The blocks hold the program's own pattern, which its check reads back, so HEAPLAB_FILL does
 * not apply here.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "heaplab-native.h"

#define TRANSFER_SLOT_COUNT 1000
#define DATA_ITEM_SHIFTS 5
#define RETAINED_ITEM_SHIFTS 7
#define DATA_ARRAY_GROWTH 100000
/* The largest block: a retained block of 64 items made giant. */
#define MAX_ITEMS ((uint64_t)64 * 10000)

static const uint64_t cookie = 0xbf58476d1ce4e5b9ULL;

static volatile sig_atomic_t stop_requested;
static _Atomic(uint64_t *) transfer[TRANSFER_SLOT_COUNT];
/* Threads not yet past their loop: the one that brings it to 0 empties the transfer array. */
static atomic_long active_threads;
static long thread_count;
static long scale = 50;
static size_t drained;
/* Under --sizes: block sizes still to print before the program ends. */
static long sizes_to_print;

struct thread_run {
  pthread_t thread;
  long index;
  uint32_t random;
  size_t steps;
  double seconds;
};

/* The 32-bit form of the original's generator (Chris Wellons' integer hash of the state). */
static uint32_t pick(uint32_t *state) {
  uint32_t x = *state;
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  *state = x;
  return x;
}

static int chance(uint32_t percent, uint32_t *state) { return pick(state) % 100 <= percent; }

static void corrupt(const uint64_t *block, uint64_t item) {
  fprintf(stderr, "memory corruption at block %p at item %llu\n", (const void *)block, (unsigned long long)item);
  abort();
}

static uint64_t *alloc_items(uint64_t items, uint32_t *random) {
  if (chance(1, random)) {
    if (chance(1, random)) items *= 10000;
    else if (chance(10, random)) items *= 1000;
    else items *= 100;
  }
  if (items == 40) items++;
  if (sizes_to_print > 0) {
    printf("%llu\n", (unsigned long long)(items * sizeof(uint64_t)));
    if (--sizes_to_print == 0) exit(0);
  }
  uint64_t *block = malloc(items * sizeof *block);
  if (block == NULL) {
    fprintf(stderr, "malloc(%llu) failed\n", (unsigned long long)(items * sizeof *block));
    exit(2);
  }
  for (uint64_t i = 0; i < items; i++) block[i] = (items - i) ^ cookie;
  return block;
}

static void free_items(uint64_t *block) {
  if (block == NULL) return;
  uint64_t items = block[0] ^ cookie;
  if (items == 0 || items > MAX_ITEMS) corrupt(block, 0);
  for (uint64_t i = 0; i < items; i++) {
    if ((block[i] ^ cookie) != items - i) corrupt(block, i);
  }
  free(block);
}

struct round {
  uint64_t **data;
  size_t data_size;
  size_t data_top;
  uint64_t **retained;
  size_t retained_top;
};

static void free_round(struct round *round) {
  for (size_t i = 0; i < round->retained_top; i++) free_items(round->retained[i]);
  for (size_t i = 0; i < round->data_top; i++) free_items(round->data[i]);
  free(round->retained);
  free(round->data);
}

/* One round; returns 1 when the stop flag cut it short (its blocks then still held). */
static int run_round(struct thread_run *run, struct round *round) {
  size_t allocs = 100 * (size_t)scale * (size_t)(run->index % 8 + 1);
  size_t retain = allocs / 2;
  memset(round, 0, sizeof *round);
  round->retained = malloc(retain * sizeof *round->retained);
  while (allocs > 0 || retain > 0) {
    if (stop_requested) return 1;
    if (retain == 0 || (chance(50, &run->random) && allocs > 0)) {
      allocs--;
      if (round->data_top >= round->data_size) {
        round->data_size += DATA_ARRAY_GROWTH;
        round->data = realloc(round->data, round->data_size * sizeof *round->data);
      }
      uint64_t items = (uint64_t)1 << (pick(&run->random) % DATA_ITEM_SHIFTS);
      round->data[round->data_top++] = alloc_items(items, &run->random);
    } else {
      uint64_t items = (uint64_t)1 << (pick(&run->random) % RETAINED_ITEM_SHIFTS);
      round->retained[round->retained_top++] = alloc_items(items, &run->random);
      retain--;
    }
    run->steps++;
    if (chance(66, &run->random) && round->data_top > 0) {
      size_t index = pick(&run->random) % round->data_top;
      free_items(round->data[index]);
      round->data[index] = NULL;
    }
    if (chance(25, &run->random) && round->data_top > 0) {
      size_t index = pick(&run->random) % round->data_top;
      size_t slot = pick(&run->random) % TRANSFER_SLOT_COUNT;
      round->data[index] = atomic_exchange(&transfer[slot], round->data[index]);
    }
  }
  free_round(round);
  return 0;
}

/* Between its rounds, a thread frees each block of its stripe of slots with a chance of one half. */
static void free_half_of_stripe(struct thread_run *run) {
  for (long slot = run->index; slot < TRANSFER_SLOT_COUNT; slot += thread_count) {
    if (chance(50, &run->random)) free_items(atomic_exchange(&transfer[slot], NULL));
  }
}

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  run->random = (uint32_t)((run->index + 1) * 43);
  struct round round;
  double started = hl_now();
  while (!run_round(run, &round)) free_half_of_stripe(run);
  run->seconds = hl_now() - started;
  free_round(&round);
  if (atomic_fetch_sub(&active_threads, 1) == 1) {
    for (int slot = 0; slot < TRANSFER_SLOT_COUNT; slot++) {
      uint64_t *block = atomic_exchange(&transfer[slot], NULL);
      if (block == NULL) continue;
      free_items(block);
      drained++;
    }
  }
  return NULL;
}

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS DURATION_SECONDS [SCALE]   (THREADS >= 1, DURATION > 0, SCALE >= 1)\n       %s --sizes N\n", program, program);
  return 1;
}

int main(int argc, char **argv) {
  char *end;
  if (argc == 3 && strcmp(argv[1], "--sizes") == 0) {
    sizes_to_print = strtol(argv[2], &end, 10);
    if (*end != '\0' || sizes_to_print < 1) return usage(argv[0]);
    thread_count = 1;
    atomic_store(&active_threads, 1);
    struct thread_run run = {.index = 0};
    thread_main(&run);
    return 0;
  }
  if (argc < 3 || argc > 4) return usage(argv[0]);
  errno = 0;
  thread_count = strtol(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || thread_count < 1 || thread_count > 1024) return usage(argv[0]);
  double duration = strtod(argv[2], &end);
  if (*end != '\0' || !(duration > 0)) return usage(argv[0]);
  if (argc == 4) {
    scale = strtol(argv[3], &end, 10);
    if (*end != '\0' || scale < 1) return usage(argv[0]);
  }
  atomic_store(&active_threads, thread_count);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  sigaction(SIGALRM, &action, NULL);
  struct itimerval timer;
  memset(&timer, 0, sizeof timer);
  timer.it_value.tv_sec = (time_t)duration;
  timer.it_value.tv_usec = (suseconds_t)((duration - (double)(time_t)duration) * 1e6);
  if (timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0) timer.it_value.tv_usec = 1;
  struct thread_run *runs = calloc((size_t)thread_count, sizeof *runs);
  for (long i = 0; i < thread_count; i++) runs[i].index = i;
  double started = hl_now();
  setitimer(ITIMER_REAL, &timer, NULL);
  if (thread_count == 1) {
    thread_main(&runs[0]);
  } else {
    for (long i = 0; i < thread_count; i++) pthread_create(&runs[i].thread, NULL, thread_main, &runs[i]);
    for (long i = 0; i < thread_count; i++) pthread_join(runs[i].thread, NULL);
  }
  double wall = hl_now() - started;
  size_t steps = 0;
  double rate = 0;
  for (long i = 0; i < thread_count; i++) {
    steps += runs[i].steps;
    if (runs[i].seconds > 0) rate += (double)runs[i].steps / runs[i].seconds;
  }
  printf("%zu allocations\n", steps);
  printf("%.0f allocations/s\n", rate);
  printf("%zu drained\n", drained);
  free(runs);
  hl_report(wall);
  return 0;
}
