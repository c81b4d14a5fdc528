/*
 * heaplab's C port of the ArceOS allocator test suite, written from the workload's
 * description in docs/workloads/arceos.md. It runs the same tests as the TypeScript suite
 * (packages/bench/src/workloads/arceos/), with the same generators, sizes, orders and
 * scratch allocations, against the C library's malloc or a preloaded one, so the bench can
 * show the C allocators beside the heaplab backends.
 *
 *   arceos TEST COUNT REPEAT    runs TEST REPEAT times with COUNT (its main loop's length);
 *                               prints "run SECONDS FREE_SECONDS CHECKS" per run (FREE_SECONDS
 *                               is "-" but for vec2-*), then the trailer of heaplab-native.h
 *
 * TEST is one of align, vec, vec2-64, vec2-520, btree, vec3, malloc-large, threads. A failed
 * check prints its reason on stderr and exits with status 1.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaplab-native.h"

#define ARCEOS_SEED 2333u

static const char *current_test = "";

static void fail(const char *format, ...) {
  va_list arguments;
  va_start(arguments, format);
  fprintf(stderr, "arceos %s: ", current_test);
  vfprintf(stderr, format, arguments);
  fputc('\n', stderr);
  va_end(arguments);
  exit(1);
}

static void *allocate(size_t bytes) {
  void *block = malloc(bytes);
  if (block == NULL) fail("malloc(%zu) returned NULL", bytes);
  return block;
}

/* A test's clock, stopped while the checks heaplab adds to the original's run. */
struct test_clock {
  double started;
  double excluded;
  double paused;
};

static void clock_pause(struct test_clock *clock) { clock->paused = hl_now(); }
static void clock_resume(struct test_clock *clock) { clock->excluded += hl_now() - clock->paused; }
static double clock_seconds(const struct test_clock *clock) { return hl_now() - clock->started - clock->excluded; }

/* ArceOS libax's rand: a 64-bit LCG; srand(s) sets the state to s - 1 in 32 bits. */
struct libax_random {
  uint64_t state;
};

static void libax_seed(struct libax_random *random, uint32_t seed) { random->state = (uint32_t)(seed - 1u); }

static uint32_t libax_u32(struct libax_random *random) {
  random->state = random->state * 6364136223846793005ULL + 1u;
  return (uint32_t)(random->state >> 33);
}

/* rand_usize: the first draw is the high half (sequenced here: C leaves operand order open). */
static uint64_t libax_usize(struct libax_random *random) {
  uint64_t high = libax_u32(random);
  uint64_t low = libax_u32(random);
  return high << 32 | low;
}

/* A Rust Vec buffer: grows to max(2 * capacity, length + 1), at least 4 elements (8 bytes, 1 over 1 KiB). */
struct vec {
  unsigned char *data;
  size_t capacity;
  size_t length;
  size_t element;
};

static void vec_new(struct vec *vec, size_t element) {
  vec->data = NULL;
  vec->capacity = 0;
  vec->length = 0;
  vec->element = element;
}

static void vec_with_capacity(struct vec *vec, size_t element, size_t capacity) {
  vec_new(vec, element);
  vec->data = allocate(capacity * element);
  vec->capacity = capacity;
}

static void *vec_push_slot(struct vec *vec) {
  if (vec->length == vec->capacity) {
    size_t minimum = vec->element == 1 ? 8 : vec->element <= 1024 ? 4 : 1;
    size_t capacity = vec->capacity * 2;
    if (capacity < vec->length + 1) capacity = vec->length + 1;
    if (capacity < minimum) capacity = minimum;
    unsigned char *grown = vec->capacity == 0 ? malloc(capacity * vec->element) : realloc(vec->data, capacity * vec->element);
    if (grown == NULL) fail("growing a vector to %zu bytes failed", capacity * vec->element);
    vec->data = grown;
    vec->capacity = capacity;
  }
  return vec->data + vec->length++ * vec->element;
}

static void *vec_at(const struct vec *vec, size_t index) { return vec->data + index * vec->element; }

