/* SPDX-License-Identifier: MIT */
/* kfence_signals: KFENCE's SIGSEGV handler and the program's own, for kfence_bugs.sh.
 *
 *   usage: kfence_signals before|after|nodefer|ignored
 *          (LD_PRELOAD=libslub.so SLUB_KFENCE_SAMPLE=1)
 *
 * A "foreign" fault is one outside the KFENCE pool: a write to a page the program made
 * PROT_NONE itself. Its handler recovers from it, once with siglongjmp and once by making the
 * page writable and returning (the write is then done again).
 *   before: the handler is installed by a constructor, before the program's first malloc, so
 *           slub's handler comes after it and must pass foreign faults on to it; a KFENCE bug
 *           (a write past a pool object) must still be reported by slub and survived.
 *   after:  the handler is installed after pool allocations, so after slub's; the program's
 *           handler gets every fault, recovers from its own, and passes any other on to the
 *           handler it replaced (as a well-behaved program does), so that a KFENCE bug is
 *           still reported.
 *   nodefer: as before, with SA_NODEFER and a plain longjmp out of the handler (as some
 *           memory probes do): slub must run the handler as the kernel would, with SIGSEGV
 *           not blocked, or the second fault, SIGSEGV still blocked, kills the process.
 *   ignored: SIGSEGV set to SIG_IGN first; after slub's handler is installed, a SIGSEGV sent
 *           with kill must still be ignored.
 * All print "ok" at the end and exit 0. The program prints "previous handler: set|default"
 * in the "after" mode: under slub, once a pool object exists, its handler must be there.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { kPage = 4096 };

void overflow_pool_object(void);

static char* volatile foreign_page; /* PROT_NONE until a fault makes it writable */
static volatile sig_atomic_t foreign_faults, jump_armed;
static sigjmp_buf recover;
static struct sigaction previous; /* the handler replaced by ours ("after" mode) */
static volatile sig_atomic_t passed_on;

static void write_str(const char* s) {
  ssize_t unused = write(2, s, strlen(s));
  (void)unused;
}

static void on_segv(int sig, siginfo_t* info, void* uc) {
  char* a = info->si_addr;
  if (foreign_page != NULL && a >= foreign_page && a < foreign_page + kPage) {
    foreign_faults++;
    if (jump_armed) {
      jump_armed = 0;
      siglongjmp(recover, 1);
    }
    if (mprotect(foreign_page, kPage, PROT_READ | PROT_WRITE) != 0) _exit(3);
    return;
  }
  /* Not ours. In "after" mode the handler we replaced (slub's) decides; else it is a bug. */
  if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != NULL) {
    passed_on++;
    previous.sa_sigaction(sig, info, uc);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
      previous.sa_handler != NULL) {
    passed_on++;
    previous.sa_handler(sig);
    return;
  }
  write_str("kfence_signals: unexpected SIGSEGV outside the program's own page\n");
  _exit(4);
}

static void install(struct sigaction* old) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, old) != 0) {
    write_str("kfence_signals: sigaction failed\n");
    _exit(5);
  }
}

/* "nodefer": its handler leaves by longjmp, which restores no signal mask. */
static jmp_buf plain_recover;
static void on_segv_nodefer(int sig, siginfo_t* info, void* uc) {
  (void)sig;
  (void)uc;
  char* a = info->si_addr;
  if (foreign_page != NULL && a >= foreign_page && a < foreign_page + kPage) {
    foreign_faults++;
    longjmp(plain_recover, 1);
  }
  write_str("kfence_signals: unexpected SIGSEGV outside the program's own page\n");
  _exit(4);
}

/* "before", "nodefer", "ignored": sigaction from a constructor, ahead of main's first malloc
 * (nothing here allocates). glibc passes a program's constructors argc and argv. */
static int before_mode;
__attribute__((constructor)) static void install_early(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "before") == 0) {
    before_mode = 1;
    install(NULL);
  } else if (argc == 2 && strcmp(argv[1], "nodefer") == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv_nodefer;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0) _exit(5);
    before_mode = 1;
  } else if (argc == 2 && strcmp(argv[1], "ignored") == 0) {
    signal(SIGSEGV, SIG_IGN);
    before_mode = 1;
  }
}

