// A small fixed pool of worker threads for the CPU kernels: run(n, fn) calls
// fn(i) for every i < n on the workers and the calling thread and returns when
// all calls are done. One run at a time (the backend submits serially).
// Between runs the workers, and the caller waiting for them, spin for about
// 50 microseconds before they sleep: a decode step is hundreds of dispatches
// a few microseconds apart, and a sleep/wake pair costs as much as a small one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kp::backend::cpu {

class ThreadPool {
 public:
  // n_threads counts the calling thread: n_threads - 1 workers are started.
  explicit ThreadPool(unsigned n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned threads() const { return static_cast<unsigned>(workers_.size()) + 1; }

  void run(int64_t n_tasks, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` items (about four
  // per thread) and calls fn(begin, end) for each.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop();
  void drain(const std::function<void(int64_t)>& fn, int64_t n_tasks);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t)>* job_ = nullptr;  // valid while a run is in flight
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  // Written under mu_, read by the spinning threads without it.
  std::atomic<uint64_t> generation_{0};    // incremented by each run
  std::atomic<size_t> pending_workers_{0}; // workers that have not finished this generation
  std::atomic<bool> stop_{false};
};

}  // namespace kp::backend::cpu