static void vec_drop(struct vec *vec) {
  if (vec->capacity != 0) free(vec->data);
  vec->data = NULL;
  vec->capacity = 0;
  vec->length = 0;
}

#define USIZE(vec, index) (*(uint64_t *)vec_at((vec), (index)))

/* A Vec<usize> element of a Vec<Vec<usize>>. */
struct inner_vec {
  uint64_t *data;
  size_t capacity;
  size_t length;
};

/* --- align_test ------------------------------------------------------------------------- */

static double test_align(size_t steps, struct test_clock *clock) {
  (void)clock;
  struct libax_random random;
  libax_seed(&random, ARCEOS_SEED);
  struct vec addresses, sizes, aligns, live;
  vec_new(&addresses, 8);
  vec_new(&sizes, 8);
  vec_new(&aligns, 8);
  vec_new(&live, 8);
  for (size_t step = 0; step < steps; step++) {
    if (libax_u32(&random) % 3 != 0 || live.length == 0) {
      uint32_t exponent = libax_u32(&random) & 15;
      double fraction = (double)libax_u32(&random);
      size_t size = (size_t)((double)(1u << exponent) * (1.0 + fraction / 4294967295.0));
      size_t align = (size_t)1 << (libax_u32(&random) & 7);
      void *block = NULL;
      if (posix_memalign(&block, align < sizeof(void *) ? sizeof(void *) : align, size) != 0) fail("no block of %zu bytes aligned to %zu", size, align);
      if ((uintptr_t)block % align != 0) fail("a block of %zu bytes at %p is not aligned to %zu", size, block, align);
      uint64_t index = addresses.length;
      *(uint64_t *)vec_push_slot(&addresses) = (uintptr_t)block;
      *(uint64_t *)vec_push_slot(&sizes) = size;
      *(uint64_t *)vec_push_slot(&aligns) = align;
      *(uint64_t *)vec_push_slot(&live) = index;
    } else {
      size_t index = (size_t)(libax_usize(&random) % live.length);
      free((void *)(uintptr_t)USIZE(&addresses, USIZE(&live, index)));
      live.length--;
      USIZE(&live, index) = USIZE(&live, live.length);
    }
  }
  for (size_t index = 0; index < live.length; index++) free((void *)(uintptr_t)USIZE(&addresses, USIZE(&live, index)));
  vec_drop(&live);
  vec_drop(&aligns);
  vec_drop(&sizes);
  vec_drop(&addresses);
  return -1;
}

/* --- test_vec --------------------------------------------------------------------------- */

static double test_vec(size_t count, struct test_clock *clock) {
  struct libax_random random;
  libax_seed(&random, ARCEOS_SEED);
  struct vec values;
  vec_new(&values, 4);
  for (size_t index = 0; index < count; index++) *(uint32_t *)vec_push_slot(&values) = libax_u32(&random);
  clock_pause(clock);
  struct libax_random replay;
  libax_seed(&replay, ARCEOS_SEED);
  for (size_t index = 0; index < count; index++) {
    if (((uint32_t *)values.data)[index] != libax_u32(&replay)) fail("element %zu lost its value across the reallocations", index);
  }
  clock_resume(clock);
  vec_drop(&values);
  return -1;
}

/* --- test_vec_2 ------------------------------------------------------------------------- */

/* The 2023 Rust merge sort's scratch: half the slice and 16 runs of 16 bytes, for slices over 20. */
#define SORT_INSERTION_MAX 20
#define SORT_RUNS_BYTES (16 * 16)

/* An in-place heapsort: qsort may allocate (glibc's merge sort does for 1 KiB and more). */
static void sift_down(uint64_t *values, size_t root, size_t count) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= count) return;
    if (child + 1 < count && values[child + 1] > values[child]) child++;
    if (values[root] >= values[child]) return;
    uint64_t swapped = values[root];
    values[root] = values[child];
    values[child] = swapped;
    root = child;
  }
}