/* Two faults on a PROT_NONE page, each left by the handler's longjmp. */
static void nodefer_faults_recovered(void) {
  void* page = mmap(NULL, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) exit(1);
  foreign_page = page;
  foreign_faults = 0;
  for (int i = 0; i < 2; i++) {
    if (setjmp(plain_recover) == 0) {
      foreign_page[i] = 1; /* faults; the handler jumps back */
      fprintf(stderr, "the write to the PROT_NONE page did not fault\n");
      exit(1);
    }
  }
  if (foreign_faults != 2) exit(1);
  munmap(page, kPage);
  foreign_page = NULL;
}

/* Two foreign faults: one left with siglongjmp, one by returning after mprotect. */
static void foreign_faults_recovered(void) {
  void* page = mmap(NULL, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  foreign_page = page;
  foreign_faults = 0;
  if (sigsetjmp(recover, 1) == 0) {
    jump_armed = 1;
    foreign_page[0] = 1; /* faults; the handler jumps back */
    fprintf(stderr, "the write to the PROT_NONE page did not fault\n");
    exit(1);
  }
  foreign_page[1] = 2; /* faults; the handler makes the page writable and returns */
  if (foreign_faults != 2 || foreign_page[1] != 2) {
    fprintf(stderr, "foreign faults: %d, page[1] = %d (expected 2 and 2)\n", (int)foreign_faults,
            foreign_page[1]);
    exit(1);
  }
  munmap(page, kPage);
  foreign_page = NULL;
}

/* A write one byte past a 32-byte pool object placed against its page's end. */
__attribute__((noinline)) void overflow_pool_object(void) {
  int (*kfence_object)(const void*) =
      (int (*)(const void*))dlsym(RTLD_DEFAULT, "slub_kfence_object");
  static void* passed[64];
  int n = 0;
  char* p = NULL;
  while (n < 64) {
    char* q = malloc(32);
    uintptr_t a = (uintptr_t)q;
    if (kfence_object(q) && a % kPage == kPage - 32) {
      p = q;
      break;
    }
    passed[n++] = q;
  }
  if (p == NULL) {
    fprintf(stderr, "no 32-byte pool object at its page's end in 64 allocations\n");
    exit(1);
  }
  ((volatile char*)p)[32] = 0x41;
  free(p);
  for (int i = 0; i < n; i++) free(passed[i]);
}

int main(int argc, char** argv) {
  if (argc != 2 || (strcmp(argv[1], "before") != 0 && strcmp(argv[1], "after") != 0 &&
                    strcmp(argv[1], "nodefer") != 0 && strcmp(argv[1], "ignored") != 0)) {
    fprintf(stderr, "usage: %s before|after|nodefer|ignored\n", argv[0]);
    return 2;
  }
  if (dlsym(RTLD_DEFAULT, "slub_kfence_object") == NULL) {
    fprintf(stderr, "no slub_kfence_object: run with LD_PRELOAD=libslub.so\n");
    return 77;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  if (strcmp(argv[1], "nodefer") == 0 || strcmp(argv[1], "ignored") == 0) {
    if (!before_mode) return 2;
    /* A pool object first: slub's handler is installed, in front of the program's. */
    void* blocks[4];
    for (int i = 0; i < 4; i++) blocks[i] = malloc(48);
    if (strcmp(argv[1], "nodefer") == 0) {
      nodefer_faults_recovered();
      overflow_pool_object();
      nodefer_faults_recovered();
    } else {
      kill(getpid(), SIGSEGV); /* ignored, as before slub */
      overflow_pool_object();
      kill(getpid(), SIGSEGV);
    }
    for (int i = 0; i < 4; i++) free(blocks[i]);
  } else if (strcmp(argv[1], "before") == 0) {
    if (!before_mode) {
      fprintf(stderr, "the constructor did not see the mode: not glibc?\n");
      return 2;
    }
    foreign_faults_recovered();
    overflow_pool_object();
    foreign_faults_recovered(); /* still passed on after a KFENCE report */
  } else {
    /* Pool objects first, so that slub's handler is in place when ours replaces it. */
    void* blocks[8];
    for (int i = 0; i < 8; i++) blocks[i] = malloc(64);
    install(&previous);
    printf("previous handler: %s\n",
           (previous.sa_flags & SA_SIGINFO) || previous.sa_handler != SIG_DFL ? "set" : "default");
    for (int i = 0; i < 8; i++) free(blocks[i]);
    foreign_faults_recovered();
    overflow_pool_object();
    if (passed_on == 0) {
      fprintf(stderr, "the KFENCE fault did not come through the program's handler\n");
      return 1;
    }
    foreign_faults_recovered();
  }
  printf("ok\n");
  return 0;
}
