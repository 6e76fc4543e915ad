// The CUDA backend's own mechanics: device discovery (a clear error without a
// driver), buffers, graph replay reading fresh KpParams, timestamps, binding
// checks at record time, and the on-disk cubin cache. Kernel numerics are
// cuda_ops_test.cpp's.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "kernel_path/constants.h"
#include "kernel_path/registry.h"

namespace kp::backend {
namespace {

namespace fs = std::filesystem;

TEST(CudaDevices, ListOrExplainWhyNot) {
  auto devices = list_cuda_devices();
  if (!devices.ok()) {
    // No driver or no device: the reason is spelled out, and opening fails the same way.
    EXPECT_NE(devices.error().message.find("CUDA"), std::string::npos) << devices.error().message;
    auto backend = make_cuda_backend(0);
    ASSERT_FALSE(backend.ok());
    EXPECT_FALSE(backend.error().message.empty());
    return;
  }
  ASSERT_FALSE(devices->empty());
  for (const DeviceInfo& d : *devices) {
    EXPECT_EQ(d.backend, "cuda");
    EXPECT_FALSE(d.name.empty());
    EXPECT_EQ(d.arch.rfind("sm_", 0), 0u) << d.arch;
    EXPECT_GT(d.memory_bytes, uint64_t{1} << 30);
    EXPECT_TRUE(d.features.count("f16"));
  }
  auto missing = cuda_device_info(static_cast<int>(devices->size()));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos) << missing.error().message;
}

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = fs::temp_directory_path() / fmt::format("kp_cuda_cache_{}", ::testing::UnitTest::GetInstance()->random_seed());
    fs::remove_all(cache_);
    CudaOptions options;
    options.cache_dir = cache_.string();
    auto be = make_cuda_backend(0, options);
    if (!be.ok()) GTEST_SKIP() << "no CUDA device: " << be.error().message;
    backend_ = std::move(*be);
    auto reg = kpath::Registry::load_builtin(std::string(KP_SOURCE_DIR) + "/kernels");
    ASSERT_TRUE(reg.ok()) << reg.error().message;
    registry_ = std::make_unique<kpath::Registry>(std::move(*reg));
  }
  void TearDown() override {
    backend_.reset();
    fs::remove_all(cache_);
  }

  // rmsnorm.last_row over rows of kCols values.
  Result<PipelineId> last_row_pipeline(Backend& be) {
    const kpath::KernelDesc* k = registry_->find("rmsnorm");
    kpath::SymbolTable table;
    kpath::ModelValues mv;
    mv.rms_eps = 1e-6f;
    mv.add_to(table);
    table["N"] = kpath::ExprValue{kCols, true};
    const kpath::KernelImpl& impl = k->impls.at("cuda");
    KP_TRY(kpath::ConstantValues constants, kpath::resolve_constants(*k, &impl, {}, table, "test"));
    return be.create_pipeline(PipelineDesc{k, &impl, "last_row", constants});
  }

  static constexpr int kCols = 256;
  static constexpr int kRows = 4;
  fs::path cache_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<kpath::Registry> registry_;
};

TEST_F(CudaBackendTest, BuffersRoundTripAndRejectOutOfRange) {
  auto id = backend_->create_buffer(1000, BufferUsage::kHostVisible, "scratch");
  ASSERT_TRUE(id.ok()) << id.error().message;
  std::vector<uint8_t> zeros(1000, 0xAB);
  ASSERT_TRUE(backend_->read_buffer(*id, 0, zeros.data(), zeros.size()).ok());
  EXPECT_EQ(zeros, std::vector<uint8_t>(1000, 0));  // new buffers are zeroed
  std::vector<uint8_t> data(600);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  ASSERT_TRUE(backend_->write_buffer(*id, 400, data.data(), data.size()).ok());
  std::vector<uint8_t> back(600);
  ASSERT_TRUE(backend_->read_buffer(*id, 400, back.data(), back.size()).ok());
  EXPECT_EQ(back, data);
  auto bad = backend_->write_buffer(*id, 401, data.data(), data.size());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("scratch"), std::string::npos) << bad.error().message;
  EXPECT_GE(backend_->peak_memory(), 1000u);
  backend_->destroy_buffer(*id);
}

