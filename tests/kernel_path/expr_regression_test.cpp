// Regressions found by fuzz/kernel_path_fuzz.cpp in the expression evaluator.
#include <gtest/gtest.h>

#include <string>

#include "kernel_path/expr.h"
#include "path_test_support.h"

namespace kp::kpath {
namespace {

using testing::data_path;

std::string nested(int depth, const std::string& inner) {
  return std::string(static_cast<size_t>(depth), '(') + inner + std::string(static_cast<size_t>(depth), ')');
}

// The parser recursed once per '(' or '-' without a bound: a constant nested a
// few thousand levels deep in a path file overflowed the stack (a segfault in
// `kpath paths validate`, a stack-overflow report under ASan).
TEST(ExprRegression, DeepNestingIsAnErrorNotAStackOverflow) {
  const SymbolTable symbols;
  for (const std::string& expr : {nested(100000, "1"), std::string(100000, '-') + "1", nested(5000, "-(2") + ")",
                                  std::string(50000, '(')}) {
    Result<ExprValue> v = eval_expr(expr, symbols);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error().message.find("nested deeper than 64 levels"), std::string::npos)
        << v.error().message.substr(v.error().message.size() - 100);
  }
}

TEST(ExprRegression, NestingWithinTheLimitStillEvaluates) {
  const SymbolTable symbols;
  Result<ExprValue> v = eval_expr(nested(kMaxExprDepth - 1, "7"), symbols);
  ASSERT_TRUE(v.ok()) << v.error().message.substr(0, 200);
  EXPECT_EQ(v->value, 7);
  std::string negated = "-";  // not "-" + ...: gcc 12 -O3 reports a false -Wrestrict
  negated += nested(kMaxExprDepth - 2, "7");
  v = eval_expr(negated, symbols);
  ASSERT_TRUE(v.ok()) << v.error().message.substr(0, 200);
  EXPECT_EQ(v->value, -7);
  EXPECT_FALSE(eval_expr(nested(kMaxExprDepth, "7"), symbols).ok());
}

// The fuzzer's input: a path whose attention step sets SOFTCAP to an
// expression 5,000 parentheses deep. Validation reports it at its JSON location.
TEST(ExprRegression, DeeplyNestedConstantInAPathFileIsRejected) {
  const std::string file = data_path("fuzz_regressions/kernel_path_fuzz/deep_expression.json");
  const KernelPath path = testing::load_path_file(file);
  const auto& m = testing::load_model(testing::q4_k_model());
  Result<Plan> plan = validate_path(path, testing::builtin_registry(), m.file, testing::options_for(m));
  ASSERT_FALSE(plan.ok());
  const std::string& msg = plan.error().message;
  EXPECT_NE(msg.find("decode.steps[6].constants.SOFTCAP"), std::string::npos) << msg.substr(0, 300);
  EXPECT_NE(msg.find("nested deeper than 64 levels"), std::string::npos) << msg.substr(0, 300);
}

}  // namespace
}  // namespace kp::kpath
