// SPDX-License-Identifier: MIT
#include "pal/elf.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

namespace slub::os {

namespace {

using Ehdr = ElfW(Ehdr);
using Shdr = ElfW(Shdr);
using Sym = ElfW(Sym);

// A bounded view of the image: every read goes through `fits`.
struct Image {
  const unsigned char* p;
  size_t len;
  bool fits(uint64_t off, uint64_t n) const { return off <= len && n <= len - off; }
};

void copy_cut(char* dst, size_t cap, const char* src, size_t max) {
  size_t n = 0;
  while (n < max && src[n] != '\0' && n + 1 < cap) {
    dst[n] = src[n];
    ++n;
  }
  dst[n] = '\0';
}

// The section headers, checked: nullptr if the table does not fit in the image.
const Shdr* section_table(const Image& im, size_t* count) {
  if (!im.fits(0, sizeof(Ehdr))) return nullptr;
  Ehdr eh;
  memcpy(&eh, im.p, sizeof eh);
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return nullptr;
#if __SIZEOF_POINTER__ == 8
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return nullptr;
#else
  if (eh.e_ident[EI_CLASS] != ELFCLASS32) return nullptr;
#endif
  if (eh.e_shentsize != sizeof(Shdr) || eh.e_shnum == 0) return nullptr;
  if (eh.e_shoff % alignof(Shdr) != 0) return nullptr;
  if (!im.fits(eh.e_shoff, uint64_t{eh.e_shnum} * sizeof(Shdr))) return nullptr;
  *count = eh.e_shnum;
  return reinterpret_cast<const Shdr*>(im.p + eh.e_shoff);
}

// The bytes of a section that has them in the file, or false.
bool section_bytes(const Image& im, const Shdr& sh, Image* out) {
  if (sh.sh_type == SHT_NOBITS || (sh.sh_flags & SHF_COMPRESSED) != 0) return false;
  if (!im.fits(sh.sh_offset, sh.sh_size)) return false;
  *out = {im.p + sh.sh_offset, static_cast<size_t>(sh.sh_size)};
  return true;
}

// The section called `name`, by the section-name string table.
bool named_section(const Image& im, const char* name, Image* out) {
  size_t n = 0;
  const Shdr* sh = section_table(im, &n);
  if (sh == nullptr) return false;
  Ehdr eh;
  memcpy(&eh, im.p, sizeof eh);
  if (eh.e_shstrndx == SHN_UNDEF || eh.e_shstrndx >= n) return false;
  Image names;
  if (!section_bytes(im, sh[eh.e_shstrndx], &names)) return false;
  const size_t want = strlen(name) + 1;
  for (size_t i = 0; i < n; ++i) {
    if (!names.fits(sh[i].sh_name, want)) continue;
    if (memcmp(names.p + sh[i].sh_name, name, want) == 0) return section_bytes(im, sh[i], out);
  }
  return false;
}

// The function symbol containing vaddr in one symbol table section.
bool find_in_symtab(const Image& im, const Shdr* sh, size_t n, size_t idx, uint64_t vaddr,
                    ElfWhere* out) {
  Image syms, strs;
  if (!section_bytes(im, sh[idx], &syms) || sh[idx].sh_entsize != sizeof(Sym)) return false;
  if (sh[idx].sh_link >= n || !section_bytes(im, sh[sh[idx].sh_link], &strs)) return false;
  if (sh[idx].sh_offset % alignof(Sym) != 0) return false;
  const auto* s = reinterpret_cast<const Sym*>(syms.p);
  const size_t count = syms.len / sizeof(Sym);
  const Sym* best = nullptr;
  for (size_t i = 0; i < count; ++i) {
    const unsigned type = ELF64_ST_TYPE(s[i].st_info);
    if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
    if (s[i].st_shndx == SHN_UNDEF || s[i].st_size == 0) continue;
    if (vaddr < s[i].st_value || vaddr - s[i].st_value >= s[i].st_size) continue;
    if (s[i].st_name >= strs.len) continue;
    // Aliases share an address: the global one, else the first.
    if (best == nullptr ||
        (ELF64_ST_BIND(best->st_info) == STB_LOCAL && ELF64_ST_BIND(s[i].st_info) != STB_LOCAL))
      best = &s[i];
  }
  if (best == nullptr) return false;
  const char* name = reinterpret_cast<const char*>(strs.p) + best->st_name;
  copy_cut(out->name, sizeof out->name, name, strs.len - best->st_name);
  out->value = best->st_value;
  out->size = best->st_size;
  return out->name[0] != '\0';
}

bool find_symbol(const Image& im, uint64_t vaddr, ElfWhere* out) {
  size_t n = 0;
  const Shdr* sh = section_table(im, &n);
  if (sh == nullptr) return false;
  for (uint32_t type : {uint32_t{SHT_SYMTAB}, uint32_t{SHT_DYNSYM}})
    for (size_t i = 0; i < n; ++i)
      if (sh[i].sh_type == type && find_in_symtab(im, sh, n, i, vaddr, out)) return true;
  return false;
}

// ---- DWARF line tables (DWARF 2-5, "The line number information" of the standard) ---------

// The standard's codes this reader uses (DWARF 5, sections 6.2.5 and 7.5.6, 7.22).
enum : unsigned {
  DW_LNS_copy = 1,
  DW_LNS_advance_pc = 2,
  DW_LNS_advance_line = 3,
  DW_LNS_set_file = 4,
  DW_LNS_const_add_pc = 8,
  DW_LNS_fixed_advance_pc = 9,
  DW_LNE_end_sequence = 1,
  DW_LNE_set_address = 2,
  DW_LNCT_path = 1,
  DW_FORM_data2 = 0x05,
  DW_FORM_data4 = 0x06,
  DW_FORM_data8 = 0x07,
  DW_FORM_string = 0x08,
  DW_FORM_block = 0x09,
  DW_FORM_data1 = 0x0b,
  DW_FORM_sdata = 0x0d,
  DW_FORM_strp = 0x0e,
  DW_FORM_udata = 0x0f,
  DW_FORM_data16 = 0x1e,
  DW_FORM_line_strp = 0x1f,
};

// A cursor over [p, end): reads fail (ok = false) instead of running past the end.
struct Cursor {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  bool have(uint64_t n) {
    if (!ok || n > static_cast<uint64_t>(end - p)) ok = false;
    return ok;
  }
  uint64_t fixed(unsigned n) {  // little-endian, n <= 8
    if (!have(n)) return 0;
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
    p += n;
    return v;
  }
  uint64_t uleb() {
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
      if (!have(1)) return 0;
      const unsigned char b = *p++;
      if (shift < 64) v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
  }
  int64_t sleb() {
    uint64_t v = 0;
    unsigned shift = 0;
    unsigned char b = 0;
    do {
      if (!have(1)) return 0;
      b = *p++;
      if (shift < 64) v |= uint64_t{b & 0x7fu} << shift;
      shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40)) v |= ~uint64_t{0} << shift;
    return static_cast<int64_t>(v);
  }
  const char* cstr() {  // a NUL-terminated string inside the range
    const void* nul = ok ? memchr(p, 0, static_cast<size_t>(end - p)) : nullptr;
    if (nul == nullptr) {
      ok = false;
      return "";
    }
    const char* s = reinterpret_cast<const char*>(p);
    p = static_cast<const unsigned char*>(nul) + 1;
    return s;
  }
  void skip(uint64_t n) {
    if (have(n)) p += n;
  }
};

// The string at `off` of a string section (.debug_line_str, .debug_str), or nullptr.
const char* string_at(const Image& sec, uint64_t off) {
  if (sec.p == nullptr || off >= sec.len) return nullptr;
  if (memchr(sec.p + off, 0, sec.len - off) == nullptr) return nullptr;
  return reinterpret_cast<const char*>(sec.p + off);
}

struct Strings {
  Image line_str{nullptr, 0};
  Image str{nullptr, 0};
};

// Reads one attribute of a DWARF 5 entry format; a path is returned in *path (else untouched).
// False on a form we do not read (strx needs .debug_str_offsets and a unit's base).
bool read_form(Cursor& c, uint64_t form, bool offset64, const Strings& strs, const char** path) {
  const unsigned off_size = offset64 ? 8 : 4;
  switch (form) {
    case DW_FORM_string:
      *path = c.cstr();
      return c.ok;
    case DW_FORM_line_strp:
      *path = string_at(strs.line_str, c.fixed(off_size));
      return c.ok;
    case DW_FORM_strp:
      *path = string_at(strs.str, c.fixed(off_size));
      return c.ok;
    case DW_FORM_udata:
      c.uleb();
      return c.ok;
    case DW_FORM_sdata:
      c.sleb();
      return c.ok;
    case DW_FORM_data1:
      c.skip(1);
      return c.ok;
    case DW_FORM_data2:
      c.skip(2);
      return c.ok;
    case DW_FORM_data4:
      c.skip(4);
      return c.ok;
    case DW_FORM_data8:
      c.skip(8);
      return c.ok;
    case DW_FORM_data16:
      c.skip(16);
      return c.ok;
    case DW_FORM_block:
      c.skip(c.uleb());
      return c.ok;
    default:
      return false;
  }
}

// A DWARF 5 directory or file-name table: finds entry `want`'s path. Leaves the cursor after
// the table; false if the table cannot be read.
bool read_entry_table(Cursor& c, bool offset64, const Strings& strs, uint64_t want,
                      const char** found) {
  uint64_t types[8], forms[8];
  const unsigned nformat = static_cast<unsigned>(c.fixed(1));
  if (!c.ok || nformat > 8) return false;
  for (unsigned i = 0; i < nformat; ++i) {
    types[i] = c.uleb();
    forms[i] = c.uleb();
  }
  const uint64_t count = c.uleb();
  // Every entry takes at least a byte: a larger count (or entries of no bytes, nformat 0) is a
  // corrupt table, not one to loop over up to 2^64 times.
  if (!c.ok || count > static_cast<uint64_t>(c.end - c.p)) return false;
  for (uint64_t e = 0; e < count && c.ok; ++e) {
    const unsigned char* const start = c.p;
    for (unsigned i = 0; i < nformat; ++i) {
      const char* path = nullptr;
      if (!read_form(c, forms[i], offset64, strs, &path)) return false;
      if (e == want && types[i] == DW_LNCT_path && path != nullptr) *found = path;
    }
    if (c.p == start) return false;
  }
  return c.ok;
}

// One line-number program's header, as far as the state machine needs it.
struct LineHeader {
  unsigned version;
  bool offset64;
  unsigned min_inst;
  bool default_is_stmt;
  int line_base;
  unsigned line_range;
  unsigned opcode_base;
  const unsigned char* opcode_lengths;  // opcode_base - 1 bytes
  const unsigned char* tables;          // the directory and file tables
  const unsigned char* program;         // the opcodes, up to the unit's end
  const unsigned char* end;
};

// Parses the header of the unit at c.p and moves c to the next unit: 1 if the unit can be run,
// 0 if it cannot (a version or layout we do not read), -1 if the units cannot be followed.
int read_header(Cursor& c, LineHeader* h) {
  uint64_t unit_len = c.fixed(4);
  h->offset64 = unit_len == 0xffffffffu;
  if (h->offset64)
    unit_len = c.fixed(8);
  else if (unit_len >= 0xfffffff0u)  // reserved lengths
    return -1;
  if (!c.have(unit_len)) return -1;
  Cursor u{c.p, c.p + unit_len};
  c.p += unit_len;
  h->end = u.end;
  h->version = static_cast<unsigned>(u.fixed(2));
  if (h->version < 2 || h->version > 5) return 0;
  if (h->version >= 5) {
    const unsigned addr_size = static_cast<unsigned>(u.fixed(1));
    u.fixed(1);  // segment selector size
    if (addr_size != sizeof(void*)) return 0;
  }
  const uint64_t header_len = u.fixed(h->offset64 ? 8 : 4);
  if (!u.have(header_len)) return 0;
  h->program = u.p + header_len;
  h->min_inst = static_cast<unsigned>(u.fixed(1));
  if (h->version >= 4 && u.fixed(1) != 1) return 0;  // VLIW op_index: not for us
  h->default_is_stmt = u.fixed(1) != 0;
  h->line_base = static_cast<signed char>(u.fixed(1));
  h->line_range = static_cast<unsigned>(u.fixed(1));
  h->opcode_base = static_cast<unsigned>(u.fixed(1));
  if (!u.ok || h->line_range == 0 || h->opcode_base == 0) return 0;
  h->opcode_lengths = u.p;
  u.skip(h->opcode_base - 1);
  h->tables = u.p;
  return u.ok && h->tables <= h->program ? 1 : 0;
}

// The name of file `index` in the unit's file table (0-based in DWARF 5, 1-based before).
const char* file_name(const LineHeader& h, uint64_t index, const Strings& strs) {
  Cursor c{h.tables, h.program};
  if (h.version >= 5) {
    const char* dir = nullptr;
    if (!read_entry_table(c, h.offset64, strs, ~0ull, &dir)) return nullptr;
    const char* name = nullptr;
    if (!read_entry_table(c, h.offset64, strs, index, &name)) return nullptr;
    return name;
  }
  while (c.ok && c.have(1) && *c.p != 0) c.cstr();  // include_directories
  c.skip(1);
  for (uint64_t i = 1; c.ok && c.have(1) && *c.p != 0; ++i) {
    const char* name = c.cstr();
    c.uleb();  // directory, time, length
    c.uleb();
    c.uleb();
    if (c.ok && i == index) return name;
  }
  return nullptr;
}

struct LineMatch {
  bool found = false;
  uint64_t start = 0;  // the row's address: the closest row at or below vaddr wins
  uint32_t line = 0;
  char file[96] = {};
};

// Runs one unit's line program, keeping the row whose range [row, next row) holds vaddr.
void run_program(const LineHeader& h, const Strings& strs, uint64_t vaddr, uint64_t lo,
                 LineMatch* m) {
  Cursor c{h.program, h.end};
  uint64_t addr = 0, file = 1;
  uint64_t line = 1;  // wraps on a corrupt table (no signed overflow); only 1..2^32-1 is kept
  bool have_prev = false;
  uint64_t prev_addr = 0, prev_file = 0;
  uint64_t prev_line = 0;

  auto emit = [&](bool end_seq) {
    if (have_prev && prev_addr <= vaddr && vaddr < addr && prev_addr >= lo &&
        (!m->found || prev_addr > m->start) && prev_line > 0 && prev_line <= 0xffffffff) {
      const char* name = file_name(h, prev_file, strs);
      m->found = true;
      m->start = prev_addr;
      m->line = static_cast<uint32_t>(prev_line);
      const char* base = name != nullptr ? strrchr(name, '/') : nullptr;
      copy_cut(m->file, sizeof m->file, base != nullptr ? base + 1 : (name ? name : "?"), 96);
    }
    have_prev = !end_seq;
    prev_addr = addr;
    prev_file = file;
    prev_line = line;
  };
  auto reset = [&] {
    addr = 0;
    file = 1;
    line = 1;
  };

  while (c.ok && c.p < c.end) {
    const unsigned op = static_cast<unsigned>(c.fixed(1));
    if (op >= h.opcode_base) {  // special opcode: one row
      const unsigned adj = op - h.opcode_base;
      addr += uint64_t{adj / h.line_range} * h.min_inst;
      line += static_cast<uint64_t>(h.line_base + static_cast<int>(adj % h.line_range));
      emit(false);
      continue;
    }
    switch (op) {
      case 0: {  // extended
        const uint64_t len = c.uleb();
        if (!c.have(len) || len == 0) return;
        Cursor e{c.p, c.p + len};
        c.p += len;
        const unsigned sub = static_cast<unsigned>(e.fixed(1));
        if (sub == DW_LNE_end_sequence) {
          emit(true);
          reset();
        } else if (sub == DW_LNE_set_address && len - 1 <= 8) {
          addr = e.fixed(static_cast<unsigned>(len - 1));
          have_prev = false;  // a jump: the previous row's range ends nowhere known
        }
        break;  // define_file, set_discriminator and others: skipped by their length
      }
      case DW_LNS_copy:
        emit(false);
        break;
      case DW_LNS_advance_pc:
        addr += c.uleb() * h.min_inst;
        break;
      case DW_LNS_advance_line:
        line += static_cast<uint64_t>(c.sleb());
        break;
      case DW_LNS_set_file:
        file = c.uleb();
        break;
      case DW_LNS_const_add_pc:
        addr += uint64_t{(255 - h.opcode_base) / h.line_range} * h.min_inst;
        break;
      case DW_LNS_fixed_advance_pc:
        addr += c.fixed(2);
        break;
      default:  // set_column, negate_stmt, ... and unknown ones: their operands, as declared
        for (unsigned i = 0; i < h.opcode_lengths[op - 1] && c.ok; ++i) c.uleb();
        break;
    }
  }
}

// ---- finding the unit of an address (.debug_aranges -> .debug_info -> DW_AT_stmt_list) -----
// Without it every lookup runs every unit's line program; with it, one. Any doubt (no
// aranges, a form we do not know) falls back to running them all.

// The .debug_info offset of the compilation unit whose address ranges hold vaddr.
bool unit_of_address(const Image& aranges, uint64_t vaddr, uint64_t* info_off) {
  Cursor c{aranges.p, aranges.p + aranges.len};
  while (c.ok && c.p < c.end) {
    const unsigned char* start = c.p;
    uint64_t len = c.fixed(4);
    const bool off64 = len == 0xffffffffu;
    if (off64)
      len = c.fixed(8);
    else if (len >= 0xfffffff0u)
      return false;
    if (!c.have(len)) return false;
    Cursor u{c.p, c.p + len};
    c.p += len;
    if (u.fixed(2) != 2) continue;
    const uint64_t off = u.fixed(off64 ? 8 : 4);
    const unsigned addr_size = static_cast<unsigned>(u.fixed(1));
    if (u.fixed(1) != 0 || addr_size != sizeof(void*) || !u.ok) continue;
    const uint64_t tuple = 2 * addr_size;  // the tuples are aligned to their size
    u.skip((tuple - static_cast<uint64_t>(u.p - start) % tuple) % tuple);
    while (u.ok && u.p < u.end) {
      const uint64_t a = u.fixed(addr_size), n = u.fixed(addr_size);
      if (!u.ok || (a == 0 && n == 0)) break;
      if (vaddr >= a && vaddr - a < n) {
        *info_off = off;
        return true;
      }
    }
  }
  return false;
}

enum : unsigned { DW_AT_stmt_list = 0x10, DW_FORM_indirect = 0x16, DW_FORM_implicit_const = 0x21 };

// Skips one attribute value of `form`; false for a form we do not know.
bool skip_form(Cursor& c, uint64_t form, unsigned addr_size, unsigned off_size, unsigned version,
               int depth = 0) {
  switch (form) {
    case 0x01:
      c.skip(addr_size);
      break;  // addr
    case 0x03:
      c.skip(c.fixed(2));
      break;  // block2
    case 0x04:
      c.skip(c.fixed(4));
      break;  // block4
    case 0x05:
    case 0x12:
    case 0x26:
    case 0x2a:
      c.skip(2);
      break;  // data2 ref2 strx2 addrx2
    case 0x06:
    case 0x13:
    case 0x1c:
    case 0x28:
    case 0x2c:
      c.skip(4);
      break;  // 4-byte forms
    case 0x07:
    case 0x14:
    case 0x20:
    case 0x24:
      c.skip(8);
      break;  // data8 ref8 sig8 sup8
    case 0x08:
      c.cstr();
      break;  // string
    case 0x09:
    case 0x18:
      c.skip(c.uleb());
      break;  // block exprloc
    case 0x0a:
      c.skip(c.fixed(1));
      break;  // block1
    case 0x0b:
    case 0x0c:
    case 0x11:
    case 0x25:
    case 0x29:
      c.skip(1);
      break;  // 1-byte forms
    case 0x0d:
      c.sleb();
      break;  // sdata
    case 0x0f:
    case 0x15:
    case 0x1a:
    case 0x1b:
    case 0x22:
    case 0x23:  // uleb forms
    case 0x1f01:
    case 0x1f02:
      c.uleb();
      break;  // GNU addr/str index
    case 0x0e:
    case 0x17:
    case 0x1d:
    case 0x1f:
    case 0x1f20:
    case 0x1f21:  // offsets
      c.skip(off_size);
      break;
    case 0x10:
      c.skip(version <= 2 ? addr_size : off_size);
      break;  // ref_addr
    case 0x19:
    case DW_FORM_implicit_const:
      break;  // no data
    case 0x1e:
      c.skip(16);
      break;  // data16
    case 0x27:
    case 0x2b:
      c.skip(3);
      break;  // strx3 addrx3
    case DW_FORM_indirect:
      return depth == 0 && skip_form(c, c.uleb(), addr_size, off_size, version, 1);
    default:
      return false;
  }
  return c.ok;
}

// The DW_AT_stmt_list (its line table's offset) of the unit at `off` in .debug_info.
bool stmt_list_of(const Image& info, const Image& abbrev, uint64_t off, uint64_t* stmt) {
  if (off >= info.len) return false;
  Cursor c{info.p + off, info.p + info.len};
  uint64_t len = c.fixed(4);
  const bool off64 = len == 0xffffffffu;
  if (off64)
    len = c.fixed(8);
  else if (len >= 0xfffffff0u)
    return false;
  if (!c.have(len)) return false;
  Cursor u{c.p, c.p + len};
  const unsigned off_size = off64 ? 8 : 4;
  const unsigned version = static_cast<unsigned>(u.fixed(2));
  unsigned addr_size = 0;
  uint64_t abbrev_off = 0;
  if (version >= 2 && version <= 4) {
    abbrev_off = u.fixed(off_size);
    addr_size = static_cast<unsigned>(u.fixed(1));
  } else if (version == 5) {
    const unsigned type = static_cast<unsigned>(u.fixed(1));
    addr_size = static_cast<unsigned>(u.fixed(1));
    abbrev_off = u.fixed(off_size);
    if (type != 1 /* DW_UT_compile */ && type != 3 /* DW_UT_partial */) return false;
  } else {
    return false;
  }
  const uint64_t code = u.uleb();
  if (!u.ok || code == 0 || abbrev_off >= abbrev.len) return false;
  // The abbreviation of that code: code, tag, children, then (name, form) pairs up to (0, 0).
  Cursor a{abbrev.p + abbrev_off, abbrev.p + abbrev.len};
  while (a.ok) {
    const uint64_t this_code = a.uleb();
    if (this_code == 0) return false;
    a.uleb();   // tag
    a.skip(1);  // children
    if (this_code == code) break;
    for (;;) {  // another abbreviation's specs
      const uint64_t name = a.uleb(), form = a.uleb();
      if (!a.ok || (name == 0 && form == 0)) break;
      if (form == DW_FORM_implicit_const) a.sleb();
    }
  }
  for (int guard = 0; a.ok && u.ok && guard < 256; ++guard) {
    const uint64_t name = a.uleb(), form = a.uleb();
    if (!a.ok || (name == 0 && form == 0)) return false;
    if (form == DW_FORM_implicit_const) a.sleb();
    if (name == DW_AT_stmt_list) {
      if (form == 0x17 /* sec_offset */)
        *stmt = u.fixed(off_size);
      else if (form == 0x06 /* data4 */)
        *stmt = u.fixed(4);
      else if (form == 0x07 /* data8 */)
        *stmt = u.fixed(8);
      else
        return false;
      return u.ok;
    }
    if (!skip_form(u, form, addr_size, off_size, version)) return false;
  }
  return false;
}

void find_line(const Image& im, uint64_t vaddr, uint64_t lo, ElfWhere* out) {
  Image lines;
  if (!named_section(im, ".debug_line", &lines)) return;
  Strings strs;
  named_section(im, ".debug_line_str", &strs.line_str);
  named_section(im, ".debug_str", &strs.str);
  LineMatch m;
  // The unit's own table first, when the aranges and the unit's first entry say where it is.
  Image aranges, info, abbrev;
  uint64_t unit = 0, stmt = 0;
  if (named_section(im, ".debug_aranges", &aranges) && named_section(im, ".debug_info", &info) &&
      named_section(im, ".debug_abbrev", &abbrev) && unit_of_address(aranges, vaddr, &unit) &&
      stmt_list_of(info, abbrev, unit, &stmt) && stmt < lines.len) {
    Cursor one{lines.p + stmt, lines.p + lines.len};
    LineHeader h;
    if (read_header(one, &h) > 0) run_program(h, strs, vaddr, lo, &m);
  }
  if (!m.found) {  // else every unit, the closest row winning
    Cursor c{lines.p, lines.p + lines.len};
    while (c.ok && c.p < c.end) {
      LineHeader h;
      const int r = read_header(c, &h);
      if (r < 0) break;  // the units after a bad length cannot be found
      if (r > 0) run_program(h, strs, vaddr, lo, &m);
    }
  }
  if (!m.found) return;
  out->line = m.line;
  memcpy(out->file, m.file, sizeof out->file);
}

// ---- mapping files -------------------------------------------------------------------------

// errno is kept: a report (or a free that names its caller) must not change the program's.
// O_NONBLOCK: a FIFO at the path must not block the report.
bool map_file(const char* path, const unsigned char** image, size_t* len) {
  const int saved = errno;
  const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    errno = saved;
    return false;
  }
  struct stat st;
  void* p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  errno = saved;
  if (p == MAP_FAILED) return false;
  *image = static_cast<const unsigned char*>(p);
  *len = static_cast<size_t>(st.st_size);
  return true;
}

