/*
 * heaplab's C port of alloc-test (node-dot-cpp's allocator tester, as mimalloc-bench runs it),
 * written from the workload's description in docs/workloads/alloc-test.md. It makes the same
 * requests as the TypeScript loop (same generator, seed, sizes and slot choice), timed the
 * same way, so its rows compare with the TypeScript backends'.
 *
 *   alloc-test THREADS [DURATION_SECONDS]   prints "N operations", then "R operations per second"
 *                                           (each thread's operations over its own time in
 *                                           the loop, summed), then the trailer of
 *                                           heaplab-native.h
 *   alloc-test --requests OPERATIONS        prints, as JSON, what one thread requests in its
 *                                           setup and its first OPERATIONS operations (no
 *                                           allocation is made): the tests compare it with
 *                                           the TypeScript loop's requests
 *
 * Per thread: 2^18 / THREADS slots, about half filled before timing; then each operation
 * picks a slot by the Pareto 80/20 rule and frees its block (after reading it whole) or
 * allocates a block of 5..1024 bytes into the empty slot and fills it.
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

#define TOTAL_SLOTS (1u << 18)
#define MAX_SIZE_EXPONENT 10
#define SEED 41
/* Beyond 16 threads the smallest slot group of a thread is empty. */
#define MAX_THREADS 16
#define SETUP_GROUP_SLOTS 32
#define PARETO_GROUPS 7

static volatile sig_atomic_t stop_requested;
static enum hl_fill_mode fill_mode;

/* Outputs are bits 32..63 of state * multiplier, taken before a xorshift moves the state. */
struct generator {
  uint64_t state;
};

static inline uint32_t next32(struct generator *generator) {
  uint64_t product = generator->state * 0xd989bcacc137dcd5ull;
  generator->state ^= generator->state >> 11;
  generator->state ^= generator->state << 31;
  generator->state ^= generator->state >> 18;
  return (uint32_t)(product >> 32);
}

/* Low bits pick a class k (trailing zeros of the bits plus one), the next bits a size in (2^(k+2), 2^(k+3)]. */
static inline uint32_t size_from_word(uint32_t word) {
  const unsigned class_bits = MAX_SIZE_EXPONENT - 3;
  uint32_t class_base = (word & ((1u << class_bits) - 1)) + 1;
  unsigned size_class = (unsigned)__builtin_ctz(class_base) + 2;
  return ((word >> class_bits) & ((1u << size_class) - 1)) + 1 + (1u << size_class);
}

/* A size from a 64-bit draw (two 32-bit ones); only the second, the low half, matters. */
static inline uint32_t next_size(struct generator *generator) {
  (void)next32(generator);
  return size_from_word(next32(generator));
}

/* The 80/20 rule six times over: group g takes share[g] of the draws and share[6 - g] of the slots. */
static const double pareto_shares[PARETO_GROUPS] = {0.262144, 0.393216, 0.24576, 0.08192, 0.01536, 0.001536, 0.000064};

struct pareto {
  uint32_t bounds[PARETO_GROUPS - 1];
  uint32_t starts[PARETO_GROUPS + 1];
};

static int pareto_init(struct pareto *pareto, uint32_t slots) {
  pareto->bounds[0] = (uint32_t)(UINT32_MAX * pareto_shares[0]);
  for (int i = 1; i < PARETO_GROUPS - 2; i++) pareto->bounds[i] = pareto->bounds[i - 1] + (uint32_t)(UINT32_MAX * pareto_shares[i]);
  pareto->bounds[PARETO_GROUPS - 2] = (uint32_t)(UINT32_MAX * (1.0 - pareto_shares[PARETO_GROUPS - 1]));
  pareto->starts[0] = 0;
  for (int i = 0; i < PARETO_GROUPS - 1; i++)
    pareto->starts[i + 1] = pareto->starts[i] + (uint32_t)(slots * pareto_shares[PARETO_GROUPS - 1 - i]);
  pareto->starts[PARETO_GROUPS] = slots;
  for (int i = 0; i < PARETO_GROUPS; i++)
    if (pareto->starts[i + 1] <= pareto->starts[i]) return -1;
  return 0;
}

static inline uint32_t pareto_pick(const struct pareto *pareto, uint32_t group_draw, uint32_t slot_draw) {
  int group = PARETO_GROUPS - 1;
  for (int i = 0; i < PARETO_GROUPS - 1; i++) {
    if (group_draw < pareto->bounds[i]) {
      group = i;
      break;
    }
  }
  uint32_t start = pareto->starts[group];
  return start + slot_draw % (pareto->starts[group + 1] - start);
}

/* One slot, 16 bytes as in the original's table. */
struct slot {
  unsigned char *block;
  uint32_t size;
  uint32_t unused;
};

struct thread_run {
  pthread_t thread;
  uint32_t slots;
  size_t operations;
  double seconds;
  /* The sum of the bytes read before each free, kept so that the reads are not dropped. */
  uint64_t checksum;
};

static void allocate_into(struct slot *slot, struct generator *generator) {
  uint32_t size = next_size(generator);
  unsigned char *block = malloc(size);
  if (block == NULL) {
    fprintf(stderr, "malloc(%u) failed\n", size);
    exit(2);
  }
  hl_fill(block, size, (unsigned char)size, fill_mode);
  slot->block = block;
  slot->size = size;
}

