// SPDX-License-Identifier: MIT
// Helpers for the slabinfo tests: run a command with a time limit and capture its output,
// start a program in the background, wait for conditions with a deadline.
#ifndef SLABINFO_TESTS_RUN_UTIL_H
#define SLABINFO_TESTS_RUN_UTIL_H

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace slabinfo_test {

inline double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Polls `cond` every 20 ms until it holds or `timeout_s` passes.
inline bool wait_until(const std::function<bool()>& cond, double timeout_s) {
  const double deadline = now_s() + timeout_s;
  for (;;) {
    if (cond()) return true;
    if (now_s() > deadline) return false;
    usleep(20000);
  }
}

inline bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RunResult {
  int rc = -1;  // exit status; -1 if killed by a signal or timed out
  bool timed_out = false;
  std::string out, err;
  double seconds = 0;
};

// Child side of a fork: environment changes (empty value: unset), then exec.
[[noreturn]] inline void exec_child(const std::vector<std::string>& argv,
                                    const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (v.empty())
      unsetenv(k.c_str());
    else
      setenv(k.c_str(), v.c_str(), 1);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
  _exit(127);
}

// Runs argv[0] (a path) with its arguments; kills it after timeout_s.
inline RunResult run(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env = {}, double timeout_s = 15) {
  RunResult r;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return r;
  const double start = now_s();
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    exec_child(argv, env);
  }
  close(out[1]);
  close(err[1]);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    const double left = start + timeout_s - now_s();
    if (left <= 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left * 1000) + 1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  r.rc = WIFEXITED(status) && !r.timed_out ? WEXITSTATUS(status) : -1;
  r.seconds = now_s() - start;
  return r;
}

// A background program whose stdout is read line by line.
class Background {
 public:
  bool start(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      exec_child(argv, env);
    }
    close(out[1]);
    fd_ = out[0];
    return pid_ > 0;
  }
  // Waits for a line equal to `want`; false on EOF or timeout.
  bool wait_line(const std::string& want, double timeout_s) {
    const double deadline = now_s() + timeout_s;
    for (;;) {
      for (size_t nl; (nl = buf_.find('\n')) != std::string::npos;) {
        const std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line == want) return true;
      }
      const double left = deadline - now_s();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
      char b[4096];
      const ssize_t n = read(fd_, b, sizeof b);
      if (n <= 0) return false;
      buf_.append(b, static_cast<size_t>(n));
    }
  }
  // Sends `sig` and waits up to timeout_s; returns the wait status, or -1 on timeout.
  int stop(int sig, double timeout_s) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    const bool done =
        wait_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout_s);
    if (!done) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    pid_ = -1;
    return status;
  }
  pid_t pid() const { return pid_; }
  ~Background() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
};

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

}  // namespace slabinfo_test

#endif  // SLABINFO_TESTS_RUN_UTIL_H
