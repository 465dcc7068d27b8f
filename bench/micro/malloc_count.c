// LD_PRELOAD heap-call counter for bench/cpu_per_post.sh (ALLOC=1).
//
//   cc -O2 -shared -fPIC -o malloc_count.so bench/micro/malloc_count.c -ldl -lpthread
//   MALLOC_COUNT_FILE=/tmp/counts LD_PRELOAD=./malloc_count.so feed-api ...
//
// Counts calls to malloc/calloc/realloc/aligned allocations and free
// (including those behind operator new/delete, which call malloc/free in
// libstdc++) with relaxed atomics, and every 100 ms rewrites
// MALLOC_COUNT_FILE with "allocs frees bytes": the bench reads it before and
// after a load run and divides by the posts accepted in between. It wraps
// glibc's own entry points (__libc_malloc & co.), so no dlsym bootstrap is
// needed.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

static atomic_ulong n_alloc, n_free, n_bytes;

void* malloc(size_t n) {
  atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&n_bytes, a * b, memory_order_relaxed);
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
  atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
  return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
  void* p = memalign(a, n);
  if (!p) return 12;
  *out = p;
  return 0;
}
void free(void* p) {
  if (p) atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
  __libc_free(p);
}

static void* reporter(void* arg) {
  const char* path = arg;
  char buf[96];
  for (;;) {
    usleep(100000);
    int len = snprintf(buf, sizeof buf, "%lu %lu %lu\n", atomic_load(&n_alloc), atomic_load(&n_free),
                       atomic_load(&n_bytes));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      if (write(fd, buf, (size_t)len) < 0) {}
      close(fd);
    }
  }
  return NULL;
}

__attribute__((constructor)) static void start_reporter(void) {
  const char* path = getenv("MALLOC_COUNT_FILE");
  if (!path || !*path) return;
  static char copy[4096];
  strncpy(copy, path, sizeof copy - 1);
  unsetenv("LD_PRELOAD");  // not into children
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, reporter, copy);
}
