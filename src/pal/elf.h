// SPDX-License-Identifier: MIT
// pal/elf: names for code addresses from an object's ELF file, for debug reports: the function
// from the symbol table (.symtab, so static functions too, else .dynsym) and the source line
// from the DWARF line table (.debug_line, versions 2 to 5). Never calls malloc: the file is
// mapped read-only, answers are copied into the caller's buffers, and every read is checked
// against the image's size, so a truncated or corrupt file gives no answer, never a fault.
#pragma once

#include <cstddef>
#include <cstdint>

namespace slub::os {

// What is known of one code address. `vaddr` in the calls below is an address as the ELF file
// sees it (the run-time address minus the object's load bias).
struct ElfWhere {
  char name[192];  // the function's symbol, cut to fit; "" if none
  uint64_t value;  // its start (ELF address) and size
  uint64_t size;
  char file[96];  // the source file's name (no directory); "" if unknown
  uint32_t line;  // 0 if unknown
};

// The STT_FUNC (or STT_GNU_IFUNC) symbol whose [value, value + size) contains vaddr, in the
// ELF image [image, image + len) of this machine's class; with `want_line`, also the line.
// False if no symbol contains it (file, line may still be set when the line table knows it).
bool elf_lookup(const unsigned char* image, size_t len, uint64_t vaddr, bool want_line,
                ElfWhere* out);
// The same on the file at `path`, mapped for the call. False if it cannot be opened or mapped.
bool elf_lookup_file(const char* path, uint64_t vaddr, bool want_line, ElfWhere* out);
// The same for a loaded object, at run-time address `addr`: its file is the first of `paths`
// (the link map's name; for the program, /proc/self/exe then dladdr's name for it, which is
// argv[0]) whose PT_DYNAMIC lies at `dynamic` once moved by the load bias `bias` (any file if
// `dynamic` is 0). Keeps a few files mapped between calls (the cache's lock is only ever
// try-locked: a thread that finds it taken, a signal handler or a fork child, maps the file for
// its own call), so a report of many frames opens each file once.
struct LoadedObject {
  const char* paths[2];  // nullptr or "": none
  uintptr_t bias;
  uintptr_t dynamic;
};
bool elf_lookup_loaded(const LoadedObject& obj, uintptr_t addr, bool want_line, ElfWhere* out);

}  // namespace slub::os
