/*
 * robson: heaplab's Robson-style worst-case fragmentation adversary (docs/workloads/robson.md),
 * the same adversary as packages/bench/src/workloads/robson/adversary.ts, step for step,
 * against the C library's malloc or a preloaded one.
 *
 *   robson LIVE_BYTES MIN_BLOCK_BYTES MAX_BLOCK_BYTES
 *
 * One phase per power of two s from MIN to MAX: allocate blocks of s bytes (filled) until one
 * more would take the live bytes past LIVE_BYTES; measure the allocator's overhead g per
 * block of s (the smallest gap between two neighbouring blocks of s); then, walking the live
 * blocks in address order, free each one whose freeing leaves the hole from the last kept
 * block's end (at first, the lowest block start less g) to the next block's start (or to
 * the highest end seen plus g, after the last block) below 2s + 2g, so that no block of 2s
 * fits in it. At the end every block still
 * live is freed.
 *
 * The adversary's own arrays are mapped with mmap and touched before the baseline RSS is
 * read, so the allocator under test sees nothing but the adversary's blocks and the growth
 * of the peak RSS is the allocator's. It prints one line per phase, then
 *
 *   operations N        mallocs and frees
 *   span BYTES          highest block end minus lowest block start, over the run
 *   touched_pages N     distinct 4 KiB pages any block ever covered
 *   peak_live BYTES     the most requested bytes live at once
 *   baseline_rss_kib K  VmHWM before the first malloc
 *
 * and the trailer of heaplab-native.h (wall = the adversary's time, its sorting included).
 */
#include <stdint.h>
#include <sys/mman.h>

#include "heaplab-native.h"

typedef struct {
  uintptr_t address;
  size_t size;
} block_t;

/* One phase's figures, printed after the run so that nothing is printed while it is measured. */
typedef struct {
  size_t size, allocated, live_after_alloc, span_after_alloc, overhead, freed, live_after_free, largest_hole;
} phase_t;

#define MAX_PHASES 64
static phase_t phases[MAX_PHASES];

/* stdout's buffer, so that printing never calls the allocator under test. */
static char output_buffer[1 << 16];

/* Distinct pages: open addressing over page numbers (0 = empty slot; page 0 is never a block's). */
#define PAGE_SHIFT 12
#define PAGE_SET_BITS 18
#define PAGE_SET_SLOTS ((size_t)1 << PAGE_SET_BITS)

static uintptr_t *page_set;
static size_t page_count;
static int page_set_full;

static void touch_page(uintptr_t page) {
  if (page_set_full) return;
  size_t slot = (size_t)((page * 0x9E3779B97F4A7C15ull) >> (64 - PAGE_SET_BITS));
  while (page_set[slot] != 0) {
    if (page_set[slot] == page) return;
    slot = (slot + 1) & (PAGE_SET_SLOTS - 1);
  }
  page_set[slot] = page;
  // Past three quarters full the probes grow long; the count is then reported as unknown.
  if (++page_count > PAGE_SET_SLOTS / 4 * 3) page_set_full = 1;
}

static int by_address(const void *a, const void *b) {
  uintptr_t left = ((const block_t *)a)->address, right = ((const block_t *)b)->address;
  return left < right ? -1 : left > right;
}

static void *map_touched(size_t bytes) {
  void *mapped = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  memset(mapped, 0, bytes);
  return mapped;
}

/*
 * The allocator's overhead per block of `size`: the smallest gap between neighbours (in
 * address order) that are both of this size, at most `size`; 0 when no two are neighbours.
 */
static size_t measure_overhead(const block_t *blocks, size_t count, size_t size) {
  size_t smallest = size;
  int found = 0;
  for (size_t rank = 0; rank + 1 < count; rank++) {
    if (blocks[rank].size != size || blocks[rank + 1].size != size) continue;
    uintptr_t gap = blocks[rank + 1].address - blocks[rank].address - size;
    if (gap < smallest) smallest = gap;
    found = 1;
  }
  return found ? smallest : 0;
}

static int power_of_two(size_t value) { return value != 0 && (value & (value - 1)) == 0; }

