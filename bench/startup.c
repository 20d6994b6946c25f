/* SPDX-License-Identifier: MIT */
/* bench_startup: what an allocator costs a process at start and exit, and at fork().
 *
 *   bench_startup [--runs N] [--rounds R] [--fork-blocks B] [--forks F]
 *                 --lib NAME=PATH [--lib NAME=PATH ...] [-- CMD ARGS...]
 *
 * Start-up: runs CMD (default /bin/true) N times per library in each of R rounds, the
 * libraries interleaved run by run (glibc, jemalloc, slub, glibc, jemalloc, slub, ...) so that
 * the machine's drift hits them all alike; each run is posix_spawn + waitpid, with LD_PRELOAD
 * set to the library (an empty PATH: none, glibc's malloc). Prints per library the median over
 * the rounds of the mean time a process takes, and the median over the rounds of its
 * difference to the first library (the baseline, normally glibc).
 *
 * fork(): this program re-executes itself under each library (--fork-worker), allocates B live
 * blocks of 16..4096 bytes, then times F calls of fork() (the child calls exit at once, its
 * exit handlers run; the parent waits). The medians over the rounds of the mean time fork()
 * takes to return, and of the whole fork + exit + waitpid cycle, are printed.
 *
 * Not a test: it never fails on time. Nothing here is linked with slub. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

enum { kMaxLibs = 8, kMaxRounds = 64 };

struct lib {
  const char* name;
  const char* path; /* "" for none */
  double start_ms[kMaxRounds];
  double fork_us[kMaxRounds];
  double cycle_us[kMaxRounds];
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(const double* v, int n) {
  double tmp[kMaxRounds];
  memcpy(tmp, v, sizeof(double) * (size_t)n);
  qsort(tmp, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* The environment with LD_PRELOAD replaced by `path` (removed when empty). */
static char** env_with_preload(const char* path) {
  size_t n = 0;
  while (environ[n] != NULL) n++;
  char** env = calloc(n + 2, sizeof(char*));
  if (env == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) env[k++] = environ[i];
  if (path[0] != '\0') {
    char* v = malloc(strlen(path) + 12);
    if (v == NULL) return NULL;
    sprintf(v, "LD_PRELOAD=%s", path);
    env[k++] = v;
  }
  env[k] = NULL;
  return env;
}

/* Runs argv once with env; its exit status, or -1. Output goes to /dev/null. */
static int spawn_wait(char** argv, char** env, posix_spawn_file_actions_t* fa) {
  pid_t pid;
  if (posix_spawn(&pid, argv[0], fa, NULL, argv, env) != 0) return -1;
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --fork-worker B F: under the preloaded allocator, B live blocks, then F timed forks. Prints
 * the mean microseconds per fork() on stdout. */
static int fork_worker(int blocks, int forks) {
  void** live = malloc(sizeof(void*) * (size_t)blocks);
  if (live == NULL) return 1;
  for (int i = 0; i < blocks; i++) {
    size_t n = 16 + (size_t)(i * 97) % 4081;
    live[i] = malloc(n);
    if (live[i] == NULL) return 1;
    memset(live[i], i, n);
  }
  double in_fork = 0, cycle = 0;
  for (int i = 0; i < forks; i++) {
    const double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) exit(0); /* with the exit handlers, the allocator's too */
    const double t1 = now_s();
    if (pid < 0) return 1;
    int st;
    waitpid(pid, &st, 0);
    in_fork += t1 - t0;
    cycle += now_s() - t0;
  }
  printf("%.3f %.3f\n", in_fork / forks * 1e6, cycle / forks * 1e6);
  for (int i = 0; i < blocks; i++) free(live[i]);
  free(live);
  return 0;
}

/* Runs this program's fork worker under env: its mean fork() time in microseconds (and in
 * *cycle_us, fork + the child's exit + waitpid), or -1. */
static double run_fork_worker(const char* self, char** env, int blocks, int forks,
                              double* cycle_us) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  char b[16], f[16];
  snprintf(b, sizeof b, "%d", blocks);
  snprintf(f, sizeof f, "%d", forks);
  char* argv[] = {(char*)self, "--fork-worker", b, f, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid;
  int rc = posix_spawn(&pid, self, &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return -1;
  }
  char buf[64] = {0};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
  char* end = NULL;
  const double us = strtod(buf, &end);
  *cycle_us = strtod(end, NULL);
  return us;
}

static void usage(FILE* out) {
  fprintf(out,
          "usage: bench_startup [--runs N] [--rounds R] [--fork-blocks B] [--forks F]\n"
          "                     --lib NAME=PATH [--lib NAME=PATH ...] [-- CMD ARGS...]\n"
          "  --runs N         processes per library and round (default 400)\n"
          "  --rounds R       rounds; medians are taken over them (default 3, at most %d)\n"
          "  --fork-blocks B  live blocks before the timed forks (default 1000; 0: no fork test)\n"
          "  --forks F        timed fork() calls per library and round (default 200)\n"
          "  --lib NAME=PATH  a library to preload (PATH empty: none); the first is the baseline\n"
          "  CMD              the program to start (default /bin/true)\n",
          kMaxRounds);
}

static long parse_count(const char* opt, const char* v, long lo, long hi) {
  char* end = NULL;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
    fprintf(stderr, "bench_startup: %s takes a whole number from %ld to %ld, not '%s'\n", opt, lo,
            hi, v);
    exit(2);
  }
  return n;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "--fork-worker") == 0)
    return fork_worker(atoi(argv[2]), atoi(argv[3]));
  static const struct option opts[] = {{"runs", required_argument, 0, 'n'},
                                       {"rounds", required_argument, 0, 'r'},
                                       {"fork-blocks", required_argument, 0, 'b'},
                                       {"forks", required_argument, 0, 'f'},
                                       {"lib", required_argument, 0, 'l'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  struct lib libs[kMaxLibs];
  int nlibs = 0, runs = 400, rounds = 3, blocks = 1000, forks = 200, c;
  while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
    switch (c) {
      case 'n':
        runs = (int)parse_count("--runs", optarg, 1, 1000000);
        break;
      case 'r':
        rounds = (int)parse_count("--rounds", optarg, 1, kMaxRounds);
        break;
      case 'b':
        blocks = (int)parse_count("--fork-blocks", optarg, 0, 10000000);
        break;
      case 'f':
        forks = (int)parse_count("--forks", optarg, 1, 1000000);
        break;
      case 'l': {
        char* eq = strchr(optarg, '=');
        if (eq == NULL || eq == optarg || nlibs == kMaxLibs) {
          fprintf(stderr, "bench_startup: --lib takes NAME=PATH (at most %d), not '%s'\n", kMaxLibs,
                  optarg);
          return 2;
        }
        *eq = '\0';
        libs[nlibs].name = optarg;
        libs[nlibs].path = eq + 1;
        if (eq[1] != '\0' && access(eq + 1, R_OK) != 0) {
          fprintf(stderr, "bench_startup: --lib %s: cannot read %s\n", optarg, eq + 1);
          return 2;
        }
        nlibs++;
        break;
      }
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (nlibs == 0) {
    usage(stderr);
    return 2;
  }
  char* default_cmd[] = {"/bin/true", NULL};
  char** cmd = optind < argc ? argv + optind : default_cmd;
  char** envs[kMaxLibs];
  for (int i = 0; i < nlibs; i++) {
    envs[i] = env_with_preload(libs[i].path);
    if (envs[i] == NULL) return 1;
  }
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&quiet, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  char self[4096];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) return 1;
  self[sl] = '\0';

  printf("start-up: %s, %d runs x %d rounds per library, interleaved\n", cmd[0], runs, rounds);
  fflush(stdout);
  for (int r = 0; r < rounds; r++) {
    double total[kMaxLibs] = {0};
    for (int i = 0; i < runs; i++)
      for (int l = 0; l < nlibs; l++) {
        const double t0 = now_s();
        const int rc = spawn_wait(cmd, envs[l], &quiet);
        total[l] += now_s() - t0;
        if (rc != 0) {
          fprintf(stderr, "bench_startup: %s under %s exited with %d\n", cmd[0], libs[l].name, rc);
          return 1;
        }
      }
    for (int l = 0; l < nlibs; l++) libs[l].start_ms[r] = total[l] / runs * 1e3;
    if (blocks > 0)
      for (int l = 0; l < nlibs; l++) {
        libs[l].fork_us[r] = run_fork_worker(self, envs[l], blocks, forks, &libs[l].cycle_us[r]);
        if (libs[l].fork_us[r] < 0) {
          fprintf(stderr, "bench_startup: the fork worker failed under %s\n", libs[l].name);
          return 1;
        }
      }
  }
  printf("%-10s %12s %14s", "library", "ms/process", "vs baseline");
  if (blocks > 0) printf(" %12s %18s", "fork() us", "fork+exit+wait us");
  printf("   (medians of %d rounds)\n", rounds);
  for (int l = 0; l < nlibs; l++) {
    double diff[kMaxRounds];
    for (int r = 0; r < rounds; r++) diff[r] = libs[l].start_ms[r] - libs[0].start_ms[r];
    printf("%-10s %12.3f %+14.3f", libs[l].name, median(libs[l].start_ms, rounds),
           median(diff, rounds));
    if (blocks > 0)
      printf(" %12.1f %18.1f", median(libs[l].fork_us, rounds), median(libs[l].cycle_us, rounds));
    printf("\n");
  }
  return 0;
}
