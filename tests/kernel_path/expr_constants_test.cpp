// Constant and grid expressions (expr.h) and constant resolution (constants.h).
#include <gtest/gtest.h>

#include "kernel_path/constants.h"
#include "kernel_path/expr.h"
#include "kernel_path/registry.h"

namespace kp::kpath {
namespace {

ExprValue eval_ok(std::string_view e, const SymbolTable& t = {}) {
  auto r = eval_expr(e, t);
  EXPECT_TRUE(r.ok()) << e << ": " << r.error().message;
  return r.ok() ? *r : ExprValue{-12345, false};
}

std::string eval_error(std::string_view e, const SymbolTable& t = {}) {
  auto r = eval_expr(e, t);
  EXPECT_FALSE(r.ok()) << e;
  return r.ok() ? "" : r.error().message;
}

TEST(Expr, ArithmeticPrecedenceAndIntegerDivision) {
  EXPECT_EQ(eval_ok("2 + 3 * 4").value, 14);
  EXPECT_EQ(eval_ok("(2 + 3) * 4").value, 20);
  EXPECT_EQ(eval_ok("7 / 2").value, 3);  // both integers: integer division
  EXPECT_TRUE(eval_ok("7 / 2").is_integer);
  EXPECT_DOUBLE_EQ(eval_ok("7.0 / 2").value, 3.5);
  EXPECT_FALSE(eval_ok("7.0 / 2").is_integer);
  EXPECT_EQ(eval_ok("-3 + 5").value, 2);
  EXPECT_EQ(eval_ok("2 - -3").value, 5);
  EXPECT_DOUBLE_EQ(eval_ok("1e-6").value, 1e-6);
  EXPECT_FALSE(eval_ok("1e-6").is_integer);
  EXPECT_DOUBLE_EQ(eval_ok("2.5e+2").value, 250);
}

TEST(Expr, Functions) {
  EXPECT_EQ(eval_ok("cdiv(10, 4)").value, 3);
  EXPECT_EQ(eval_ok("cdiv(8, 4)").value, 2);
  EXPECT_TRUE(eval_ok("cdiv(10, 4)").is_integer);
  EXPECT_EQ(eval_ok("min(3, 9)").value, 3);
  EXPECT_EQ(eval_ok("max(3, 9)").value, 9);
  EXPECT_EQ(eval_ok("max(min(1, 2), cdiv(7, 2)) * 2").value, 8);
}

TEST(Expr, SymbolsAndModelValues) {
  SymbolTable t;
  t["K"] = ExprValue{2304, true};
  ModelValues m;
  m.n_embd = 2304;
  m.head_dim = 256;
  m.rms_eps = 1e-6f;
  m.embd_scale = 48.0f;
  m.add_to(t);
  EXPECT_EQ(eval_ok("K / model.head_dim", t).value, 9);
  EXPECT_EQ(eval_ok("model.n_embd - K", t).value, 0);
  EXPECT_NEAR(eval_ok("model.rms_eps", t).value, 1e-6, 1e-12);
  EXPECT_FALSE(eval_ok("model.rms_eps", t).is_integer);
  EXPECT_EQ(eval_ok("model.embd_scale", t).value, 48);
  EXPECT_TRUE(eval_ok("model.n_embd", t).is_integer);
}

TEST(Expr, ErrorsNameTheExpressionAndTheProblem) {
  EXPECT_EQ(eval_error("N * 2"), "expression 'N * 2': unknown symbol 'N'");
  EXPECT_NE(eval_error("4 / (2 - 2)").find("division by zero"), std::string::npos);
  EXPECT_NE(eval_error("cdiv(4)").find("cdiv() takes two arguments"), std::string::npos);
  EXPECT_NE(eval_error("pow(2, 3)").find("unknown function 'pow'"), std::string::npos);
  EXPECT_NE(eval_error("(1 + 2").find("expected ')'"), std::string::npos);
  EXPECT_NE(eval_error("1 + 2 )").find("unexpected ')'"), std::string::npos);
  EXPECT_NE(eval_error("").find("unexpected end"), std::string::npos);
  EXPECT_NE(eval_error("3 $ 4").find("unexpected '$ 4'"), std::string::npos);
}

// A logical kernel with shape-derived and model-derived defaults, and an
// implementation adding tuning constants.
KernelDesc test_kernel() {
  KernelDesc k;
  k.id = "matmul_test";
  k.constants = {{"K", ConstType::U32, "K", ""},
                 {"N", ConstType::U32, "N", ""},
                 {"EPS", ConstType::F32, "model.rms_eps", ""},
                 {"TILES", ConstType::U32, "cdiv(N, 64)", ""},
                 {"SIGNED", ConstType::I32, "0 - 3", ""},
                 {"FAST", ConstType::Bool, "0", ""}};
  return k;
}

KernelImpl test_impl() {
  KernelImpl impl;
  impl.backend = "vulkan";
  impl.constants = {{"WG_SIZE", ConstType::U32, "256", ""}, {"ROWS", ConstType::U32, "max(1, TILES / 2)", ""}};
  return impl;
}

SymbolTable shapes() {
  SymbolTable t;
  t["K"] = ExprValue{256, true};
  t["N"] = ExprValue{768, true};
  ModelValues m;
  m.rms_eps = 1e-6f;
  m.add_to(t);
  return t;
}

TEST(Constants, DefaultsInDeclarationOrderLogicalFirst) {
  const KernelDesc k = test_kernel();
  const KernelImpl impl = test_impl();
  auto r = resolve_constants(k, &impl, {}, shapes(), "s.constants");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 8u);
  const std::vector<std::string> names = {"K", "N", "EPS", "TILES", "SIGNED", "FAST", "WG_SIZE", "ROWS"};
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ((*r)[i].first, names[i]);
  EXPECT_EQ(std::get<uint32_t>((*r)[0].second), 256u);
  EXPECT_EQ(std::get<uint32_t>((*r)[1].second), 768u);
  EXPECT_FLOAT_EQ(std::get<float>((*r)[2].second), 1e-6f);
  EXPECT_EQ(std::get<uint32_t>((*r)[3].second), 12u);
  EXPECT_EQ(std::get<int32_t>((*r)[4].second), -3);
  EXPECT_EQ(std::get<bool>((*r)[5].second), false);
  EXPECT_EQ(std::get<uint32_t>((*r)[6].second), 256u);
  EXPECT_EQ(std::get<uint32_t>((*r)[7].second), 6u);  // an implementation default may use earlier constants
}

TEST(Constants, OverridesAreTypedAndFeedLaterDefaults) {
  const KernelDesc k = test_kernel();
  const KernelImpl impl = test_impl();
  auto r = resolve_constants(k, &impl, {{"N", "1024"}, {"FAST", "true"}, {"EPS", "1e-5"}, {"WG_SIZE", "N / 8"}},
                             shapes(), "s.constants");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(std::get<uint32_t>((*r)[1].second), 1024u);
  EXPECT_FLOAT_EQ(std::get<float>((*r)[2].second), 1e-5f);
  EXPECT_EQ(std::get<uint32_t>((*r)[3].second), 16u);  // cdiv(1024, 64): the override feeds TILES
  EXPECT_EQ(std::get<bool>((*r)[5].second), true);
  EXPECT_EQ(std::get<uint32_t>((*r)[6].second), 128u);
  EXPECT_EQ(const_value_string((*r)[5].second), "true");
  EXPECT_EQ(const_value_string((*r)[1].second), "1024");
}

TEST(Constants, ErrorsNameTheLocationAndWhatWasExpected) {
  const KernelDesc k = test_kernel();
  const KernelImpl impl = test_impl();
  auto err = [&](std::map<std::string, std::string> o, const KernelImpl* i = nullptr) {
    auto r = resolve_constants(k, i, o, shapes(), "decode.steps[7].constants");
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_EQ(err({{"COLS_PER_WG", "4"}}, &impl),
            "decode.steps[7].constants.COLS_PER_WG: kernel 'matmul_test' (vulkan) declares no constant 'COLS_PER_WG' "
            "(it declares: K, N, EPS, TILES, SIGNED, FAST, WG_SIZE, ROWS)");
  // Without the implementation its constants are unknown.
  EXPECT_EQ(err({{"WG_SIZE", "4"}}),
            "decode.steps[7].constants.WG_SIZE: kernel 'matmul_test' declares no constant 'WG_SIZE' (it declares: K, "
            "N, EPS, TILES, SIGNED, FAST)");
  EXPECT_EQ(err({{"N", "1.5"}}), "decode.steps[7].constants.N: expected an unsigned 32-bit integer, got 1.5");
  EXPECT_EQ(err({{"N", "0 - 1"}}), "decode.steps[7].constants.N: expected an unsigned 32-bit integer, got -1");
  EXPECT_EQ(err({{"FAST", "2"}}), "decode.steps[7].constants.FAST: expected true or false, got 2");
  EXPECT_EQ(err({{"EPS", "false"}}), "decode.steps[7].constants.EPS: expected f32, got false");
  EXPECT_EQ(err({{"K", "T * 2"}}), "decode.steps[7].constants.K: expression 'T * 2': unknown symbol 'T'");
}

TEST(Constants, GridDimensions) {
  SymbolTable t = shapes();
  t["T"] = ExprValue{5, true};
  auto g = eval_dims({"cdiv(N, 64)", "T"}, t, "grid");
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(*g, (std::array<uint32_t, 3>{12, 5, 1}));
  auto bad = eval_dims({"K - 256"}, t, "decode.steps[0] grid");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "decode.steps[0] grid: dimension 0 = 'K - 256' evaluates to 0, expected >= 1");
}

}  // namespace
}  // namespace kp::kpath
