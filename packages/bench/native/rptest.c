/*
 * heaplab's C port of rptest (rpmalloc's benchmark as mimalloc-bench runs it), written from
 * docs/workloads/rptest.md. It builds the same tables and runs the same loop as the
 * TypeScript port (packages/bench/src/workloads/rptest/), timed the same way, and allocates
 * as mimalloc-bench's copy does: calloc, or memalign then a fill of 0xCD.
 *
 *   rptest THREADS DURATION_SECONDS [MODE SIZE_MODE CROSS_RATE LOOPS ALLOCS OPS MIN MAX]
 *       the arguments after the duration are the original's, by default mimalloc-bench's
 *       0 1 2 500 1000 100 8 16000; prints "N memory ops" (all threads), "R memory ops/s"
 *       (each thread's operations over its own loop time, summed: the TypeScript rows' rate),
 *       "C memory ops/CPU second" (the original's figure: all operations over the sum of the
 *       threads' times), "D drained" (batches the last thread found in the inboxes), then the
 *       trailer of heaplab-native.h
 *   rptest --tables [MODE ... MAX]     prints facts of the tables, for the tests
 *
 * Build: cc -O2 -pthread -ffp-contract=off (the size tables are computed in double and must
 * not be contracted into fused multiply-adds, or they would differ from the TypeScript ones).
 * HEAPLAB_FILL=bytes fills memalign'd blocks byte by byte instead of with memset.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "heaplab-native.h"

#define MODE_RANDOM 0
#define MODE_FIXED 1
#define SIZE_MODE_EVEN 0
#define SIZE_MODE_LINEAR 1
#define SIZE_MODE_EXP 2

#define SIZE_TABLE_LENGTH 2000
#define ALLOC_OPS_TABLE_LENGTH 311
#define FREE_OPS_TABLE_LENGTH 257
#define SIZE_DRAW_RANGE 100000
#define OPS_PERCENT_MIN 30
#define OPS_PERCENT_SPAN 70
#define FREE_SHARE 0.8
#define TABLE_SEED 1
#define PAGE_BYTES 4096
#define SIZE_START_FACTOR 37
#define BATCH_ALIGNMENT 16

static const unsigned scatter_primes[] = {7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
static const size_t alignments[3] = {0, 8, 16};

static long mode = MODE_RANDOM, size_mode = SIZE_MODE_LINEAR, cross_rate = 2, loops = 500, alloc_count = 1000, op_count = 100;
static long min_size = 8, max_size = 16000;

static size_t sizes[SIZE_TABLE_LENGTH];
static size_t alloc_ops[ALLOC_OPS_TABLE_LENGTH];
static size_t free_ops[FREE_OPS_TABLE_LENGTH];
static size_t alloc_scatter, free_scatter;

struct batch {
  struct batch *next;
  size_t count;
  void **blocks;
  long sender;
};

static volatile sig_atomic_t stop_requested;
static long thread_count;
static enum hl_fill_mode fill_mode;
static _Atomic(struct batch *) *inboxes;
/* Threads not yet past their loop: the one that brings it to 0 frees what is left in the inboxes. */
static atomic_long active_threads;
static size_t drained;
/* Threads start together, as the original's wait for its start flag. */
static pthread_barrier_t start_line;

struct thread_run {
  pthread_t thread;
  long index;
  void **slots;
  size_t size_index, alloc_index, free_index, cross_index;
  size_t operations;
  double seconds;
};

static uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

static void build_tables(void) {
  uint32_t state = TABLE_SEED;
  double even[SIZE_TABLE_LENGTH];
  double range = (double)(max_size - min_size);
  for (int i = 0; i < SIZE_TABLE_LENGTH; i++) {
    state = hash32(state);
    even[i] = (double)min_size + round(range * ((double)(state % SIZE_DRAW_RANGE) / (double)SIZE_DRAW_RANGE));
  }
  for (int i = 0; i < ALLOC_OPS_TABLE_LENGTH; i++) {
    state = hash32(state);
    alloc_ops[i] = (size_t)((double)op_count * ((double)(OPS_PERCENT_MIN + state % OPS_PERCENT_SPAN) / 100.0));
  }
  for (int i = 0; i < FREE_OPS_TABLE_LENGTH; i++) {
    state = hash32(state);
    free_ops[i] = (size_t)(FREE_SHARE * (double)op_count * ((double)(OPS_PERCENT_MIN + state % OPS_PERCENT_SPAN) / 100.0));
  }
  double span = range == 0 ? 1 : range;
  for (int i = 0; i < SIZE_TABLE_LENGTH; i++) {
    if (mode == MODE_FIXED) {
      sizes[i] = (size_t)min_size;
      continue;
    }
    double w0 = 1.0 - (even[i] - (double)min_size) / span;
    double w1 = 1.0 - (even[(i + 1) % SIZE_TABLE_LENGTH] - (double)min_size) / span;
    double spread = even[(i + 2) % SIZE_TABLE_LENGTH] - (double)min_size;
    if (size_mode == SIZE_MODE_EVEN) sizes[i] = (size_t)even[i];
    else if (size_mode == SIZE_MODE_LINEAR) sizes[i] = (size_t)min_size + (size_t)(spread * fabs((w0 + w1) - 1.0));
    else sizes[i] = (size_t)min_size + (size_t)(spread * (w0 * w1));
  }
  size_t found = 0;
  for (size_t i = 0; i < sizeof scatter_primes / sizeof scatter_primes[0] && found < 2; i++) {
    if (alloc_count % scatter_primes[i] == 0) continue;
    if (found++ == 0) alloc_scatter = scatter_primes[i];
    else free_scatter = scatter_primes[i];
  }
}