static void sort_usizes(uint64_t *values, size_t count) {
  void *buffer = NULL;
  void *runs = NULL;
  if (count > SORT_INSERTION_MAX) {
    buffer = allocate(count / 2 * sizeof(uint64_t));
    runs = allocate(SORT_RUNS_BYTES);
  }
  for (size_t root = count / 2; root-- > 0;) sift_down(values, root, count);
  for (size_t end = count; end-- > 1;) {
    uint64_t largest = values[0];
    values[0] = values[end];
    values[end] = largest;
    sift_down(values, 0, end);
  }
  if (count > SORT_INSERTION_MAX) {
    free(runs);
    free(buffer);
  }
  for (size_t index = 0; index + 1 < count; index++) {
    if (values[index] > values[index + 1]) fail("a block is not sorted");
  }
}

static double test_vec2(size_t count, size_t capacity, struct test_clock *clock) {
  (void)clock;
  struct libax_random random;
  libax_seed(&random, ARCEOS_SEED);
  struct vec blocks;
  vec_new(&blocks, sizeof(struct inner_vec));
  for (size_t index = 0; index < count; index++) {
    uint64_t *block = allocate(capacity * sizeof(uint64_t));
    for (size_t element = 0; element < capacity; element++) block[element] = libax_usize(&random);
    sort_usizes(block, capacity);
    *(struct inner_vec *)vec_push_slot(&blocks) = (struct inner_vec){block, capacity, capacity};
  }
  struct vec order;
  vec_with_capacity(&order, 8, count);
  for (size_t index = 0; index < count; index++) *(uint64_t *)vec_push_slot(&order) = index;
  for (size_t index = 1; index < count; index++) {
    size_t other = (size_t)(libax_usize(&random) % (index + 1));
    uint64_t swapped = USIZE(&order, index);
    USIZE(&order, index) = USIZE(&order, other);
    USIZE(&order, other) = swapped;
  }
  double free_started = hl_now();
  for (size_t index = 0; index < count; index++) {
    struct inner_vec *inner = vec_at(&blocks, USIZE(&order, index));
    free(inner->data);
    *inner = (struct inner_vec){NULL, 0, 0};
  }
  double free_seconds = hl_now() - free_started;
  vec_drop(&order);
  vec_drop(&blocks);
  return free_seconds;
}

/* --- test_btree_map: Rust's BTreeMap<String, usize>, its nodes laid out as Rust's ------ */

#define B 6
#define CAPACITY (2 * B - 1)
#define MIN_LENGTH (B - 1)

struct key {
  unsigned char *data;
  size_t capacity;
  size_t length;
};

struct internal_node;

struct leaf_node {
  struct internal_node *parent;
  uint16_t parent_index;
  uint16_t length;
  struct key keys[CAPACITY];
  uint64_t values[CAPACITY];
};

struct internal_node {
  struct leaf_node data;
  struct leaf_node *edges[CAPACITY + 1];
};

_Static_assert(sizeof(struct leaf_node) == 368, "a leaf is 368 bytes, as Rust's LeafNode<String, usize>");
_Static_assert(sizeof(struct internal_node) == 464, "an internal node is 464 bytes, as Rust's InternalNode<String, usize>");

struct btree {
  struct leaf_node *root;
  size_t height;
  size_t length;
};

static struct internal_node *as_internal(struct leaf_node *node) { return (struct internal_node *)node; }

static struct leaf_node *new_node(size_t height) {
  struct leaf_node *node = allocate(height > 0 ? sizeof(struct internal_node) : sizeof(struct leaf_node));
  node->parent = NULL;
  node->parent_index = 0;
  node->length = 0;
  return node;
}

static void set_parent(struct leaf_node *child, struct leaf_node *parent, size_t index) {
  child->parent = as_internal(parent);
  child->parent_index = (uint16_t)index;
}

static void correct_parent_links(struct leaf_node *node, size_t from, size_t to) {
  for (size_t index = from; index <= to; index++) set_parent(as_internal(node)->edges[index], node, index);
}

