// SPDX-License-Identifier: MIT
// Access to a program's statistics area, /dev/shm/slub.<pid> (include/slub/stats.h): mapping,
// consistent copies under the seqlock, the command protocol, and the list of areas.
#ifndef SLABINFO_AREA_H
#define SLABINFO_AREA_H

#include <slub/stats.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace slabinfo {

// Where areas live; SLABINFO_SHM_DIR overrides it (tests).
std::string shm_dir();
std::string area_path(pid_t pid);

// A consistent copy of an area.
struct Snapshot {
  slub_shm_header hdr{};
  std::vector<slub_shm_cache> caches;
  double age_s = 0;  // seconds since the program wrote it (CLOCK_MONOTONIC); <0: never
};

// Fixed-size C strings of the area, which the writer may not have terminated.
std::string field_str(const char* s, size_t cap);
template <size_t N>
std::string field_str(const char (&s)[N]) {
  return field_str(s, N);
}

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 if unreadable.
uint64_t proc_start_time(pid_t pid);
bool pid_alive(pid_t pid);
// The uid a live process runs as (the owner of /proc/<pid>); false if it is gone.
bool process_uid(pid_t pid, uid_t& uid);
// Why the file `st` cannot be the statistics area of `pid` (not a regular file, or owned by
// another user than the process runs as), or "" when it can be.
std::string owner_problem(const struct stat& st, pid_t pid);

// A program makes its area when it is this many seconds old (slub/export.cc).
inline constexpr double kAreaDelayS = 1.0;

class Area {
 public:
  Area() = default;
  ~Area();
  Area(const Area&) = delete;
  Area& operator=(const Area&) = delete;

  // Maps the area of `pid`; with `writable` it is opened read-write (commands) if it is ours,
  // else read-only. Only an area owned by the user the process runs as is read. Waits up to
  // a few seconds for a young process (areas are made when a program is a second old). False
  // with `error` set when there is no usable area.
  bool open(pid_t pid, bool writable, std::string& error);
  bool writable() const { return writable_; }
  pid_t pid() const { return pid_; }

  // A consistent copy (retries while the program writes; gives up after `timeout_s`).
  bool snapshot(Snapshot& out, std::string& error, double timeout_s = 2.0) const;

  // Sends a command and waits up to `timeout_s` for the answer. Returns false when the
  // program did not answer in time (or has exited), with `error` set.
  bool command(uint32_t cmd, const std::string& arg, double timeout_s, int32_t& result,
               std::string& error);
  // The text answer of the last command (alloc_calls, free_calls): `len` bytes of the reply
  // region, mapped anew when the program grew the file past this mapping to give it pages.
  bool reply(int32_t len, std::string& out, std::string& error);

 private:
  int fd_ = -1;
  void* map_ = nullptr;
  size_t size_ = 0;
  size_t max_caches_ = 0;  // cache records that fit in the mapping
  bool writable_ = false;
  pid_t pid_ = 0;
  slub_shm* shm() const { return static_cast<slub_shm*>(map_); }
  enum Attempt { kOpened, kRetry, kFailed };
  Attempt try_open(bool writable, std::string& error);
  void close_area();
};

// One file of the area directory, as found by scan_areas().
struct AreaInfo {
  pid_t pid = 0;
  std::string path;
  bool valid = false;  // magic and version right
  bool stale = false;  // the process is gone, or its pid now belongs to another process
  std::string stale_reason;
  uid_t uid = 0;      // the file's owner
  std::string error;  // could not be read (permissions, not initialised yet, ...)
  std::string exe;
  uint32_t nr_caches = 0;
  double age_s = -1;
};

// Lists the areas in shm_dir(), sorted by pid.
std::vector<AreaInfo> scan_areas();

double monotonic_now_s();

}  // namespace slabinfo

#endif  // SLABINFO_AREA_H
