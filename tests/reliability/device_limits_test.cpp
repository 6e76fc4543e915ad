// Device limits and faults as a user meets them: a session the device's free
// memory cannot hold is refused before anything is allocated, with the
// numbers; a fault while a command list runs is reported under the path step
// that was running (or the range of steps in flight, when the backend cannot
// tell which). The device is the CPU backend behind a wrapper that reports a
// chosen amount of free memory and fails a chosen submit.
#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "../support/path_runs.h"
#include "backend/cpu/cpu_backend.h"

namespace kp::test {
namespace {

using testing::HasSubstr;

class FaultyBackend final : public backend::Backend {
 public:
  // `buffers_created` (optional) counts create_buffer calls and outlives the backend.
  explicit FaultyBackend(uint64_t free_bytes, int* buffers_created = nullptr)
      : inner_(backend::make_cpu_backend()), free_(free_bytes), buffers_created_(buffers_created) {}

  // The next submit fails; `dispatch` is what failed_dispatch() then reports.
  void fail_next_submit(std::optional<size_t> dispatch) {
    fail_next_ = true;
    fault_dispatch_ = dispatch;
  }
  const backend::DeviceInfo& info() const override { return inner_->info(); }
  Result<backend::BufferId> create_buffer(uint64_t bytes, backend::BufferUsage usage,
                                          const std::string& name) override {
    if (buffers_created_ != nullptr) ++*buffers_created_;
    return inner_->create_buffer(bytes, usage, name);
  }
  void destroy_buffer(backend::BufferId id) override { inner_->destroy_buffer(id); }
  Status write_buffer(backend::BufferId id, uint64_t offset, const void* data, uint64_t bytes) override {
    return inner_->write_buffer(id, offset, data, bytes);
  }
  Status read_buffer(backend::BufferId id, uint64_t offset, void* data, uint64_t bytes) override {
    return inner_->read_buffer(id, offset, data, bytes);
  }
  Result<backend::PipelineId> create_pipeline(const backend::PipelineDesc& desc) override {
    return inner_->create_pipeline(desc);
  }
  Result<backend::CommandListId> record(std::span<const backend::DispatchDesc> dispatches) override {
    return inner_->record(dispatches);
  }
  void destroy_command_list(backend::CommandListId id) override { inner_->destroy_command_list(id); }
  Status submit(backend::CommandListId id, const KpParams& params, bool timestamps) override {
    failed_.reset();
    if (fail_next_) {
      fail_next_ = false;
      failed_ = fault_dispatch_;
      return make_error("test device: illegal address while running command list {}", id);
    }
    return inner_->submit(id, params, timestamps);
  }
  std::vector<double> last_timings() const override { return inner_->last_timings(); }
  uint64_t peak_memory() const override { return inner_->peak_memory(); }
  uint64_t free_memory() const override { return free_; }
  std::optional<size_t> failed_dispatch() const override { return failed_; }

