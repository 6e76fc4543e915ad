// kp::Result<T>: the error value returned for untrusted input (files, JSON, CLI).
// The message names the file, key or tensor and what was expected. Broken
// invariants are not errors: they abort through KP_CHECK (core/check.h).
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace kp {

struct Error {
  std::string message;
};

template <class... Args>
Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{fmt::format(f, std::forward<Args>(args)...)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), has_error_(true) {}  // NOLINT

  bool ok() const { return !has_error_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return err_; }
  Error&& take_error() { return std::move(err_); }

 private:
  Error err_;
  bool has_error_ = false;
};

using Status = Result<void>;

}  // namespace kp

#define KP_CONCAT_INNER(a, b) a##b
#define KP_CONCAT(a, b) KP_CONCAT_INNER(a, b)

// KP_TRY(auto x, expr): evaluates expr (a Result), returns its error from the
// enclosing function, or binds the value to x.
#define KP_TRY(decl, expr)                                   \
  auto KP_CONCAT(kp_try_, __LINE__) = (expr);                \
  if (!KP_CONCAT(kp_try_, __LINE__).ok())                    \
    return KP_CONCAT(kp_try_, __LINE__).take_error();        \
  decl = std::move(KP_CONCAT(kp_try_, __LINE__)).value()

// KP_TRY_STATUS(expr): for Result<void>.
#define KP_TRY_STATUS(expr)                                  \
  do {                                                       \
    auto kp_try_status_ = (expr);                            \
    if (!kp_try_status_.ok()) return kp_try_status_.take_error(); \
  } while (0)
