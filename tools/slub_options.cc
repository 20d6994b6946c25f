// slub_options: prints the allocator's table of environment variables (pal/options.cc, through
// slub_options_print), as `tools/slub options` shows it, or with --markdown as the table of
// docs/OPTIONS.md. The table in the library is the only source of both.
#include <slub/slub.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  bool markdown = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--markdown") == 0) {
      markdown = true;
    } else {
      std::fprintf(stderr, "usage: %s [--markdown]\n", argv[0]);
      return 2;
    }
  }
  return slub_options_print(1, markdown ? 1 : 0) == 0 ? 0 : 1;
}