/* As mimalloc-bench's copy allocates: calloc, or memalign then a fill of 0xCD. */
static void *bench_malloc(size_t alignment, size_t size) {
  void *block;
  if (alignment != 0) {
    block = memalign(alignment, size);
    if (block != NULL) hl_fill(block, size, 0xCD, fill_mode);
  } else {
    block = calloc(1, size);
  }
  if (block == NULL) {
    fprintf(stderr, "allocating %zu bytes failed\n", size);
    exit(2);
  }
  return block;
}

static void *alloc_block(struct thread_run *run, size_t alignment_kind) {
  size_t size = sizes[(run->size_index + 2) % SIZE_TABLE_LENGTH];
  char *block = bench_malloc(size < PAGE_BYTES ? alignments[alignment_kind % 3] : 0, size);
  *(int32_t *)block = (int32_t)size;
  size_t pages = (size - 1) / PAGE_BYTES;
  for (size_t page = 1; page < pages; page++) block[page * PAGE_BYTES] = 1;
  block[size - 1] = 1;
  run->size_index = (run->size_index + 1) % SIZE_TABLE_LENGTH;
  return block;
}

static size_t free_batches(struct batch *batch) {
  size_t operations = 0;
  while (batch != NULL) {
    struct batch *next = batch->next;
    for (size_t i = 0; i < batch->count; i++) free(batch->blocks[i]);
    operations += batch->count + 2;
    free(batch->blocks);
    free(batch);
    batch = next;
  }
  return operations;
}

static size_t free_slots(struct thread_run *run) {
  size_t operations = 0;
  for (long i = 0; i < alloc_count; i++) {
    if (run->slots[i] == NULL) continue;
    free(run->slots[i]);
    run->slots[i] = NULL;
    operations++;
  }
  return operations;
}

static void send_batch(struct thread_run *run, size_t count) {
  struct batch *batch = bench_malloc(BATCH_ALIGNMENT, sizeof *batch);
  batch->blocks = bench_malloc(BATCH_ALIGNMENT, (count > 0 ? count : 1) * sizeof *batch->blocks);
  batch->count = count;
  batch->sender = run->index;
  run->operations += 2;
  for (size_t i = 0; i < count; i++) {
    batch->blocks[i] = alloc_block(run, run->size_index + i);
    run->operations++;
  }
  run->cross_index = (run->cross_index + 1) % (size_t)thread_count;
  if ((long)run->cross_index == run->index) run->cross_index = (run->cross_index + 1) % (size_t)thread_count;
  _Atomic(struct batch *) *inbox = &inboxes[run->cross_index];
  struct batch *head = atomic_load(inbox);
  do {
    batch->next = head;
  } while (!atomic_compare_exchange_weak(inbox, &head, batch));
}

static void run_loop(struct thread_run *run, size_t round, size_t loop, long rate) {
  struct batch *received = atomic_exchange(&inboxes[run->index], NULL);
  size_t frees = free_ops[(round + loop) % FREE_OPS_TABLE_LENGTH];
  size_t allocs = alloc_ops[(round + loop) % ALLOC_OPS_TABLE_LENGTH];
  for (size_t i = 0; i < frees; i++) {
    if (run->slots[run->free_index] != NULL) {
      free(run->slots[run->free_index]);
      run->operations++;
      run->slots[run->free_index] = NULL;
    }
    run->free_index = (run->free_index + free_scatter) % (size_t)alloc_count;
  }
  run->operations += free_batches(received);
  for (size_t i = 0; i < allocs; i++) {
    if (run->slots[run->alloc_index] != NULL) {
      free(run->slots[run->alloc_index]);
      run->operations++;
    }
    run->slots[run->alloc_index] = alloc_block(run, run->size_index + i);
    run->operations++;
    run->alloc_index = (run->alloc_index + alloc_scatter) % (size_t)alloc_count;
  }
  /* Once a thread has left its loop, nobody sends: its inbox would only pile up. */
  if (rate != 0 && loop % (size_t)rate == 0 && atomic_load(&active_threads) == thread_count) send_batch(run, allocs);
}

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  run->slots = calloc((size_t)alloc_count, sizeof *run->slots);
  long rate = thread_count == 1 ? 0 : cross_rate;
  if (thread_count > 1) pthread_barrier_wait(&start_line);
  double started = hl_now();
  for (size_t round = 0; !stop_requested; round++) {
    run->size_index = ((size_t)(run->index + 1) * ((round + 1) * SIZE_START_FACTOR)) % SIZE_TABLE_LENGTH;
    size_t loop = 0;
    for (; loop < (size_t)loops && !stop_requested; loop++) run_loop(run, round, loop, rate);
    if (loop < (size_t)loops) break;
    run->operations += free_slots(run);
  }
  run->seconds = hl_now() - started;
  free_slots(run);
  free_batches(atomic_exchange(&inboxes[run->index], NULL));
  free(run->slots);
  if (atomic_fetch_sub(&active_threads, 1) == 1) {
    for (long i = 0; i < thread_count; i++) {
      struct batch *first = atomic_exchange(&inboxes[i], NULL);
      for (struct batch *batch = first; batch != NULL; batch = batch->next) drained++;
      free_batches(first);
    }
  }
  return NULL;
}

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static int usage(const char *program) {
  fprintf(stderr,
          "usage: %s THREADS DURATION_SECONDS [MODE SIZE_MODE CROSS_RATE LOOPS ALLOCS OPS MIN MAX]\n"
          "       %s --tables [MODE SIZE_MODE CROSS_RATE LOOPS ALLOCS OPS MIN MAX]\n",
          program, program);
  return 1;
}