static void move_pairs(struct leaf_node *from, size_t from_index, struct leaf_node *to, size_t to_index, size_t count) {
  memmove(&to->keys[to_index], &from->keys[from_index], count * sizeof(struct key));
  memmove(&to->values[to_index], &from->values[from_index], count * sizeof(uint64_t));
}

static void move_edges(struct leaf_node *from, size_t from_index, struct leaf_node *to, size_t to_index, size_t count) {
  memmove(&as_internal(to)->edges[to_index], &as_internal(from)->edges[from_index], count * sizeof(struct leaf_node *));
}

struct pair {
  struct key key;
  uint64_t value;
};

static void insert_fit(struct leaf_node *node, size_t height, size_t index, const struct pair *pair, struct leaf_node *right_edge) {
  size_t length = node->length;
  move_pairs(node, index, node, index + 1, length - index);
  node->keys[index] = pair->key;
  node->values[index] = pair->value;
  if (height > 0) {
    move_edges(node, index + 1, node, index + 2, length - index);
    as_internal(node)->edges[index + 1] = right_edge;
  }
  node->length = (uint16_t)(length + 1);
  if (height > 0) correct_parent_links(node, index + 1, length + 1);
}

static void insert_recursing(struct btree *tree, struct leaf_node *node, size_t index, struct pair carried) {
  size_t height = 0;
  struct leaf_node *right_edge = NULL;
  for (;;) {
    size_t length = node->length;
    if (length < CAPACITY) {
      insert_fit(node, height, index, &carried, right_edge);
      return;
    }
    size_t middle;
    int left;
    size_t insert_index;
    if (index < B - 1) {
      middle = B - 2, left = 1, insert_index = index;
    } else if (index == B - 1) {
      middle = B - 1, left = 1, insert_index = index;
    } else if (index == B) {
      middle = B - 1, left = 0, insert_index = 0;
    } else {
      middle = B, left = 0, insert_index = index - (B + 1);
    }
    struct leaf_node *right = new_node(height);
    size_t right_length = length - middle - 1;
    struct pair raised = {node->keys[middle], node->values[middle]};
    move_pairs(node, middle + 1, right, 0, right_length);
    if (height > 0) move_edges(node, middle + 1, right, 0, right_length + 1);
    node->length = (uint16_t)middle;
    right->length = (uint16_t)right_length;
    if (height > 0) correct_parent_links(right, 0, right_length);
    insert_fit(left ? node : right, height, insert_index, &carried, right_edge);
    carried = raised;
    right_edge = right;
    if (node == tree->root) {
      struct leaf_node *root = new_node(height + 1);
      as_internal(root)->edges[0] = node;
      set_parent(node, root, 0);
      root->keys[0] = carried.key;
      root->values[0] = carried.value;
      as_internal(root)->edges[1] = right;
      set_parent(right, root, 1);
      root->length = 1;
      tree->root = root;
      tree->height++;
      return;
    }
    index = node->parent_index;
    node = &node->parent->data;
    height++;
  }
}

static int compare_keys(const unsigned char *a, size_t a_length, const struct key *b) {
  size_t common = a_length < b->length ? a_length : b->length;
  int order = memcmp(a, b->data, common);
  if (order != 0) return order;
  return a_length < b->length ? -1 : a_length > b->length ? 1 : 0;
}

/* map.insert(format!("key_{value}"), value): "key_" in 8 bytes, then realloc to max(16, length). */
static void btree_insert_formatted(struct btree *tree, uint64_t value) {
  char digits[24];
  int digit_count = snprintf(digits, sizeof digits, "%" PRIu64, value);
  size_t length = 4 + (size_t)digit_count;
  size_t capacity = 8;
  unsigned char *key = allocate(capacity);
  memcpy(key, "key_", 4);
  if (length > capacity) {
    capacity = length > 2 * capacity ? length : 2 * capacity;
    unsigned char *grown = realloc(key, capacity);
    if (grown == NULL) fail("realloc of a key to %zu bytes failed", capacity);
    key = grown;
  }
  memcpy(key + 4, digits, (size_t)digit_count);
  if (tree->root == NULL) {
    tree->root = new_node(0);
    tree->height = 0;
  }
  struct leaf_node *node = tree->root;
  size_t height = tree->height;
  size_t index;
  for (;;) {
    index = 0;
    while (index < node->length) {
      int order = compare_keys(key, length, &node->keys[index]);
      if (order < 0) break;
      if (order == 0) {
        node->values[index] = value;
        free(key);
        return;
      }
      index++;
    }
    if (height == 0) break;
    node = as_internal(node)->edges[index];
    height--;
  }
  insert_recursing(tree, node, index, (struct pair){{key, capacity, length}, value});
  tree->length++;
}

