/*
 * heaplab's C port of Hoard's cache-scratch (as carried by mimalloc-bench), written from the
 * workload's description in docs/workloads/cache-scratch.md. Before the clock starts the main
 * thread allocates one OBJECT_SIZE object per thread, back to back; each thread frees the one
 * it is handed (a free of a block another thread allocated) and then runs cache-thrash's
 * rounds: malloc(OBJECT_SIZE), REPETITIONS passes that write every byte and read it back,
 * free. With one thread the main thread runs it, so its free is a local one.
 *
 *   cache-scratch THREADS DURATION_SECONDS [OBJECT_SIZE [REPETITIONS]]
 *
 * prints "N rounds" (all threads) and the trailer of heaplab-native.h. The original runs a
 * fixed number of rounds and splits its passes among the threads; this port runs for a time,
 * every thread's round with the same passes, so N threads should make N times the rounds.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "heaplab-native.h"

static volatile sig_atomic_t stop_requested;
static enum hl_fill_mode fill_mode;
static size_t object_size = 1;
static long repetitions = 20000;

struct thread_run {
  pthread_t thread;
  long index;
  /* The object the main thread allocated for this thread, freed by it before its rounds. */
  void *handed;
  size_t rounds;
};

/*
 * One object's passes: store every byte, read it back. The bytes are stored one by one, not
 * by hl_fill: memset is a call, which for a 1-byte object would cost several times the store
 * the test is about. The value follows HEAPLAB_FILL: the thread's byte (as the TypeScript
 * loop stores), or the byte's index (as the original stores). The read goes through a
 * volatile pointer so that every pass really stores and loads the object's cache line.
 */
static void write_repeatedly(unsigned char *object, unsigned char value) {
  volatile unsigned char *bytes = object;
  for (long pass = 0; pass < repetitions; pass++) {
    for (size_t k = 0; k < object_size; k++) {
      bytes[k] = fill_mode == HL_FILL_BYTES ? (unsigned char)k : value;
      (void)bytes[k];
    }
  }
}

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  unsigned char value = (unsigned char)(run->index % 255 + 1);
  size_t rounds = 0;
  free(run->handed);
  run->handed = NULL;
  while (!stop_requested) {
    unsigned char *object = malloc(object_size);
    if (object == NULL) {
      fprintf(stderr, "malloc(%zu) failed after %zu rounds\n", object_size, rounds);
      exit(2);
    }
    write_repeatedly(object, value);
    free(object);
    rounds++;
  }
  run->rounds = rounds;
  return NULL;
}

static void on_alarm(int signal_number) {
  (void)signal_number;
  stop_requested = 1;
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s THREADS DURATION_SECONDS [OBJECT_SIZE [REPETITIONS]]\n", program);
  return 1;
}

static int parse_long(const char *text, long min, long max, long *out) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < min || value > max) return 0;
  *out = value;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5) return usage(argv[0]);
  long threads;
  if (!parse_long(argv[1], 1, 1024, &threads)) return usage(argv[0]);
  char *end;
  double duration = strtod(argv[2], &end);
  if (*end != '\0' || !(duration > 0)) return usage(argv[0]);
  long size = (long)object_size;
  if (argc >= 4 && !parse_long(argv[3], 1, 1 << 20, &size)) return usage(argv[0]);
  if (argc >= 5 && !parse_long(argv[4], 1, 1L << 40, &repetitions)) return usage(argv[0]);
  object_size = (size_t)size;
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
  for (long i = 0; i < threads; i++) {
    runs[i].index = i;
    runs[i].handed = malloc(object_size);
    if (runs[i].handed == NULL) {
      fprintf(stderr, "malloc(%zu) failed for the object of thread %ld\n", object_size, i + 1);
      return 2;
    }
  }
  double started = hl_now();
  setitimer(ITIMER_REAL, &timer, NULL);
  if (threads == 1) {
    thread_main(&runs[0]);
  } else {
    for (long i = 0; i < threads; i++) pthread_create(&runs[i].thread, NULL, thread_main, &runs[i]);
    for (long i = 0; i < threads; i++) pthread_join(runs[i].thread, NULL);
  }
  double wall = hl_now() - started;

  size_t rounds = 0;
  for (long i = 0; i < threads; i++) rounds += runs[i].rounds;
  free(runs);
  printf("%zu rounds\n", rounds);
  hl_report(wall);
  return 0;
}
