/*
 * heaplab's C port of glibc's bench-malloc-simple (mimalloc-bench's glibc-simple), written
 * from the workload's description in docs/workloads/glibc-simple.md. One thread runs the
 * same sequence of cases as the TypeScript loop: for each size (16, 32, 64) and block count
 * (25, 100, 400, 1600), CASE_BLOCKS blocks in iterations of: allocate the count's blocks,
 * fill each, free the first half in order and the rest from the last back. The sequence
 * repeats until the duration is over.
 *
 *   glibc-simple 1 DURATION_SECONDS
 *
 * prints "N blocks" (each one malloc and one free) and the trailer of heaplab-native.h. The
 * first argument is the thread count every port takes; this benchmark has one thread.
 * HEAPLAB_FILL=bytes fills blocks byte by byte as the original does; the default is one
 * memset per block, as the TypeScript loop's word stores.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "heaplab-native.h"

#define NUM_SIZES 3
#define NUM_COUNTS 4
#define MAX_BLOCKS 1600
/* The original's 2,000,000 blocks per case over 125: whole iterations of every count. */
#define CASE_BLOCKS 16000

static const size_t sizes[NUM_SIZES] = {16, 32, 64};
static const int counts[NUM_COUNTS] = {25, 100, 400, 1600};

static volatile sig_atomic_t stop_requested;

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

/* One iteration: count blocks of size, each filled as it comes, freed half FIFO, half LIFO. */
static void run_iteration(char **live, size_t size, int count, enum hl_fill_mode fill_mode) {
  for (int i = 0; i < count; i++) {
    live[i] = malloc(size);
    if (live[i] == NULL) {
      fprintf(stderr, "malloc(%zu) failed with %d of %d blocks live\n", size, i, count);
      exit(2);
    }
    hl_fill(live[i], size, (unsigned char)(i & 0xff), fill_mode);
  }
  for (int i = 0; i < count / 2; i++) free(live[i]);
  for (int i = count - 1; i >= count / 2; i--) free(live[i]);
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s 1 DURATION_SECONDS   (one thread; DURATION > 0)\n", program);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3 || strcmp(argv[1], "1") != 0) return usage(argv[0]);
  char *end;
  double duration = strtod(argv[2], &end);
  if (*end != '\0' || !(duration > 0)) return usage(argv[0]);
  enum hl_fill_mode fill_mode = hl_fill_mode_from_env();
  char **live = malloc(MAX_BLOCKS * sizeof *live);

  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_alarm;
  sigaction(SIGALRM, &action, NULL);
  struct itimerval timer;
  memset(&timer, 0, sizeof timer);
  timer.it_value.tv_sec = (time_t)duration;
  timer.it_value.tv_usec = (suseconds_t)((duration - (double)(time_t)duration) * 1e6);
  if (timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0) timer.it_value.tv_usec = 1;

  size_t blocks = 0;
  int case_index = 0;
  int iteration_in_case = 0;
  double started = hl_now();
  setitimer(ITIMER_REAL, &timer, NULL);
  while (!stop_requested) {
    size_t size = sizes[case_index / NUM_COUNTS];
    int count = counts[case_index % NUM_COUNTS];
    run_iteration(live, size, count, fill_mode);
    blocks += (size_t)count;
    if (++iteration_in_case * count == CASE_BLOCKS) {
      iteration_in_case = 0;
      case_index = (case_index + 1) % (NUM_SIZES * NUM_COUNTS);
    }
  }
  double wall = hl_now() - started;
  free(live);

  printf("%zu blocks\n", blocks);
  hl_report(wall);
  return 0;
}