static void free_node(struct leaf_node *node) { free(node); }

static void merge_first(struct leaf_node *parent, size_t child_height) {
  struct leaf_node *left = as_internal(parent)->edges[0];
  struct leaf_node *right = as_internal(parent)->edges[1];
  size_t left_length = left->length, right_length = right->length, parent_length = parent->length;
  size_t merged = left_length + 1 + right_length;
  left->length = (uint16_t)merged;
  struct pair moved = {parent->keys[0], parent->values[0]};
  move_pairs(parent, 1, parent, 0, parent_length - 1);
  left->keys[left_length] = moved.key;
  left->values[left_length] = moved.value;
  move_pairs(right, 0, left, left_length + 1, right_length);
  move_edges(parent, 2, parent, 1, parent_length - 1);
  if (parent_length >= 2) correct_parent_links(parent, 1, parent_length - 1);
  parent->length = (uint16_t)(parent_length - 1);
  if (child_height > 0) {
    move_edges(right, 0, left, left_length + 1, right_length + 1);
    correct_parent_links(left, left_length + 1, merged);
  }
  free_node(right);
}

static void steal_from_right(struct leaf_node *parent, size_t count, size_t child_height) {
  struct leaf_node *left = as_internal(parent)->edges[0];
  struct leaf_node *right = as_internal(parent)->edges[1];
  size_t left_length = left->length, right_length = right->length;
  left->length = (uint16_t)(left_length + count);
  right->length = (uint16_t)(right_length - count);
  left->keys[left_length] = parent->keys[0];
  left->values[left_length] = parent->values[0];
  parent->keys[0] = right->keys[count - 1];
  parent->values[0] = right->values[count - 1];
  move_pairs(right, 0, left, left_length + 1, count - 1);
  move_pairs(right, count, right, 0, right_length - count);
  if (child_height > 0) {
    move_edges(right, 0, left, left_length + 1, count);
    move_edges(right, count, right, 0, right_length - count + 1);
    correct_parent_links(left, left_length + 1, left_length + count);
    correct_parent_links(right, 0, right_length - count);
  }
}

/* Merges or steals for the first child of parent; returns whether they merged. */
static int balance_first(struct leaf_node *parent, size_t child_height) {
  struct leaf_node *left = as_internal(parent)->edges[0];
  struct leaf_node *right = as_internal(parent)->edges[1];
  if (left->length + 1 + right->length <= CAPACITY) {
    merge_first(parent, child_height);
    return 1;
  }
  steal_from_right(parent, MIN_LENGTH - left->length, child_height);
  return 0;
}

static void btree_pop_first(struct btree *tree) {
  struct leaf_node *leaf = tree->root;
  for (size_t height = tree->height; height > 0; height--) leaf = as_internal(leaf)->edges[0];
  struct key popped = leaf->keys[0];
  size_t leaf_length = leaf->length - 1u;
  move_pairs(leaf, 1, leaf, 0, leaf_length);
  leaf->length = (uint16_t)leaf_length;
  if (leaf_length < MIN_LENGTH && leaf != tree->root) {
    struct leaf_node *parent = &leaf->parent->data;
    balance_first(parent, 0);
    for (size_t height = 1;; height++) {
      size_t length = parent->length;
      if (length >= MIN_LENGTH) break;
      if (parent == tree->root) {
        if (length == 0) {
          tree->root = as_internal(parent)->edges[0];
          tree->height--;
          tree->root->parent = NULL;
          free_node(parent);
        }
        break;
      }
      struct leaf_node *grandparent = &parent->parent->data;
      if (!balance_first(grandparent, height)) break;
      parent = grandparent;
    }
  }
  free(popped.data);
  tree->length--;
}