TEST_F(CudaBackendTest, GraphReplayReadsFreshParamsAndTimestampsWork) {
  auto pipeline = last_row_pipeline(*backend_);
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  std::vector<float> x(kRows * kCols), w(kCols);
  for (int i = 0; i < kRows * kCols; ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * (1 + i / kCols);
  for (int i = 0; i < kCols; ++i) w[i] = 1.0f + 0.01f * static_cast<float>(i % 13);
  auto bx = backend_->create_buffer(x.size() * 4, BufferUsage::kDevice, "x");
  auto bw = backend_->create_buffer(w.size() * 4, BufferUsage::kDevice, "w");
  auto by = backend_->create_buffer(kCols * 4, BufferUsage::kDevice, "y");
  ASSERT_TRUE(bx.ok() && bw.ok() && by.ok());
  ASSERT_TRUE(backend_->write_buffer(*bx, 0, x.data(), x.size() * 4).ok());
  ASSERT_TRUE(backend_->write_buffer(*bw, 0, w.data(), w.size() * 4).ok());
  DispatchDesc d;
  d.pipeline = *pipeline;
  d.bindings = {{*bx, 0, x.size() * 4, Access::kRead}, {*bw, 0, w.size() * 4, Access::kRead},
                {*by, 0, kCols * 4, Access::kWrite}};
  auto list = backend_->record(std::span<const DispatchDesc>(&d, 1));
  ASSERT_TRUE(list.ok()) << list.error().message;

  auto expect_row = [&](int row) {
    double ss = 0;
    for (int i = 0; i < kCols; ++i) ss += double(x[row * kCols + i]) * x[row * kCols + i];
    const double inv = 1.0 / std::sqrt(ss / kCols + 1e-6);
    std::vector<float> y(kCols);
    ASSERT_TRUE(backend_->read_buffer(*by, 0, y.data(), y.size() * 4).ok());
    for (int i = 0; i < kCols; ++i) {
      ASSERT_NEAR(y[i], x[row * kCols + i] * inv * w[i], 1e-5) << "row " << row << " column " << i;
    }
  };
  KpParams p{};
  for (int t : {4, 2, 3}) {  // the first submit captures the graph, the others replay it
    p.n_tokens = static_cast<uint32_t>(t);
    ASSERT_TRUE(backend_->submit(*list, p, false).ok());
    expect_row(t - 1);
  }
  p.n_tokens = 1;
  ASSERT_TRUE(backend_->submit(*list, p, true).ok());
  expect_row(0);
  const std::vector<double> times = backend_->last_timings();
  ASSERT_EQ(times.size(), 1u);
  EXPECT_GT(times[0], 0.0);
  EXPECT_LT(times[0], 1000.0);
  backend_->destroy_command_list(*list);
  for (BufferId b : {*bx, *bw, *by}) backend_->destroy_buffer(b);
}

TEST_F(CudaBackendTest, RecordChecksBindings) {
  auto pipeline = last_row_pipeline(*backend_);
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  auto b = backend_->create_buffer(8192, BufferUsage::kDevice, "slot");
  ASSERT_TRUE(b.ok());
  DispatchDesc d;
  d.pipeline = *pipeline;
  d.bindings = {{*b, 4, 1024, Access::kRead}, {*b, 2048, 1024, Access::kRead}, {*b, 4096, 1024, Access::kWrite}};
  auto misaligned = backend_->record(std::span<const DispatchDesc>(&d, 1));
  ASSERT_FALSE(misaligned.ok());
  EXPECT_NE(misaligned.error().message.find("dispatch 0"), std::string::npos) << misaligned.error().message;
  EXPECT_NE(misaligned.error().message.find("offset 4"), std::string::npos) << misaligned.error().message;
  d.bindings[0].offset = 7168;  // 7168 + 1024 + ... past the 8192 bytes
  d.bindings[0].bytes = 2048;
  auto outside = backend_->record(std::span<const DispatchDesc>(&d, 1));
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("outside buffer 'slot'"), std::string::npos) << outside.error().message;
  d.bindings.pop_back();
  auto count = backend_->record(std::span<const DispatchDesc>(&d, 1));
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.error().message.find("2 bindings"), std::string::npos) << count.error().message;
  backend_->destroy_buffer(*b);
}

TEST_F(CudaBackendTest, CompiledKernelsAreCachedOnDisk) {
  ASSERT_TRUE(last_row_pipeline(*backend_).ok());
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(cache_)) files += e.path().extension() == ".cubin";
  EXPECT_EQ(files, 1u);
  // A second backend finds the cubin; the pipeline it loads from there runs.
  CudaOptions options;
  options.cache_dir = cache_.string();
  auto other = make_cuda_backend(0, options);
  ASSERT_TRUE(other.ok()) << other.error().message;
  ASSERT_TRUE(last_row_pipeline(**other).ok());
  files = 0;
  for (const auto& e : fs::directory_iterator(cache_)) files += e.path().extension() == ".cubin";
  EXPECT_EQ(files, 1u);
}

}  // namespace
}  // namespace kp::backend