/* Reads the block whole (words, then the tail by bytes), then frees it. */
static uint64_t free_slot(struct slot *slot) {
  const unsigned char *block = slot->block;
  size_t words = slot->size / sizeof(uint64_t);
  uint64_t sum = 0;
  for (size_t i = 0; i < words; i++) {
    uint64_t word;
    memcpy(&word, block + i * sizeof word, sizeof word);
    sum += word;
  }
  for (size_t at = words * sizeof(uint64_t); at < slot->size; at++) sum += block[at];
  free(slot->block);
  slot->block = NULL;
  return sum;
}

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  uint32_t slots = run->slots;
  /* The original takes its table from the allocator under test too. */
  struct slot *table = malloc(slots * sizeof *table);
  if (table == NULL) {
    fprintf(stderr, "no memory for the slot table\n");
    exit(2);
  }
  memset(table, 0, slots * sizeof *table);
  struct generator generator = {SEED};
  struct pareto pareto;
  pareto_init(&pareto, slots);
  uint64_t checksum = 0;

  for (uint32_t group = 0; group < slots / SETUP_GROUP_SLOTS; group++) {
    uint32_t bits = next32(&generator);
    for (uint32_t bit = 0; bit < SETUP_GROUP_SLOTS; bit++)
      if ((bits >> bit) & 1) allocate_into(&table[group * SETUP_GROUP_SLOTS + bit], &generator);
  }

  size_t operations = 0;
  double started = hl_now();
  while (!stop_requested) {
    uint32_t group_draw = next32(&generator);
    struct slot *slot = &table[pareto_pick(&pareto, group_draw, next32(&generator))];
    if (slot->block != NULL)
      checksum += free_slot(slot);
    else
      allocate_into(slot, &generator);
    operations++;
  }
  run->seconds = hl_now() - started;
  run->operations = operations;

  /* Not timed; from the last slot down, as the TypeScript loop. */
  for (uint32_t i = slots; i-- > 0;)
    if (table[i].block != NULL) checksum += free_slot(&table[i]);
  free(table);
  run->checksum = checksum;
  return NULL;
}

/* What one thread requests, without allocating: the tests hold the TypeScript loop to it. */
static int print_requests(long operations) {
  uint32_t slots = TOTAL_SLOTS;
  uint32_t *sizes = calloc(slots, sizeof *sizes);
  struct generator generator = {SEED};
  struct pareto pareto;
  pareto_init(&pareto, slots);
  uint32_t first_draws[4];
  struct generator copy = generator;
  for (int i = 0; i < 4; i++) first_draws[i] = next32(&copy);
  unsigned long setup_blocks = 0, setup_bytes = 0;
  for (uint32_t group = 0; group < slots / SETUP_GROUP_SLOTS; group++) {
    uint32_t bits = next32(&generator);
    for (uint32_t bit = 0; bit < SETUP_GROUP_SLOTS; bit++) {
      if ((bits >> bit) & 1) {
        sizes[group * SETUP_GROUP_SLOTS + bit] = next_size(&generator);
        setup_blocks++;
        setup_bytes += sizes[group * SETUP_GROUP_SLOTS + bit];
      }
    }
  }
  unsigned long mallocs = 0, malloc_bytes = 0, frees = 0, freed_bytes = 0;
  for (long i = 0; i < operations; i++) {
    uint32_t group_draw = next32(&generator);
    uint32_t slot = pareto_pick(&pareto, group_draw, next32(&generator));
    if (sizes[slot] != 0) {
      frees++;
      freed_bytes += sizes[slot];
      sizes[slot] = 0;
    } else {
      sizes[slot] = next_size(&generator);
      mallocs++;
      malloc_bytes += sizes[slot];
    }
  }
  printf("{\"firstDraws\": [%u, %u, %u, %u], \"setupBlocks\": %lu, \"setupBytes\": %lu, \"mallocs\": %lu, \"mallocBytes\": %lu, "
         "\"frees\": %lu, \"freedBytes\": %lu}\n",
         first_draws[0], first_draws[1], first_draws[2], first_draws[3], setup_blocks, setup_bytes, mallocs, malloc_bytes, frees,
         freed_bytes);
  free(sizes);
  return 0;
}

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS [DURATION_SECONDS]   (1 <= THREADS <= %d, DURATION > 0)\n", program, MAX_THREADS);
  fprintf(stderr, "       %s --requests OPERATIONS\n", program);
  return 1;
}

int main(int argc, char **argv) {
  char *end;
  if (argc == 3 && strcmp(argv[1], "--requests") == 0) {
    long operations = strtol(argv[2], &end, 10);
    if (*end != '\0' || operations < 0) return usage(argv[0]);
    return print_requests(operations);
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
  for (long i = 0; i < threads; i++) runs[i].slots = TOTAL_SLOTS / (uint32_t)threads;
  double started = hl_now();
  setitimer(ITIMER_REAL, &timer, NULL);
  if (threads == 1) {
    thread_main(&runs[0]);
  } else {
    for (long i = 0; i < threads; i++) pthread_create(&runs[i].thread, NULL, thread_main, &runs[i]);
    for (long i = 0; i < threads; i++) pthread_join(runs[i].thread, NULL);
  }
  double wall = hl_now() - started;

  size_t operations = 0;
  double rate = 0;
  for (long i = 0; i < threads; i++) {
    operations += runs[i].operations;
    if (runs[i].seconds > 0) rate += (double)runs[i].operations / runs[i].seconds;
  }
  printf("%zu operations\n", operations);
  printf("%.0f operations per second\n", rate);
  hl_report(wall);
  free(runs);
  return 0;
}
