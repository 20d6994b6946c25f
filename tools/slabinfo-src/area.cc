// SPDX-License-Identifier: MIT
#include "area.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace slabinfo {

static_assert(sizeof(slub_shm_header) <= 4096, "header must fit its page");
static_assert(offsetof(slub_shm, caches) == 4096, "cache records start on the second page");

namespace {

template <typename T>
T load(const T& field, std::memory_order mo = std::memory_order_acquire) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(mo);
}

long futex(uint32_t* addr, int op, uint32_t val, const timespec* ts) {
  // Shared (not FUTEX_PRIVATE_FLAG): the word is in a mapping of another process.
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}

std::string errno_str(int e) {
  return std::strerror(e);
}

}  // namespace

double monotonic_now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string shm_dir() {
  const char* d = std::getenv("SLABINFO_SHM_DIR");
  return d != nullptr && *d != '\0' ? std::string(d) : std::string("/dev/shm");
}

std::string area_path(pid_t pid) {
  return shm_dir() + "/slub." + std::to_string(pid);
}

std::string field_str(const char* s, size_t cap) {
  return std::string(s, strnlen(s, cap));
}

uint64_t proc_start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields restart after
  // the last ')'. Field 3 (state) is the first token there, so field 22 is the 20th.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(line.substr(close + 1));
  std::string tok;
  for (int field = 3; fields >> tok; field++)
    if (field == 22) return std::strtoull(tok.c_str(), nullptr, 10);
  return 0;
}

bool pid_alive(pid_t pid) {
  if (pid <= 0) return false;
  return kill(pid, 0) == 0 || errno == EPERM;
}

bool process_uid(pid_t pid, uid_t& uid) {
  struct stat st;
  if (stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0) return false;
  uid = st.st_uid;  // the process's effective uid (for the dumpable processes that export)
  return true;
}

std::string owner_problem(const struct stat& st, pid_t pid) {
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  uid_t uid;
  if (process_uid(pid, uid) && uid != st.st_uid)
    return "owned by uid " + std::to_string(st.st_uid) + ", but process " + std::to_string(pid) +
           " runs as uid " + std::to_string(uid) + ": not its area (planted by another user?)";
  return "";
}

namespace {
// Seconds since `pid` started (from /proc/uptime and its start time), or -1.
double process_age_s(pid_t pid) {
  const uint64_t start = proc_start_time(pid);
  std::ifstream in("/proc/uptime");
  double up = 0;
  if (start == 0 || !(in >> up)) return -1;
  return up - static_cast<double>(start) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Whether `pid` has libslub.so mapped (it runs with the allocator, preloaded or linked).
bool maps_libslub(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line))
    if (line.find("/libslub.so") != std::string::npos) return true;
  return false;
}
}  // namespace

Area::~Area() {
  close_area();
}

void Area::close_area() {
  if (map_ != nullptr) munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
  map_ = nullptr;
  fd_ = -1;
  size_ = 0;
  writable_ = false;
}

// One attempt: kOpened, kRetry (not there yet, or not filled yet: the program makes its area
// when it is a second old, and may be replacing a stale one of ours at its pid), or kFailed.
Area::Attempt Area::try_open(bool writable, std::string& error) {
  close_area();
  const std::string path = area_path(pid_);
  fd_ = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd_ < 0) {
    const int e = errno;
    if (e != ENOENT) {
      error = path + ": " + errno_str(e);
      return kFailed;
    }
    error = pid_alive(pid_) ? "process " + std::to_string(pid_) + " has no statistics area (" +
                                  path + "): is it running with libslub.so preloaded?"
                            : "no such process: " + std::to_string(pid_);
    // Young and running with slub: its area is still to come.
    const double age = process_age_s(pid_);
    return age >= 0 && age < kAreaDelayS + 1.5 && maps_libslub(pid_) ? kRetry : kFailed;
  }
  // The owner first: an area is read only if it belongs to the user the process runs as, and
  // written (commands) only if it is also ours.
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    error = path + ": " + errno_str(errno);
    return kFailed;
  }
  if (const std::string why = owner_problem(st, pid_); !why.empty()) {
    error = path + ": " + why + "; not read";
    return kFailed;
  }
  if (writable && st.st_uid == geteuid()) {
    const int rw = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    struct stat st2;
    if (rw >= 0 && fstat(rw, &st2) == 0 && st2.st_ino == st.st_ino && st2.st_dev == st.st_dev) {
      ::close(fd_);
      fd_ = rw;
      writable_ = true;
    } else if (rw >= 0) {
      ::close(rw);
    }
  }
  if (static_cast<size_t>(st.st_size) < sizeof(slub_shm_header)) {
    error = path + ": too small for a statistics area (" + std::to_string(st.st_size) + " bytes)";
    return kRetry;
  }
  size_ = static_cast<size_t>(st.st_size);
  map_ = mmap(nullptr, size_, PROT_READ | (writable_ ? PROT_WRITE : 0), MAP_SHARED, fd_, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    error = path + ": mmap: " + errno_str(errno);
    return kFailed;
  }
  max_caches_ = size_ <= offsetof(slub_shm, caches)
                    ? 0
                    : std::min<size_t>(SLUB_SHM_MAX_CACHES, (size_ - offsetof(slub_shm, caches)) /
                                                                sizeof(slub_shm_cache));
  const uint64_t magic = load(shm()->hdr.magic);
  if (magic == 0) {
    error = path + ": the area was never initialised";
    return kRetry;
  }
  if (magic != SLUB_SHM_MAGIC) {
    error = path + ": not a slub statistics area (bad magic)";
    return kFailed;
  }
  const uint32_t version = load(shm()->hdr.version);
  if (version != SLUB_SHM_VERSION) {
    error = path + ": statistics area version " + std::to_string(version) +
            ", this slabinfo reads version " + std::to_string(SLUB_SHM_VERSION);
    return kFailed;
  }
  return kOpened;
}

