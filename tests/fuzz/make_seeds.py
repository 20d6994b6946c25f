#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/<name>.

Each seed is a small program in the byte encoding of its target (see the operation comments
in fuzz_malloc.cc and fuzz_cache.cc). Run it again after changing an encoding:
    python3 tests/fuzz/make_seeds.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


# ---- fuzz_malloc / fuzz_malloc_debug --------------------------------------------------------
# size: range byte (top 3 bits) + 16-bit value; see decode_size.
def msize(n):
    if n <= 64:
        return bytes([0x00]) + u16(n)
    if n <= 512:
        return bytes([0x40]) + u16(n)
    if n <= 4096:
        return bytes([0x60]) + u16(n)
    if n <= 32768:
        return bytes([0x80]) + u16(n)
    if n <= 1 << 20:
        return bytes([0xA0]) + u16((n - 32768) // 16)
    return bytes([0xC0]) + u16((n - (1 << 20)) // 64)


def malign(a):  # 2^(byte % 23)
    return bytes([a.bit_length() - 1])


def m_malloc(slot, n):
    return bytes([0, slot]) + msize(n)


def m_calloc(slot, nmemb, n, overflow=False):
    return bytes([2, slot, (nmemb % 17) | (0x80 if overflow else 0)]) + msize(n)


def m_posix_memalign(slot, align, n, bad=False):
    return bytes([3, slot, 0x80 if bad else 0]) + malign(align) + msize(n)


def m_aligned_alloc(slot, align, n, bad=False):
    return bytes([4, slot, 0x80 if bad else 0]) + malign(align) + msize(n)


def m_memalign_family(slot, which, align, n):  # which: 0 memalign 1 valloc 2 pvalloc
    return bytes([5, slot, which]) + malign(align) + msize(n)


def m_realloc(slot, n):
    return bytes([6, slot]) + msize(n)


def m_reallocarray(slot, nmemb, n):
    return bytes([7, slot, nmemb]) + msize(n)


def m_free(slot, how=0):
    return bytes([8, slot, how])


def m_remote_free(slot, how=0):
    return bytes([10, slot, how])


def m_remote_malloc(slot, n, zero=False):
    return bytes([11, slot, 1 if zero else 0]) + msize(n)


def m_touch(slot):
    return bytes([12, slot])


VCPU = {0: 0, 1: 1, 2: 2, 3: 3, -1: 4, 4095: 5}


def m_vcpu(v, flush=False):
    return bytes([13, VCPU[v] | (8 if flush else 0)])


def m_burst(slot, count, n):
    return bytes([14, slot, count - 1]) + msize(n)


def m_free_range(slot, count, mode):  # mode: 0 forward 1 reverse 2 remote 3 alternate
    return bytes([15, slot, count - 1, mode])


def malloc_seeds():
    s = {}
    s["small_classes"] = b"".join(
        m_malloc(i, n) for i, n in enumerate([0, 1, 8, 9, 16, 17, 24, 48, 64, 100, 200, 512])
    ) + b"".join(m_free(i, i % 3) for i in range(12))
    s["class_edges_usable"] = b"".join(
        m_malloc(i, n) + m_touch(i)
        for i, n in enumerate([127, 128, 129, 1023, 1024, 1025, 4095, 4096, 4097, 32767, 32768, 32769])
    )
    s["realloc_chain"] = m_malloc(7, 5) + b"".join(
        m_realloc(7, n) for n in [40, 300, 3000, 20000, 100000, 600000, 2 << 20, 1000, 10, 0]
    )
    s["realloc_shrink_in_place"] = m_malloc(3, 4000) + m_realloc(3, 3000) + m_realloc(3, 2100) + \
        m_realloc(3, 1000) + m_reallocarray(3, 4, 256) + m_reallocarray(3, 255, 8)
    s["aligned"] = b"".join(
        m_posix_memalign(i, 1 << (3 + i), 100 * i + 1) for i in range(10)
    ) + b"".join(m_aligned_alloc(20 + i, 1 << (4 + i), 50 + i) for i in range(8)) + \
        m_posix_memalign(40, 24, 10, bad=True) + m_aligned_alloc(41, 48, 10, bad=True) + \
        b"".join(m_free(20 + i, 2) for i in range(8))
    s["memalign_valloc_pvalloc"] = m_memalign_family(1, 0, 256, 33) + \
        m_memalign_family(2, 1, 1, 5000) + m_memalign_family(3, 2, 1, 1) + \
        m_memalign_family(4, 0x81, 64, 70) + m_aligned_alloc(5, 1 << 21, 100)
    s["calloc"] = b"".join(m_calloc(i, i + 1, 7 * i + 3) for i in range(10)) + \
        m_calloc(11, 3, 100000) + m_calloc(12, 1, 2 << 20) + m_calloc(13, 0, 0, overflow=True)
    s["large_and_huge"] = m_malloc(0, 40000) + m_malloc(1, 300000) + m_malloc(2, 1 << 20) + \
        m_malloc(3, (1 << 20) + 1) + m_malloc(4, 3 << 20) + m_free(1) + m_free(3, 1) + \
        m_malloc(1, 70000) + m_realloc(0, 5 << 20)
    s["remote_frees"] = m_burst(0, 32, 48) + m_free_range(0, 32, 2) + m_burst(0, 32, 48) + \
        m_free_range(0, 32, 3) + m_burst(40, 16, 4000) + m_free_range(40, 16, 2)
    s["remote_allocs"] = b"".join(m_remote_malloc(i, 16 * (i + 1), zero=bool(i & 1)) for i in range(16)) + \
        m_free_range(0, 16, 0)
    s["vcpu_migration"] = m_vcpu(0) + m_burst(0, 20, 96) + m_vcpu(2) + m_free_range(0, 10, 0) + \
        m_vcpu(1) + m_free_range(10, 10, 1) + m_vcpu(3, flush=True) + m_burst(0, 20, 96) + \
        m_vcpu(4095) + m_free_range(0, 20, 3) + m_vcpu(-1) + m_burst(50, 8, 200)
    s["full_slab_cycle"] = m_burst(0, 32, 256) + m_burst(32, 32, 256) + m_burst(64, 32, 256) + m_burst(96, 32, 256) + m_free_range(0, 64, 1) + \
        m_vcpu(2, flush=True) + m_free_range(64, 64, 2) + m_burst(0, 32, 256)
    return s


# ---- fuzz_cache -------------------------------------------------------------------------------
# size: range byte + 16-bit value; see decode_obj_size.
def csize(n):
    if n <= 256:
        return bytes([0x00]) + u16(n - 1)
    if n <= 4096:
        return bytes([0x80]) + u16(n - 1)
    if n <= 32768:
        return bytes([0xA0]) + u16(n - 1)
    return bytes([0xC0]) + u16((n - 1) // 16)


def calign(a):  # 0, or 2^(b % 13) for b in 64..0xF7
    if a == 0:
        return bytes([0])
    k = a.bit_length() - 1
    if k <= 12:
        b = 64 + ((k - 64) % 13)
        return bytes([b])
    return bytes([0xF8 + (k - 13)])


F_HW, F_RED, F_POISON, F_CHECKS, F_USER, F_NOMERGE, F_RECLAIM, F_ACCOUNT = (1 << i for i in range(8))
X_CTOR, X_RCU, X_DMA32, X_INVALID = 0x01, 0x0E, 0x10, 0xC0


def c_create(c, n, align=0, flags=0, extra=0):
    return bytes([0, c]) + csize(n) + calign(align) + bytes([flags, extra])


def c_alloc(c, slot, zero=False):
    return bytes([2 if zero else 1, c, slot])


def c_free(slot):
    return bytes([3, slot])


def c_remote_free(slot):
    return bytes([4, slot])


def c_burst(c, first, count):
    return bytes([5, c, first, count - 1])


def c_free_range(first, count, mode):
    return bytes([6, first, count - 1, mode])


def c_shrink(c):
    return bytes([7, c])


def c_validate(c):
    return bytes([8, c])


def c_destroy(c):
    return bytes([9, c])


def c_info(c):
    return bytes([10, c])


def c_vcpu(v, flush=False):
    return bytes([11, VCPU[v] | (8 if flush else 0)])


def c_touch(slot):
    return bytes([12, slot])


def c_remote_alloc(c, slot, zero=False):
    return bytes([13, c, slot, 1 if zero else 0])


def c_destroy_busy(c):
    return bytes([14, c])


def c_malloc(slot, n):
    return bytes([15, slot]) + u16(n)


def cache_seeds():
    s = {}
    s["basic"] = c_create(0, 64) + c_burst(0, 0, 40) + c_info(0) + c_free_range(0, 40, 0) + \
        c_shrink(0) + c_destroy(0)
    s["sizes_aligns"] = b"".join(
        c_create(i, n, a, f) + c_burst(i, 20 * i, 20)
        for i, (n, a, f) in enumerate([(1, 0, 0), (24, 0, F_HW), (100, 64, 0), (700, 256, F_NOMERGE),
                                       (4096, 4096, 0), (5000, 0, F_HW), (40000, 0, 0), (200000, 0, 0)])
    ) + b"".join(c_info(i) + c_validate(i) for i in range(8))
    s["debug_caches"] = c_create(0, 48, 0, F_RED | F_POISON | F_CHECKS) + \
        c_create(1, 200, 64, F_RED | F_CHECKS | F_USER) + c_create(2, 13, 0, F_POISON) + \
        c_burst(0, 0, 30) + c_burst(1, 30, 30) + c_burst(2, 60, 30) + c_validate(0) + \
        c_free_range(0, 90, 3) + c_validate(1) + c_validate(2) + c_shrink(0)
    s["ctor"] = c_create(3, 72, 0, 0, X_CTOR) + c_burst(3, 0, 50) + c_free_range(0, 50, 3) + \
        c_burst(3, 0, 50) + c_create(4, 300, 0, F_RED | F_POISON | F_CHECKS, X_CTOR) + \
        c_burst(4, 100, 20) + c_free_range(100, 20, 2) + c_alloc(4, 120, zero=True) + c_validate(4)
    s["merge"] = c_create(0, 64) + c_create(1, 60) + c_create(2, 64, 0, F_HW) + c_burst(0, 0, 10) + \
        c_burst(1, 10, 10) + c_burst(2, 20, 10) + c_info(1) + c_destroy(0) + c_info(1) + \
        c_create(0, 56) + c_burst(0, 30, 10)
    s["remote_and_vcpus"] = c_create(0, 128) + c_vcpu(0) + c_burst(0, 0, 60) + c_vcpu(2) + \
        c_free_range(0, 30, 0) + c_free_range(30, 30, 2) + c_vcpu(1, flush=True) + \
        c_burst(0, 0, 60) + c_vcpu(4095) + c_free_range(0, 60, 3) + c_remote_alloc(0, 5) + \
        c_remote_alloc(0, 6, zero=True) + c_vcpu(-1) + c_info(0)
    s["destroy_busy"] = c_create(5, 96, 0, F_NOMERGE) + c_burst(5, 0, 5) + c_destroy_busy(5) + \
        c_alloc(5, 9) + c_destroy(5)
    s["rcu"] = c_create(6, 256, 0, 0, X_RCU) + c_burst(6, 0, 40) + c_free_range(0, 40, 3) + \
        c_burst(6, 0, 10) + c_destroy(6)
    s["invalid_create"] = c_create(0, 64, 0, 0, X_INVALID) + c_create(1, 64, 0, 0, X_INVALID | 0x10) + \
        c_create(2, 64, 16, 0, X_INVALID | 0x20) + c_create(3, 64, 0, 0, X_INVALID | 0x30)
    s["with_malloc"] = c_create(0, 32) + c_malloc(0, 32) + c_burst(0, 1, 30) + c_malloc(40, 3000) + \
        c_malloc(41, 0x8000 | 100) + c_free_range(0, 42, 1) + c_shrink(0)
    s["big_objects"] = c_create(0, 1 << 20) + c_create(1, 300000, 0, F_RED | F_CHECKS) + \
        c_create(2, 9000, 1 << 14) + c_burst(0, 0, 3) + c_burst(1, 3, 3) + c_burst(2, 6, 8) + \
        c_validate(1) + c_shrink(0) + c_info(2)
    return s


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    m = malloc_seeds()
    write("fuzz_malloc", m)
    write("fuzz_malloc_debug", m)
    write("fuzz_cache", cache_seeds())


if __name__ == "__main__":
    main()