/* Reads the original's eight arguments from argv[0..7]; 0 when they are valid. */
static int parse_parameters(char **argv) {
  long *targets[8] = {&mode, &size_mode, &cross_rate, &loops, &alloc_count, &op_count, &min_size, &max_size};
  for (int i = 0; i < 8; i++) {
    char *end;
    errno = 0;
    *targets[i] = strtol(argv[i], &end, 10);
    if (errno != 0 || *end != '\0' || *targets[i] < 0) return -1;
  }
  if (mode != MODE_RANDOM && mode != MODE_FIXED) return -1;
  if (size_mode != SIZE_MODE_EVEN && size_mode != SIZE_MODE_LINEAR && size_mode != SIZE_MODE_EXP) return -1;
  if (loops < 1 || alloc_count < 1 || min_size < 5 || (mode == MODE_RANDOM && max_size < min_size)) return -1;
  return 0;
}

static int print_table_facts(void) {
  build_tables();
  unsigned long long size_sum = 0, alloc_sum = 0, free_sum = 0;
  size_t smallest = sizes[0], largest = sizes[0];
  for (int i = 0; i < SIZE_TABLE_LENGTH; i++) {
    size_sum += sizes[i];
    if (sizes[i] < smallest) smallest = sizes[i];
    if (sizes[i] > largest) largest = sizes[i];
  }
  for (int i = 0; i < ALLOC_OPS_TABLE_LENGTH; i++) alloc_sum += alloc_ops[i];
  for (int i = 0; i < FREE_OPS_TABLE_LENGTH; i++) free_sum += free_ops[i];
  printf("{\"sizeSum\": %llu, \"minSize\": %zu, \"maxSize\": %zu, \"size0\": %zu, \"allocOpsSum\": %llu, \"freeOpsSum\": %llu, "
         "\"allocScatter\": %zu, \"freeScatter\": %zu}\n",
         size_sum, smallest, largest, sizes[0], alloc_sum, free_sum, alloc_scatter, free_scatter);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--tables") == 0) {
    if (argc != 2 && argc != 10) return usage(argv[0]);
    if (argc == 10 && parse_parameters(argv + 2) != 0) return usage(argv[0]);
    return print_table_facts();
  }
  if (argc != 3 && argc != 11) return usage(argv[0]);
  char *end;
  errno = 0;
  thread_count = strtol(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || thread_count < 1 || thread_count > 1024) return usage(argv[0]);
  double duration = strtod(argv[2], &end);
  if (*end != '\0' || !(duration > 0)) return usage(argv[0]);
  if (argc == 11 && parse_parameters(argv + 3) != 0) return usage(argv[0]);
  build_tables();
  fill_mode = hl_fill_mode_from_env();
  inboxes = calloc((size_t)thread_count, sizeof *inboxes);
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
    pthread_barrier_init(&start_line, NULL, (unsigned)thread_count);
    for (long i = 0; i < thread_count; i++) pthread_create(&runs[i].thread, NULL, thread_main, &runs[i]);
    for (long i = 0; i < thread_count; i++) pthread_join(runs[i].thread, NULL);
    pthread_barrier_destroy(&start_line);
  }
  double wall = hl_now() - started;
  size_t operations = 0;
  double rate = 0, thread_seconds = 0;
  for (long i = 0; i < thread_count; i++) {
    operations += runs[i].operations;
    thread_seconds += runs[i].seconds;
    if (runs[i].seconds > 0) rate += (double)runs[i].operations / runs[i].seconds;
  }
  printf("%zu memory ops\n", operations);
  printf("%.0f memory ops/s\n", rate);
  printf("%.0f memory ops/CPU second\n", thread_seconds > 0 ? (double)operations / thread_seconds : 0.0);
  printf("%zu drained\n", drained);
  free(runs);
  free((void *)inboxes);
  hl_report(wall);
  return 0;
}
