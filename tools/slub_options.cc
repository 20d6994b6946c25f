// SPDX-License-Identifier: MIT
// slub_options: prints the allocator's table of environment variables (pal/options.cc, through
// slub_options_print), as `tools/slub options` shows it, with --markdown as the table of
// docs/OPTIONS.md, or with --roff as the options section of the slub(7) man page
// (cmake/slub_man.cmake). The table in the library is the only source of all three.
// --version prints the library's version (slub_version()).
#include <slub/slub.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  int format = SLUB_OPTIONS_TEXT;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--markdown") == 0) {
      format = SLUB_OPTIONS_MARKDOWN;
    } else if (std::strcmp(argv[i], "--roff") == 0) {
      format = SLUB_OPTIONS_ROFF;
    } else if (std::strcmp(argv[i], "--version") == 0 && argc == 2) {
      std::printf("slub %s\n", slub_version());
      return 0;
    } else {
      std::fprintf(stderr, "usage: %s [--markdown | --roff | --version]\n", argv[0]);
      return 2;
    }
  }
  return slub_options_print(1, format) == 0 ? 0 : 1;
}
