// SPDX-License-Identifier: MIT
// options_probe: the child that options_test runs with one SLUB_* variable set, to see what the
// allocator made of it. Linked with libslub.a. stdout gets the answer of the one mode asked
// for; stderr is left to the allocator (its messages are what the test counts).
//
//   values     every option as the table holds it: "NAME number set string" (string: "-" if none)
//   merge      "merged" or "apart": two compatible caches created one after the other
//   sheaves    the sheaf capacity of a new cache
//   rseq       slub_fast_path_rseq()
//   allocator  0 (SLUB) or 1 (the SLAB clone) for a new cache
//   threads    the allocator's threads after the first allocations (the service thread starts then)
//   export     "area" if /dev/shm/slub.<pid> appears within 3 s, else "no-area"
//   nodes      slub_nr_nodes()
//   objects    objects per slab of a new cache of 64-byte objects
//   slot       the slot size of a new cache "probe-cache" of 64-byte objects (debug adds to it)
//   random     "ordered" if a new slab hands out its objects in address order (up or down)
//   strict     frees a stack address (reported; SLUB_STRICT aborts)
//   debug_fd   the descriptor the debug reports go to
//   fork       forks a child that creates "probe-cache" and exits, waits for it, then exits
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <slub/slub.h>

#include "core/debug.h"
#include "pal/options.h"

namespace {

namespace opt = slub::options;

kmem_cache* make_cache(const char* name, size_t size = 64) {
  kmem_cache* c = kmem_cache_create(name, size, 0, 0, nullptr);
  if (c == nullptr) {
    std::printf("cannot create %s\n", name);
    _exit(3);
  }
  return c;
}

// The allocator's threads: those named slub-service (a sanitizer's runtime has threads of its
// own, and the program's are not ours).
int count_threads() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = {};
    std::snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    if (FILE* f = std::fopen(path, "r")) {
      if (std::fgets(comm, sizeof comm, f) != nullptr && std::strcmp(comm, "slub-service\n") == 0)
        ++n;
      std::fclose(f);
    }
  }
  closedir(d);
  return n;
}

int probe(const char* mode) {
  if (std::strcmp(mode, "values") == 0) {
    for (unsigned i = 0; i < opt::kNrOptions; ++i) {
      const auto id = static_cast<opt::Id>(i);
      const char* s = opt::str(id);
      std::printf("%s %ld %d %s\n", opt::option(id).name, opt::number(id), opt::is_set(id) ? 1 : 0,
                  s != nullptr ? s : "-");
    }
  } else if (std::strcmp(mode, "merge") == 0) {
    kmem_cache* a = make_cache("probe-a", 72);
    kmem_cache* b = make_cache("probe-b", 72);
    std::printf("%s\n", a == b ? "merged" : "apart");
  } else if (std::strcmp(mode, "sheaves") == 0) {
    std::printf("%u\n", kmem_cache_sheaf_capacity(make_cache("probe-cache")));
  } else if (std::strcmp(mode, "rseq") == 0) {
    std::printf("%d\n", slub_fast_path_rseq());
  } else if (std::strcmp(mode, "allocator") == 0) {
    kmem_cache_queue_info q{};
    if (kmem_cache_get_queue_info(make_cache("probe-cache"), &q) != 0) return 1;
    std::printf("%d\n", q.allocator);
  } else if (std::strcmp(mode, "threads") == 0) {
    usleep(200 * 1000);
    std::printf("%d\n", count_threads());
  } else if (std::strcmp(mode, "export") == 0) {
    char path[64];
    std::snprintf(path, sizeof path, "/dev/shm/slub.%d", static_cast<int>(getpid()));
    bool found = false;
    struct stat st;
    for (int i = 0; i < 30 && !found; ++i) {
      usleep(100 * 1000);
      found = stat(path, &st) == 0;
    }
    std::printf("%s\n", found ? "area" : "no-area");
  } else if (std::strcmp(mode, "nodes") == 0) {
    std::printf("%d\n", slub_nr_nodes());
  } else if (std::strcmp(mode, "objects") == 0) {
    kmem_cache_info info{};
    if (kmem_cache_get_info(make_cache("probe-cache"), &info) != 0) return 1;
    std::printf("%u\n", info.objs_per_slab);
  } else if (std::strcmp(mode, "slot") == 0) {
    std::printf("%zu\n", kmem_cache_slot_size(make_cache("probe-cache")));
  } else if (std::strcmp(mode, "random") == 0) {
    kmem_cache* c = make_cache("probe-cache");
    char* prev = static_cast<char*>(kmem_cache_alloc(c));
    int up = 0, down = 0;  // without shuffling a new slab's objects come in one address order
    for (int i = 0; i < 32; ++i) {
      char* p = static_cast<char*>(kmem_cache_alloc(c));
      up += p > prev;
      down += p < prev;
      prev = p;
    }
    std::printf("%s\n", up == 32 || down == 32 ? "ordered" : "shuffled");
  } else if (std::strcmp(mode, "strict") == 0) {
    char on_stack[64];
    slub_free(on_stack);
    std::printf("survived\n");
  } else if (std::strcmp(mode, "debug_fd") == 0) {
    std::printf("%d\n", slub::debug_fd());
  } else if (std::strcmp(mode, "fork") == 0) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
      make_cache("probe-cache");
      std::exit(0);  // runs the destructors, as the parent's exit does
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::printf("child %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  } else {
    std::fprintf(stderr, "options_probe: unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: options_probe MODE\n");
    return 2;
  }
  slub_free(slub_malloc(32));  // the allocator starts: every option is read now
  const int rc = probe(argv[1]);
  std::fflush(stdout);
  return rc;
}