// The objects kept mapped: few, replaced in turn; used only under g_cache_busy.
struct Mapped {
  uintptr_t bias, dynamic;  // the loaded object it was checked against
  char path[256];
  const unsigned char* image;  // nullptr: a free slot
  size_t len;
};
constexpr int kMapped = 8;
constinit Mapped g_mapped[kMapped] = {};
constinit int g_next_victim = 0;
constinit std::atomic<bool> g_cache_busy{false};

}  // namespace

namespace {
void clear(ElfWhere* out) {
  out->name[0] = '\0';
  out->file[0] = '\0';
  out->value = out->size = 0;
  out->line = 0;
}

// Is the image the file of the object loaded at `bias` whose dynamic section is at `dynamic`?
// (A file replaced since it was loaded, or /proc/self/exe when the program was started by
// running ld.so, is not: its names would be wrong ones.)
bool is_loaded_file(const unsigned char* image, size_t len, uintptr_t bias, uintptr_t dynamic) {
  if (dynamic == 0) return true;
  const Image im{image, len};
  if (!im.fits(0, sizeof(Ehdr))) return false;
  Ehdr eh;
  memcpy(&eh, image, sizeof eh);
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phentsize != sizeof(ElfW(Phdr)) ||
      !im.fits(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(ElfW(Phdr))))
    return false;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    ElfW(Phdr) ph;
    memcpy(&ph, image + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_DYNAMIC) return bias + ph.p_vaddr == dynamic;
  }
  return false;
}

