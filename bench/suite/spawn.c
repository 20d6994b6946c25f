/* SPDX-License-Identifier: MIT */
/* suite_spawn: runs one command and reports its wall time and peak RSS, for
 * tools/bench_suite.py.
 *
 *   suite_spawn [-e VAR=VALUE]... RESULT_FILE PRELOAD CMD [ARGS...]
 *
 * Forks, sets LD_PRELOAD=PRELOAD in the child (or removes LD_PRELOAD when PRELOAD is "-") and
 * each -e VAR=VALUE (e.g. SLUB_KFENCE=100 for the runner's slub-kfence variant), execs CMD, waits
 * for it with wait4 and writes one line to RESULT_FILE: status=<raw wait status>
 * maxrss_kib=<ru_maxrss> wall_s=<seconds from fork to reaping> The exit status is the command's, or
 * 128 + the signal that killed it; 125 when this program failed, 127 when CMD could not be run.
 *
 * Why a helper: Linux folds the peak RSS of the address space a process had before execve into
 * its ru_maxrss, and a child forked (or vforked) by the Python runner starts with the runner's
 * ~20 MB. Forked from this small program, the measured command starts from about 1 MB, the
 * same for every allocator. ru_maxrss from wait4 also covers the command's own waited-for
 * children (cc1plus under g++). This program itself never runs with the allocator preloaded,
 * nor with the -e variables: they are set in the child only, so they reach the measured command
 * (and what it starts) and nothing else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds_between(const struct timespec* a, const struct timespec* b) {
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void usage(const char* prog) {
  fprintf(stderr, "usage: %s [-e VAR=VALUE]... RESULT_FILE PRELOAD|- CMD [ARGS...]\n", prog);
}

int main(int argc, char** argv) {
  /* The -e assignments point into argv; only the child puts them in its environment. */
  char** vars = calloc((size_t)argc, sizeof(char*));
  int n_vars = 0;
  if (vars == NULL) {
    perror("suite_spawn: calloc");
    return 125;
  }
  static const struct option kLongOptions[] = {{"env", required_argument, NULL, 'e'},
                                               {NULL, 0, NULL, 0}};
  int opt;
  /* "+": stop at the first operand, so that CMD's own options are never taken for ours. */
  while ((opt = getopt_long(argc, argv, "+e:", kLongOptions, NULL)) != -1) {
    if (opt != 'e') {
      usage(argv[0]);
      return 125;
    }
    const char* eq = strchr(optarg, '=');
    if (eq == NULL || eq == optarg) {
      fprintf(stderr, "suite_spawn: -e needs VAR=VALUE, not '%s'\n", optarg);
      return 125;
    }
    vars[n_vars++] = optarg;
  }
  if (argc - optind < 3) {
    usage(argv[0]);
    return 125;
  }
  const char* result_file = argv[optind];
  const char* preload = argv[optind + 1];
  char** cmd = argv + optind + 2;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("suite_spawn: fork");
    return 125;
  }
  if (pid == 0) {
    if (strcmp(preload, "-") == 0)
      unsetenv("LD_PRELOAD");
    else
      setenv("LD_PRELOAD", preload, 1);
    for (int i = 0; i < n_vars; i++) {
      if (putenv(vars[i]) != 0) {
        perror("suite_spawn: putenv");
        _exit(125);
      }
    }
    execvp(cmd[0], cmd);
    fprintf(stderr, "suite_spawn: cannot run %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("suite_spawn: wait4");
      return 125;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  FILE* f = fopen(result_file, "w");
  if (!f ||
      fprintf(f, "status=%d maxrss_kib=%ld wall_s=%.6f\n", status, ru.ru_maxrss,
              seconds_between(&t0, &t1)) < 0 ||
      fclose(f) != 0) {
    perror("suite_spawn: writing the result file");
    return 125;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}
