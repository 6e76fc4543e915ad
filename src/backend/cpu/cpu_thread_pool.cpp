#include "backend/cpu/cpu_thread_pool.h"

#include <algorithm>
#include <chrono>

namespace kp::backend::cpu {
namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() or about 50 microseconds have passed; true if done().
template <typename Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() > until) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(unsigned n_threads) {
  const unsigned n = std::max(1u, n_threads);
  for (unsigned i = 1; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::drain(const std::function<void(int64_t)>& fn, int64_t n_tasks) {
  for (int64_t i = next_task_.fetch_add(1); i < n_tasks; i = next_task_.fetch_add(1)) fn(i);
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t)>* job = nullptr;
    int64_t n_tasks = 0;
    spin_until([&] { return stop_.load() || generation_.load() != seen; });
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n_tasks = n_tasks_;
    }
    drain(*job, n_tasks);
    {
      // run() waits for every worker to check in, so no worker can still hold
      // this generation's job when the next run starts.
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_workers_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (int64_t i = 0; i < n_tasks; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    n_tasks_ = n_tasks;
    next_task_.store(0);
    pending_workers_ = workers_.size();
    ++generation_;
  }
  wake_.notify_all();
  drain(fn, n_tasks);
  spin_until([&] { return pending_workers_.load() == 0; });
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return pending_workers_ == 0; });
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int64_t per_thread_chunks = 4;
  const int64_t chunk = std::max<int64_t>(std::max<int64_t>(grain, 1),
                                          (n + threads() * per_thread_chunks - 1) / (threads() * per_thread_chunks));
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  run(n_chunks, [&](int64_t c) { fn(c * chunk, std::min(n, (c + 1) * chunk)); });
}

}  // namespace kp::backend::cpu