bool Area::open(pid_t pid, bool writable, std::string& error) {
  pid_ = pid;
  const double deadline = monotonic_now_s() + 2.0 + kAreaDelayS;
  for (;;) {
    const Attempt a = try_open(writable, error);
    if (a == kOpened) return true;
    if (a == kFailed || monotonic_now_s() > deadline || !pid_alive(pid)) {
      close_area();
      return false;
    }
    usleep(50000);
  }
}

bool Area::snapshot(Snapshot& out, std::string& error, double timeout_s) const {
  const double deadline = monotonic_now_s() + timeout_s;
  const slub_shm* s = shm();
  for (unsigned attempt = 0;; attempt++) {
    const uint64_t before = load(s->hdr.seq);
    if ((before & 1) == 0) {
      std::memcpy(&out.hdr, &s->hdr, sizeof out.hdr);
      const size_t n = std::min<size_t>(out.hdr.nr_caches, max_caches_);
      out.caches.resize(n);
      if (n != 0) std::memcpy(out.caches.data(), s->caches, n * sizeof(slub_shm_cache));
      std::atomic_thread_fence(std::memory_order_acquire);
      if (load(s->hdr.seq, std::memory_order_relaxed) == before) {
        out.hdr.nr_caches = static_cast<uint32_t>(n);
        out.age_s = out.hdr.updated_ns == 0
                        ? -1
                        : monotonic_now_s() - static_cast<double>(out.hdr.updated_ns) * 1e-9;
        return true;
      }
    }
    if (monotonic_now_s() > deadline) {
      error = "the snapshot kept changing for " + std::to_string(timeout_s) + " s (seq " +
              std::to_string(before) + ")";
      return false;
    }
    if (attempt > 16) usleep(1000);
  }
}

bool Area::command(uint32_t cmd, const std::string& arg, double timeout_s, int32_t& result,
                   std::string& error) {
  if (!writable_) {
    error = "the area is not this user's (or read-only): commands cannot be sent";
    return false;
  }
  slub_shm_header& h = shm()->hdr;
  std::memset(h.cmd_arg, 0, sizeof h.cmd_arg);
  std::memcpy(h.cmd_arg, arg.data(), std::min(arg.size(), sizeof h.cmd_arg - 1));
  std::atomic_ref<uint32_t>(h.cmd).store(cmd, std::memory_order_release);
  const uint32_t mine = std::atomic_ref<uint32_t>(h.cmd_seq).fetch_add(1) + 1;
  futex(&h.cmd_seq, FUTEX_WAKE, INT_MAX, nullptr);
  const double deadline = monotonic_now_s() + timeout_s;
  for (;;) {
    const uint32_t done = load(h.done_seq);
    if (static_cast<int32_t>(done - mine) >= 0) {
      result = load(h.result);
      return true;
    }
    const double left = deadline - monotonic_now_s();
    if (left <= 0) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "process %d did not answer within %.1f s",
                    static_cast<int>(pid_), timeout_s);
      error = buf;
      return false;
    }
    if (!pid_alive(pid_)) {
      error = "process " + std::to_string(pid_) + " has exited";
      return false;
    }
    // Wake up at least every 100 ms to check that the process still lives.
    const double step = std::min(left, 0.1);
    timespec ts{static_cast<time_t>(step),
                static_cast<long>((step - static_cast<time_t>(step)) * 1e9)};
    futex(&h.done_seq, FUTEX_WAIT, done, &ts);
  }
}