// Maps `path` if it is the loaded object's file.
bool map_loaded(const char* path, uintptr_t bias, uintptr_t dynamic, const unsigned char** image,
                size_t* len) {
  if (!map_file(path, image, len)) return false;
  if (is_loaded_file(*image, *len, bias, dynamic)) return true;
  munmap(const_cast<unsigned char*>(*image), *len);
  return false;
}
}  // namespace

bool elf_lookup(const unsigned char* image, size_t len, uint64_t vaddr, bool want_line,
                ElfWhere* out) {
  clear(out);
  if (image == nullptr || reinterpret_cast<uintptr_t>(image) % alignof(Shdr) != 0) return false;
  const Image im{image, len};
  const bool named = find_symbol(im, vaddr, out);
  if (want_line) find_line(im, vaddr, named ? out->value : 0, out);
  return named;
}

bool elf_lookup_file(const char* path, uint64_t vaddr, bool want_line, ElfWhere* out) {
  clear(out);
  const unsigned char* image;
  size_t len;
  if (!map_file(path, &image, &len)) return false;
  const bool named = elf_lookup(image, len, vaddr, want_line, out);
  munmap(const_cast<unsigned char*>(image), len);
  return named;
}

bool elf_lookup_loaded(const LoadedObject& obj, uintptr_t addr, bool want_line, ElfWhere* out) {
  clear(out);
  if (addr < obj.bias) return false;
  const uint64_t vaddr = addr - obj.bias;
  const bool cached = !g_cache_busy.exchange(true, std::memory_order_acquire);
  bool named = false;
  for (const char* path : obj.paths) {
    if (path == nullptr || path[0] == '\0') continue;
    Mapped* m = nullptr;
    if (cached)
      for (Mapped& e : g_mapped)
        if (e.image != nullptr && e.bias == obj.bias && e.dynamic == obj.dynamic &&
            strcmp(e.path, path) == 0)
          m = &e;
    if (m != nullptr) {
      named = elf_lookup(m->image, m->len, vaddr, want_line, out);
      break;
    }
    const unsigned char* image;
    size_t len;
    if (!map_loaded(path, obj.bias, obj.dynamic, &image, &len)) continue;
    named = elf_lookup(image, len, vaddr, want_line, out);
    if (cached && strlen(path) < sizeof g_mapped[0].path) {  // keep it; the oldest goes
      m = &g_mapped[g_next_victim];
      g_next_victim = (g_next_victim + 1) % kMapped;
      if (m->image != nullptr) munmap(const_cast<unsigned char*>(m->image), m->len);
      *m = {obj.bias, obj.dynamic, {}, image, len};
      strcpy(m->path, path);
    } else {  // the cache is another caller's now, or the path too long for it
      munmap(const_cast<unsigned char*>(image), len);
    }
    break;
  }
  if (cached) g_cache_busy.store(false, std::memory_order_release);
  return named;
}

}  // namespace slub::os