static size_t btree_verify(const struct leaf_node *node, size_t height, const struct key **previous) {
  size_t walked = 0;
  for (size_t index = 0; index <= node->length; index++) {
    if (height > 0) walked += btree_verify(((const struct internal_node *)node)->edges[index], height - 1, previous);
    if (index == node->length) break;
    const struct key *key = &node->keys[index];
    char expected[32];
    int expected_length = snprintf(expected, sizeof expected, "key_%" PRIu64, node->values[index]);
    if ((size_t)expected_length != key->length || memcmp(expected, key->data, key->length) != 0) fail("the map holds the value of %s under another key", expected);
    if (*previous != NULL && compare_keys((*previous)->data, (*previous)->length, key) >= 0) fail("key %s is not above the key before it", expected);
    *previous = key;
    walked++;
  }
  return walked;
}

static void btree_drop(struct leaf_node *node, size_t height) {
  for (size_t index = 0; index <= node->length; index++) {
    if (height > 0) btree_drop(as_internal(node)->edges[index], height - 1);
    if (index == node->length) break;
    free(node->keys[index].data);
  }
  free_node(node);
}

static double test_btree(size_t steps, struct test_clock *clock) {
  (void)clock;
  struct libax_random random;
  libax_seed(&random, ARCEOS_SEED);
  struct btree tree = {NULL, 0, 0};
  for (size_t step = 0; step < steps; step++) {
    if (libax_usize(&random) % 5 == 0 && tree.length > 0) {
      btree_pop_first(&tree);
    } else {
      btree_insert_formatted(&tree, libax_usize(&random));
    }
  }
  const struct key *previous = NULL;
  size_t walked = tree.root == NULL ? 0 : btree_verify(tree.root, tree.height, &previous);
  if (walked != tree.length) fail("the walk met %zu pairs, the map counts %zu", walked, tree.length);
  if (tree.root != NULL) btree_drop(tree.root, tree.height);
  return -1;
}

/* --- test_vec_3 ------------------------------------------------------------------------- */

#define VEC3_SMALL 32
#define VEC3_LARGE 64

static size_t vec3_capacity(size_t index, size_t n) { return index >= 2 * n || index % 2 == 0 ? VEC3_SMALL : VEC3_LARGE; }

static void vec3_push(struct vec *blocks, struct libax_random *random, size_t capacity) {
  uint64_t *block = allocate(capacity * sizeof(uint64_t));
  *(struct inner_vec *)vec_push_slot(blocks) = (struct inner_vec){block, capacity, capacity};
  for (size_t element = 0; element < capacity; element++) block[element] = libax_usize(random);
}

static double test_vec3(size_t n, struct test_clock *clock) {
  struct libax_random random;
  libax_seed(&random, ARCEOS_SEED);
  struct vec blocks;
  vec_new(&blocks, sizeof(struct inner_vec));
  for (size_t index = 0; index < 4 * n; index++) vec3_push(&blocks, &random, vec3_capacity(index, n));
  for (size_t index = 1; index < 4 * n; index += 2) {
    struct inner_vec *inner = vec_at(&blocks, index);
    free(inner->data);
    *inner = (struct inner_vec){NULL, 0, 0};
  }
  for (size_t index = 0; index < n; index++) vec3_push(&blocks, &random, VEC3_LARGE);
  clock_pause(clock);
  struct libax_random replay;
  libax_seed(&replay, ARCEOS_SEED);
  for (size_t index = 0; index < blocks.length; index++) {
    size_t capacity = index < 4 * n ? vec3_capacity(index, n) : VEC3_LARGE;
    const struct inner_vec *inner = vec_at(&blocks, index);
    for (size_t element = 0; element < capacity; element++) {
      uint64_t expected = libax_usize(&replay);
      if (inner->data != NULL && inner->data[element] != expected) fail("block %zu lost its value at element %zu", index, element);
    }
  }
  clock_resume(clock);
  for (size_t index = 0; index < blocks.length; index++) free(((struct inner_vec *)vec_at(&blocks, index))->data);
  vec_drop(&blocks);
  return -1;
}

