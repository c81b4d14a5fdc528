/*
 * What every C port of a heaplab workload shares (header only; each port is one .c file
 * that includes it): the clock, a block fill in both forms, and the trailer lines the bench
 * reads after the port's own output:
 *
 *   # wall SECONDS      monotonic time of the timed part
 *   # cpu SECONDS       user + system time of the whole process until now
 *   # maxrss KIB        this process's peak resident size (VmHWM)
 *   # preloaded PATH    the allocator library found in this process's memory map, or "none"
 *
 * The ports are built by packages/bench/src/run/native-program.ts with
 * `cc -O2 -pthread -I native` and run against the C library's malloc or, through
 * LD_PRELOAD, against mimalloc, jemalloc or tcmalloc (docs/native-allocators.md).
 */
#ifndef HEAPLAB_NATIVE_H
#define HEAPLAB_NATIVE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double hl_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static inline double hl_cpu_seconds(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 + (double)usage.ru_stime.tv_sec +
         (double)usage.ru_stime.tv_usec / 1e6;
}

/*
 * Peak resident KiB of this process. Not getrusage's ru_maxrss: Linux carries that figure
 * across exec, so a port started by Node reports Node's high-water mark (126 MB where the
 * port itself used 1.8 MB). VmHWM belongs to the address space, which exec replaces.
 */
static inline long hl_peak_rss_kib(void) {
  FILE *status = fopen("/proc/self/status", "r");
  if (status == NULL) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, status) != NULL) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(status);
  return kib;
}

/* The first allocator library mapped into this process: proof that LD_PRELOAD took effect. */
static inline void hl_print_preloaded(void) {
  static const char *const names[] = {"libmimalloc", "libjemalloc", "libtcmalloc"};
  FILE *maps = fopen("/proc/self/maps", "r");
  char line[1024];
  while (maps != NULL && fgets(line, sizeof line, maps) != NULL) {
    char *path = strchr(line, '/');
    if (path == NULL) continue;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      if (strstr(path, names[i]) != NULL) {
        path[strcspn(path, "\n")] = '\0';
        printf("# preloaded %s\n", path);
        fclose(maps);
        return;
      }
    }
  }
  if (maps != NULL) fclose(maps);
  printf("# preloaded none\n");
}

/* The trailer; call it last, after the port's own lines. */
static inline void hl_report(double wall_seconds) {
  printf("# wall %f\n", wall_seconds);
  printf("# cpu %f\n", hl_cpu_seconds());
  printf("# maxrss %ld\n", hl_peak_rss_kib());
  hl_print_preloaded();
  fflush(stdout);
}

/*
 * Block fills. HL_FILL_MEMSET writes one value with memset (what the TypeScript loops do,
 * with 8-byte stores); HL_FILL_BYTES writes p[i] = (char)i one byte at a time, as
 * mimalloc-bench's programs do (its -O3 build may vectorise the loop). The environment
 * variable HEAPLAB_FILL=bytes selects the second.
 */
enum hl_fill_mode { HL_FILL_MEMSET, HL_FILL_BYTES };

static inline enum hl_fill_mode hl_fill_mode_from_env(void) {
  const char *fill = getenv("HEAPLAB_FILL");
  return fill != NULL && strcmp(fill, "bytes") == 0 ? HL_FILL_BYTES : HL_FILL_MEMSET;
}

static inline void hl_fill(void *block, size_t bytes, unsigned char value, enum hl_fill_mode mode) {
  unsigned char *p = (unsigned char *)block;
  if (mode == HL_FILL_MEMSET) {
    memset(p, value, bytes);
  } else {
    for (size_t i = 0; i < bytes; i++) p[i] = (unsigned char)i;
  }
}

#endif
