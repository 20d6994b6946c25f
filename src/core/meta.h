// SPDX-License-Identifier: MIT
// core/meta: memory for the allocator's own metadata (cache descriptors, node structures,
// per-CPU areas). Small blocks come in power-of-two sizes from 64 bytes to 64 KiB out of
// 1 MiB mappings, with a free list per size; bigger ones are mapped directly. Zeroed on return.
// Never calls malloc.
#pragma once

#include <cstddef>

namespace slub::meta {

void* alloc(size_t size);
void free(void* p, size_t size);
size_t bytes_in_use();
void lock();  // fork
void unlock();

}  // namespace slub::meta
