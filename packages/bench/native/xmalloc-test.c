/*
 * heaplab's C port of Lever and Boreham's xmalloc-test (as mimalloc-bench runs it), written
 * from the workload's description in docs/workloads/xmalloc-test.md. Producers allocate
 * batches of objects and push them on a bounded stack; consumers pop them and free every
 * object, so each of their frees is of a block another thread allocated.
 *
 *   xmalloc-test THREADS DURATION_SECONDS [OBJECT_SIZE BATCH_OBJECTS STACK_LIMIT]
 *
 * THREADS counts all threads, as heaplab's loop does: one thread alternates (makes a batch,
 * passes it through the stack, frees it); more split into producers (even indexes) and
 * consumers (odd ones). The original's `-w N` starts N of each. Prints the original's line
 * "rtime: R, free/sec: F M", then "N frees, R remote, D drained" (D: batches left on the
 * stack at the end, freed afterwards), then the trailer of heaplab-native.h. Defaults: 64
 * 4096 100, as `xmalloc-test -w N -t 5 -s 64`. Objects are filled with memset, as the
 * original does, whatever HEAPLAB_FILL says.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heaplab-native.h"

#define FILL_LIMIT 128

struct batch {
  long producer;
  void *objects[];
};

struct worker {
  pthread_t thread;
  long index;
  long frees;
  long remote_frees;
};

static long threads, object_size, batch_objects, stack_limit;
static struct batch **stack;
static long depth;
static int done;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;

static void *checked_malloc(size_t size) {
  void *block = malloc(size);
  if (block == NULL) {
    fprintf(stderr, "malloc(%zu) failed\n", size);
    exit(2);
  }
  return block;
}

static struct batch *make_batch(long producer) {
  struct batch *batch = checked_malloc(sizeof *batch + (size_t)batch_objects * sizeof(void *));
  batch->producer = producer;
  size_t fill = (size_t)(object_size < FILL_LIMIT ? object_size : FILL_LIMIT);
  for (long i = 0; i < batch_objects; i++) {
    batch->objects[i] = checked_malloc((size_t)object_size);
    hl_fill(batch->objects[i], fill, (unsigned char)(i & 0xff), HL_FILL_MEMSET);
  }
  return batch;
}

static void free_batch(struct batch *batch) {
  for (long i = 0; i < batch_objects; i++) free(batch->objects[i]);
  free(batch);
}

/* Pushes, waiting while the stack is full; 0 (not pushed) once the run is over. */
static int push(struct batch *batch) {
  pthread_mutex_lock(&lock);
  while (depth >= stack_limit && !done) pthread_cond_wait(&not_full, &lock);
  int pushed = !done;
  if (pushed) {
    stack[depth++] = batch;
    pthread_cond_signal(&not_empty);
  }
  pthread_mutex_unlock(&lock);
  return pushed;
}

/* Pops the newest batch, waiting while the stack is empty; NULL once the run is over. */
static struct batch *pop(void) {
  pthread_mutex_lock(&lock);
  while (depth == 0 && !done) pthread_cond_wait(&not_empty, &lock);
  struct batch *batch = NULL;
  if (!done) {
    batch = stack[--depth];
    pthread_cond_signal(&not_full);
  }
  pthread_mutex_unlock(&lock);
  return batch;
}

static int over(void) {
  pthread_mutex_lock(&lock);
  int over = done;
  pthread_mutex_unlock(&lock);
  return over;
}

static void consume(struct worker *worker, struct batch *batch) {
  if (batch->producer != worker->index) worker->remote_frees += batch_objects;
  free_batch(batch);
  worker->frees += batch_objects;
}

static void *run_worker(void *argument) {
  struct worker *worker = argument;
  int produces = threads == 1 || worker->index % 2 == 0;
  int consumes = threads == 1 || worker->index % 2 == 1;
  while (!over()) {
    if (produces) {
      struct batch *batch = make_batch(worker->index);
      if (!push(batch)) {
        free_batch(batch);
        break;
      }
    }
    if (consumes) {
      struct batch *batch = pop();
      if (batch == NULL) break;
      consume(worker, batch);
    }
  }
  return NULL;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS DURATION_SECONDS [OBJECT_SIZE BATCH_OBJECTS STACK_LIMIT]\n", program);
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
  if (argc != 3 && argc != 6) return usage(argv[0]);
  object_size = 64;
  batch_objects = 4096;
  stack_limit = 100;
  char *end;
  double duration = strtod(argv[2], &end);
  if (!parse_long(argv[1], 1, &threads) || threads > 1024 || *end != '\0' || !(duration > 0)) return usage(argv[0]);
  if (argc == 6 && (!parse_long(argv[3], 1, &object_size) || !parse_long(argv[4], 1, &batch_objects) || !parse_long(argv[5], 1, &stack_limit))) {
    return usage(argv[0]);
  }
  stack = checked_malloc((size_t)stack_limit * sizeof *stack);
  struct worker *workers = calloc((size_t)threads, sizeof *workers);

  double started = hl_now();
  for (long i = 0; i < threads; i++) {
    workers[i].index = i;
    if (pthread_create(&workers[i].thread, NULL, run_worker, &workers[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 2;
    }
  }
  struct timespec slice = {0, 1000000};
  while (hl_now() - started < duration) nanosleep(&slice, NULL);
  pthread_mutex_lock(&lock);
  done = 1;
  pthread_cond_broadcast(&not_empty);
  pthread_cond_broadcast(&not_full);
  pthread_mutex_unlock(&lock);
  for (long i = 0; i < threads; i++) pthread_join(workers[i].thread, NULL);
  double wall = hl_now() - started;

  long frees = 0, remote = 0;
  for (long i = 0; i < threads; i++) {
    frees += workers[i].frees;
    remote += workers[i].remote_frees;
  }
  long drained = depth;
  while (depth > 0) free_batch(stack[--depth]);
  double mfrees_per_second = (double)frees / wall * 1e-6;
  printf("rtime: %.3f, free/sec: %.3f M\n", mfrees_per_second > 0 ? 100.0 / mfrees_per_second : 0.0, mfrees_per_second);
  printf("%ld frees, %ld remote, %ld drained\n", frees, remote, drained);
  hl_report(wall);
  free(stack);
  free(workers);
  return 0;
}