/* --- malloc_large_test: ArceOS's port of mimalloc-bench's malloc-large -------------------- */

#define LARGE_BUFFERS 10
#define LARGE_MIN_BYTES (2u << 20)
#define LARGE_MAX_BYTES (5u << 20)

static void large_place(unsigned char **buffers, size_t *sizes, uint32_t *tags, size_t index, size_t size, uint32_t tag) {
  buffers[index] = allocate(size);
  sizes[index] = size;
  tags[index] = tag;
  memcpy(buffers[index], &tag, sizeof tag);
  buffers[index][size - 1] = (unsigned char)tag;
}

static void large_release(unsigned char **buffers, const size_t *sizes, const uint32_t *tags, size_t index) {
  uint32_t tag;
  memcpy(&tag, buffers[index], sizeof tag);
  if (tag != tags[index] || buffers[index][sizes[index] - 1] != (unsigned char)tags[index]) fail("large buffer %zu lost its marks", index);
  free(buffers[index]);
}

static double test_malloc_large(size_t iterations, struct test_clock *clock) {
  (void)clock;
  unsigned char *buffers[LARGE_BUFFERS];
  size_t sizes[LARGE_BUFFERS];
  uint32_t tags[LARGE_BUFFERS];
  srand(42);
  for (size_t index = 0; index < LARGE_BUFFERS; index++) large_place(buffers, sizes, tags, index, LARGE_MIN_BYTES, (uint32_t)index);
  for (size_t iteration = 0; iteration < iterations; iteration++) {
    size_t index = (size_t)(rand() % LARGE_BUFFERS);
    size_t size = (size_t)(rand() % (int)(LARGE_MAX_BYTES - LARGE_MIN_BYTES + 1)) + LARGE_MIN_BYTES;
    large_release(buffers, sizes, tags, index);
    large_place(buffers, sizes, tags, index, size, (uint32_t)(LARGE_BUFFERS + iteration));
  }
  for (size_t index = 0; index < LARGE_BUFFERS; index++) large_release(buffers, sizes, tags, index);
  return -1;
}

/* --- multi_thread_test: ten threads, a slot table, cross-thread frees ---------------------- */

#define ARCEOS_THREADS 10
#define BLOCKS_PER_THREAD 1000
#define SIZE_EXPONENTS 12

static _Atomic(uintptr_t) slot_addresses[ARCEOS_THREADS * BLOCKS_PER_THREAD];
static _Atomic(size_t) slot_sizes[ARCEOS_THREADS * BLOCKS_PER_THREAD];
static pthread_barrier_t round_barrier;
static size_t thread_rounds;

struct thread_run {
  pthread_t thread;
  size_t index;
  double seconds;
};

static void fill_slot(size_t slot, size_t size) {
  unsigned char *block = allocate(size);
  block[0] = (unsigned char)slot;
  block[size - 1] = (unsigned char)(slot >> 8);
  atomic_store(&slot_addresses[slot], (uintptr_t)block);
  atomic_store(&slot_sizes[slot], size);
}

static void take_slot(size_t slot) {
  size_t size;
  while ((size = atomic_load(&slot_sizes[slot])) == 0) sched_yield();
  unsigned char *block = (unsigned char *)atomic_load(&slot_addresses[slot]);
  if (block[0] != (unsigned char)slot || block[size - 1] != (unsigned char)(slot >> 8)) fail("the block in slot %zu lost its marks", slot);
  atomic_store(&slot_addresses[slot], 0);
  atomic_store(&slot_sizes[slot], 0);
  free(block);
}