 private:
  std::unique_ptr<backend::Backend> inner_;
  uint64_t free_ = 0;
  int* buffers_created_ = nullptr;
  bool fail_next_ = false;
  std::optional<size_t> fault_dispatch_;
  std::optional<size_t> failed_;
};

struct Opened {
  std::unique_ptr<runtime::Session> session;
  FaultyBackend* device = nullptr;
};

Result<Opened> open_on(const format::GgufFile& model, uint64_t free_bytes, const std::string& path,
                       uint32_t ctx = 512) {
  auto owned = std::make_unique<FaultyBackend>(free_bytes);
  FaultyBackend* device = owned.get();
  runtime::SessionOptions o;
  o.kernel_path = path;
  o.ctx = ctx;
  o.max_batch = 64;
  KP_TRY(auto session, runtime::Session::open(model, o, runtime::OpenedBackend{std::move(owned), "test"}));
  return Opened{std::move(session), device};
}

TEST(DeviceMemory, ASessionLargerThanTheFreeMemoryIsRefusedBeforeAnyAllocation) {
  auto model = format::GgufFile::open(model_file("kjv-tiny-q4_k_m.gguf"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  // The dequant-f32 path stores the weights as f32: far more than 1 MiB.
  int buffers = 0;
  auto owned = std::make_unique<FaultyBackend>(1u << 20, &buffers);
  runtime::SessionOptions o;
  o.kernel_path = "gemma2-q4k-dequant-f32";
  o.ctx = 512;
  auto session = runtime::Session::open(*model, o, runtime::OpenedBackend{std::move(owned), "test"});
  ASSERT_FALSE(session.ok());
  const std::string& m = session.error().message;
  EXPECT_THAT(m, HasSubstr("the session needs"));
  EXPECT_THAT(m, HasSubstr("as the path 'gemma2-q4k-dequant-f32' stores them"));
  EXPECT_THAT(m, HasSubstr("for a context of 512"));
  EXPECT_THAT(m, HasSubstr("but only 0.00 GiB of host memory is available"));
  EXPECT_THAT(m, HasSubstr("--ctx-size"));
  EXPECT_EQ(buffers, 0) << "buffers were created before the refusal";
}

TEST(DeviceMemory, TheRefusalComesExactlyAtWhatTheSessionAllocates) {
  auto model = format::GgufFile::open(model_file("kjv-tiny-q4_k_m.gguf"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  // What the fused path needs on this model, measured: the refusal must come
  // exactly at the boundary, from the executor's own accounting.
  auto fits = open_on(*model, 1ull << 40, "gemma2-q4k-fused");
  ASSERT_TRUE(fits.ok()) << fits.error().message;
  const uint64_t need = fits->session->backend().peak_memory();
  auto exact = open_on(*model, need, "gemma2-q4k-fused");
  EXPECT_TRUE(exact.ok()) << exact.error().message;
  auto short_by_one = open_on(*model, need - 1, "gemma2-q4k-fused");
  ASSERT_FALSE(short_by_one.ok());
  EXPECT_THAT(short_by_one.error().message, HasSubstr("the session needs"));
  // Unknown free memory (0) never refuses.
  auto unknown = open_on(*model, 0, "gemma2-q4k-fused");
  EXPECT_TRUE(unknown.ok()) << unknown.error().message;
}

TEST(DeviceFault, NamesThePathStepTheBackendTracedItTo) {
  auto model = format::GgufFile::open(model_file("kjv-tiny-q4_k_m.gguf"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto opened = open_on(*model, 0, "gemma2-q4k-fused");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  runtime::Executor& ex = opened->session->executor();
  const std::vector<const kpath::PlannedStep*> steps = ex.forward_steps(3);
  ASSERT_GT(steps.size(), 20u);
  const kpath::PlannedStep& bad = *steps[20];

  opened->device->fail_next_submit(20);
  Status st = ex.forward(std::vector<int32_t>{2, 651, 2080});
  ASSERT_FALSE(st.ok());
  const std::string& m = st.error().message;
  EXPECT_THAT(m, HasSubstr("step " + bad.location + " (op " + bad.op + ", kernel " + bad.kernel->id));
  EXPECT_THAT(m, HasSubstr("failed on the device"));
  EXPECT_THAT(m, HasSubstr("illegal address"));
  EXPECT_THAT(m, HasSubstr("gemma2-q4k-fused"));
}

TEST(DeviceFault, WithoutTheDispatchNamesTheStepsInFlight) {
  auto model = format::GgufFile::open(model_file("kjv-tiny-q4_k_m.gguf"));
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto opened = open_on(*model, 0, "gemma2-q4k-fused");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  runtime::Executor& ex = opened->session->executor();
  ASSERT_TRUE(ex.forward(std::vector<int32_t>{2, 651}).ok());

  opened->device->fail_next_submit(std::nullopt);
  auto token = ex.decode_and_sample(2080, runtime::SamplingInput{});
  ASSERT_FALSE(token.ok());
  const std::string& m = token.error().message;
  std::vector<const kpath::PlannedStep*> steps = ex.forward_steps(1);
  for (const auto* s : ex.sampling_steps()) steps.push_back(s);
  EXPECT_THAT(m, HasSubstr(fmt::format("a device error while running {} steps", steps.size())));
  EXPECT_THAT(m, HasSubstr(steps.front()->location));
  EXPECT_THAT(m, HasSubstr(steps.back()->location));
  EXPECT_THAT(m, HasSubstr("illegal address"));
}

}  // namespace
}  // namespace kp::test