/* As fillByte in adversary.ts: 0x40 + log2(size). */
static unsigned char fill_byte(size_t size) {
  unsigned char log2 = 0;
  while (((size_t)1 << log2) < size) log2++;
  return (unsigned char)(0x40 + log2);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s LIVE_BYTES MIN_BLOCK_BYTES MAX_BLOCK_BYTES\n", argv[0]);
    return 2;
  }
  size_t live_limit = strtoull(argv[1], NULL, 10);
  size_t min_block = strtoull(argv[2], NULL, 10);
  size_t max_block = strtoull(argv[3], NULL, 10);
  // Sizes from 8 bytes to 2^63 give at most 61 phases.
  if (!power_of_two(min_block) || min_block < 8 || !power_of_two(max_block) || max_block < min_block || live_limit < max_block) {
    fprintf(stderr, "robson: sizes must be powers of two, 8 <= MIN <= MAX <= LIVE_BYTES\n");
    return 2;
  }
  setvbuf(stdout, output_buffer, _IOFBF, sizeof output_buffer);
  enum hl_fill_mode fill_mode = hl_fill_mode_from_env();
  size_t capacity = live_limit / min_block;
  block_t *blocks = map_touched(capacity * sizeof(block_t));
  page_set = map_touched(PAGE_SET_SLOTS * sizeof(uintptr_t));
  long baseline_rss = hl_peak_rss_kib();

  size_t count = 0, live = 0, peak_live = 0, operations = 0;
  uintptr_t lowest = UINTPTR_MAX, high_water = 0;
  size_t phase_count = 0;
  double started = hl_now();
  for (size_t size = min_block; size <= max_block; size *= 2) {
    size_t allocated = 0;
    while (live + size <= live_limit) {
      unsigned char *block = malloc(size);
      operations++;
      if (block == NULL) {
        fprintf(stderr, "robson: malloc(%zu) returned NULL with %zu bytes live\n", size, live);
        return 1;
      }
      hl_fill(block, size, fill_byte(size), fill_mode);
      uintptr_t address = (uintptr_t)block;
      blocks[count].address = address;
      blocks[count].size = size;
      count++;
      allocated++;
      live += size;
      if (address < lowest) lowest = address;
      if (address + size > high_water) high_water = address + size;
      for (uintptr_t page = address >> PAGE_SHIFT; page <= (address + size - 1) >> PAGE_SHIFT; page++) touch_page(page);
    }
    if (live > peak_live) peak_live = live;
    size_t live_after_alloc = live;
    uintptr_t span_after_alloc = high_water - lowest;

    qsort(blocks, count, sizeof(block_t), by_address);
    size_t overhead = measure_overhead(blocks, count, size);
    uintptr_t hole_limit = 2 * size + 2 * overhead;
    uintptr_t last_end = lowest - overhead, largest_hole = 0;
    size_t kept = 0, freed = 0;
    for (size_t rank = 0; rank < count; rank++) {
      block_t block = blocks[rank];
      uintptr_t next_start = rank + 1 < count ? blocks[rank + 1].address : high_water + overhead;
      if (next_start - last_end < hole_limit) {
        free((void *)block.address);
        operations++;
        live -= block.size;
        freed++;
      } else {
        if (block.address - overhead - last_end > largest_hole) largest_hole = block.address - overhead - last_end;
        blocks[kept++] = block;
        last_end = block.address + block.size;
      }
    }
    if (high_water - last_end > largest_hole) largest_hole = high_water - last_end;
    count = kept;
    phases[phase_count++] = (phase_t){size, allocated, live_after_alloc, (size_t)span_after_alloc, overhead, freed, live, (size_t)largest_hole};
  }
  for (size_t rank = 0; rank < count; rank++) free((void *)blocks[rank].address);
  operations += count;
  double wall = hl_now() - started;

  for (size_t i = 0; i < phase_count; i++) {
    phase_t *phase = &phases[i];
    printf("phase %zu allocated %zu live_after_alloc %zu span_after_alloc %zu overhead %zu freed %zu live_after_free %zu largest_hole %zu\n",
           phase->size, phase->allocated, phase->live_after_alloc, phase->span_after_alloc, phase->overhead, phase->freed, phase->live_after_free,
           phase->largest_hole);
  }
  printf("operations %zu\n", operations);
  printf("span %zu\n", (size_t)(high_water - lowest));
  if (page_set_full)
    printf("touched_pages unknown\n");
  else
    printf("touched_pages %zu\n", page_count);
  printf("peak_live %zu\n", peak_live);
  printf("baseline_rss_kib %ld\n", baseline_rss);
  hl_report(wall);
  return 0;
}