bool Area::reply(int32_t len, std::string& out, std::string& error) {
  constexpr size_t kOff = offsetof(slub_shm, reply);
  if (len < 0 || len > SLUB_SHM_REPLY_BYTES) {
    error = "the program's reply has an impossible length (" + std::to_string(len) + ")";
    return false;
  }
  const size_t need = kOff + static_cast<size_t>(len);
  if (need > size_) {
    struct stat st;
    if (fstat(fd_, &st) != 0 || static_cast<size_t>(st.st_size) < need) {
      error = "the program's reply is not in its area (the file is too short)";
      return false;
    }
    const size_t size = static_cast<size_t>(st.st_size);
    void* m = mmap(nullptr, size, PROT_READ | (writable_ ? PROT_WRITE : 0), MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) {
      error = "mmap: " + errno_str(errno);
      return false;
    }
    munmap(map_, size_);
    map_ = m;
    size_ = size;
    max_caches_ = std::min<size_t>(SLUB_SHM_MAX_CACHES,
                                   (size_ - offsetof(slub_shm, caches)) / sizeof(slub_shm_cache));
  }
  std::atomic_thread_fence(std::memory_order_acquire);  // after done_seq (command)
  out.assign(shm()->reply, static_cast<size_t>(len));
  return true;
}

std::vector<AreaInfo> scan_areas() {
  std::vector<AreaInfo> out;
  const std::string dir = shm_dir();
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* de = readdir(d)) {
    const char* n = de->d_name;
    if (std::strncmp(n, "slub.", 5) != 0 || n[5] == '\0') continue;
    char* end = nullptr;
    errno = 0;
    const long pid = std::strtol(n + 5, &end, 10);
    if (*end != '\0' || errno != 0 || pid <= 0 || pid > INT_MAX) continue;
    AreaInfo a;
    a.pid = static_cast<pid_t>(pid);
    a.path = dir + "/" + n;
    out.push_back(a);
  }
  closedir(d);
  std::sort(out.begin(), out.end(),
            [](const AreaInfo& x, const AreaInfo& y) { return x.pid < y.pid; });

  for (AreaInfo& a : out) {
    if (!pid_alive(a.pid)) {
      a.stale = true;
      a.stale_reason = "process " + std::to_string(a.pid) + " no longer exists";
    }
    const int fd = ::open(a.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      a.error = errno_str(errno);
      continue;
    }
    struct stat st;
    slub_shm_header hdr{};
    bool have_header = false;
    if (fstat(fd, &st) != 0) {
      a.error = errno_str(errno);
      close(fd);
      continue;
    }
    a.uid = st.st_uid;
    if (const std::string why = owner_problem(st, a.pid); !why.empty()) {
      a.error = why;  // not read
      close(fd);
      continue;
    }
    if (static_cast<size_t>(st.st_size) >= sizeof hdr) {
      void* m = mmap(nullptr, sizeof hdr, PROT_READ, MAP_SHARED, fd, 0);
      if (m != MAP_FAILED) {
        // Header fields only: no need for the seqlock, each is read once.
        std::memcpy(&hdr, m, sizeof hdr);
        munmap(m, sizeof hdr);
        have_header = true;
      }
    }
    close(fd);
    if (!have_header || hdr.magic == 0) {
      a.error = "not initialised";
      continue;
    }
    if (hdr.magic != SLUB_SHM_MAGIC) {
      a.error = "not a slub statistics area";
      continue;
    }
    if (hdr.version != SLUB_SHM_VERSION) {
      a.error = "area version " + std::to_string(hdr.version);
      continue;
    }
    a.valid = true;
    a.exe = field_str(hdr.exe);
    a.nr_caches = hdr.nr_caches;
    if (hdr.updated_ns != 0)
      a.age_s = monotonic_now_s() - static_cast<double>(hdr.updated_ns) * 1e-9;
    if (!a.stale && hdr.start_time != 0) {
      const uint64_t now_start = proc_start_time(a.pid);
      if (now_start != 0 && now_start != hdr.start_time) {
        a.stale = true;
        a.stale_reason =
            "pid " + std::to_string(a.pid) + " now belongs to another process (start time " +
            std::to_string(now_start) + ", area's " + std::to_string(hdr.start_time) + ")";
      }
    }
  }
  return out;
}

}  // namespace slabinfo