static void *thread_main(void *argument) {
  struct thread_run *run = argument;
  struct libax_random random;
  libax_seed(&random, ARCEOS_SEED + (uint32_t)run->index);
  const size_t threads = ARCEOS_THREADS, half = BLOCKS_PER_THREAD / 2, me = run->index;
  pthread_barrier_wait(&round_barrier);
  double started = hl_now();
  for (size_t round = 0; round < thread_rounds; round++) {
    for (size_t j = 0; j < BLOCKS_PER_THREAD; j++) {
      uint32_t first = libax_u32(&random) % SIZE_EXPONENTS;
      uint32_t second = libax_u32(&random) % SIZE_EXPONENTS;
      fill_slot(j * threads + me, ((size_t)1 << first) + ((size_t)1 << second));
    }
    for (size_t j = half; j < BLOCKS_PER_THREAD; j++) take_slot(j * threads + me);
    pthread_barrier_wait(&round_barrier);
    for (size_t j = 0; j < half; j++) {
      uint32_t first = libax_u32(&random) % SIZE_EXPONENTS;
      uint32_t second = libax_u32(&random) % SIZE_EXPONENTS;
      fill_slot(threads * half + me * half + j, ((size_t)1 << first) + ((size_t)1 << second));
    }
    for (size_t j = 0; j < BLOCKS_PER_THREAD; j++) take_slot(j * threads + me);
    pthread_barrier_wait(&round_barrier);
  }
  run->seconds = hl_now() - started;
  return NULL;
}

static double test_threads(size_t rounds, struct test_clock *clock) {
  struct thread_run runs[ARCEOS_THREADS];
  thread_rounds = rounds;
  pthread_barrier_init(&round_barrier, NULL, ARCEOS_THREADS);
  for (size_t index = 0; index < ARCEOS_THREADS; index++) {
    runs[index].index = index;
    if (pthread_create(&runs[index].thread, NULL, thread_main, &runs[index]) != 0) fail("cannot start thread %zu", index);
  }
  double slowest = 0;
  for (size_t index = 0; index < ARCEOS_THREADS; index++) {
    pthread_join(runs[index].thread, NULL);
    if (runs[index].seconds > slowest) slowest = runs[index].seconds;
  }
  pthread_barrier_destroy(&round_barrier);
  /* As the TypeScript test: the slowest thread's time from the barrier all threads pass once started. */
  clock->started = hl_now() - slowest;
  clock->excluded = 0;
  return -1;
}

/* --- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: arceos TEST COUNT REPEAT\n");
    return 2;
  }
  current_test = argv[1];
  size_t count = strtoull(argv[2], NULL, 10);
  int repeat = atoi(argv[3]);
  double wall_started = hl_now();
  for (int run = 0; run < repeat; run++) {
    struct test_clock clock = {hl_now(), 0, 0};
    double free_seconds;
    if (strcmp(current_test, "align") == 0) {
      free_seconds = test_align(count, &clock);
    } else if (strcmp(current_test, "vec") == 0) {
      free_seconds = test_vec(count, &clock);
    } else if (strcmp(current_test, "vec2-64") == 0) {
      free_seconds = test_vec2(count, 64, &clock);
    } else if (strcmp(current_test, "vec2-520") == 0) {
      free_seconds = test_vec2(count, 520, &clock);
    } else if (strcmp(current_test, "btree") == 0) {
      free_seconds = test_btree(count, &clock);
    } else if (strcmp(current_test, "vec3") == 0) {
      free_seconds = test_vec3(count, &clock);
    } else if (strcmp(current_test, "malloc-large") == 0) {
      free_seconds = test_malloc_large(count, &clock);
    } else if (strcmp(current_test, "threads") == 0) {
      free_seconds = test_threads(count, &clock);
    } else {
      fprintf(stderr, "arceos: unknown test %s\n", current_test);
      return 2;
    }
    double seconds = clock_seconds(&clock);
    if (free_seconds < 0) {
      printf("run %.9f - 1\n", seconds);
    } else {
      printf("run %.9f %.9f 1\n", seconds, free_seconds);
    }
  }
  hl_report(hl_now() - wall_started);
  return 0;
}
