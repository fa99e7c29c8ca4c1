// SPDX-License-Identifier: Apache-2.0
// Errors as values: Error (a code, a message and a context chain) and Result<T>, a small
// subset of std::expected (which libstdc++ 12 lacks). BERTH_TRY / BERTH_CO_TRY propagate.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace berth {

enum class Errc {
  Ok = 0,
  InvalidArgument,
  NotFound,
  AlreadyExists,
  FailedPrecondition,
  Conflict,
  Unauthenticated,
  PermissionDenied,
  ResourceExhausted,
  Unavailable,
  DeadlineExceeded,
  Cancelled,
  Unsupported,
  DataLoss,
  /// The disk (or a quota) is full: ENOSPC, EDQUOT, SQLITE_FULL. Not a client's fault and not
  /// a rate limit (that is ResourceExhausted): answered 507 and logged as an error.
  NoSpace,
  Internal,  // keep last: loops over every code stop here
};

/// Stable lower-case name of a code ("not_found"), used in API bodies and logs.
const char* errc_name(Errc code);

/// The backend an error began in, when that backend's own text names what a client must not
/// see (hosts, ports, buckets, keys). The edges answer an Unavailable error from one with a
/// fixed text saying which backend is away, and log the error's own text.
enum class ErrorOrigin : unsigned char { None, MetadataStore, BlobStorage };

class Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  Errc code() const { return code_; }
  const std::string& message() const { return message_; }
  ErrorOrigin origin() const { return origin_; }

  /// Marks where the error began; kept through with_context.
  Error with_origin(ErrorOrigin o) && {
    origin_ = o;
    return std::move(*this);
  }

  /// Prefixes the message with what was being done: "pull web/app: blob unknown".
  Error with_context(const std::string& what) && {
    message_ = what + ": " + message_;
    return std::move(*this);
  }
  Error with_context(const std::string& what) const& {
    Error copy = *this;
    return std::move(copy).with_context(what);
  }

 private:
  Errc code_;
  ErrorOrigin origin_ = ErrorOrigin::None;
  std::string message_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  /// An Internal error; exists because Asio 1.74's co_spawn needs default-constructible results.
  Result() : v_(Error(Errc::Internal, "result never set")) {}
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }
  T value_or(T other) const { return has_value() ? value() : std::move(other); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_{Errc::Ok, {}};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok() { return {}; }

inline Error make_error(Errc code, std::string message) { return Error(code, std::move(message)); }

}  // namespace berth

#define BERTH_CONCAT_INNER(a, b) a##b
#define BERTH_CONCAT(a, b) BERTH_CONCAT_INNER(a, b)

/// Evaluates a Result/Status expression; returns its error from the enclosing function.
#define BERTH_TRY(expr)                       \
  do {                                        \
    auto berth_try_r_ = (expr);               \
    if (!berth_try_r_) {                      \
      return std::move(berth_try_r_).error(); \
    }                                         \
  } while (0)

/// The same inside a coroutine.
#define BERTH_CO_TRY(expr)                       \
  do {                                           \
    auto berth_try_r_ = (expr);                  \
    if (!berth_try_r_) {                         \
      co_return std::move(berth_try_r_).error(); \
    }                                            \
  } while (0)

/// `BERTH_ASSIGN_OR_RETURN(auto x, expr);` binds the value or returns the error.
#define BERTH_ASSIGN_OR_RETURN(lhs, expr)                       \
  auto BERTH_CONCAT(berth_r_, __LINE__) = (expr);               \
  if (!BERTH_CONCAT(berth_r_, __LINE__)) {                      \
    return std::move(BERTH_CONCAT(berth_r_, __LINE__)).error(); \
  }                                                             \
  lhs = std::move(BERTH_CONCAT(berth_r_, __LINE__)).value()

#define BERTH_CO_ASSIGN_OR_RETURN(lhs, expr)                       \
  auto BERTH_CONCAT(berth_r_, __LINE__) = (expr);                  \
  if (!BERTH_CONCAT(berth_r_, __LINE__)) {                         \
    co_return std::move(BERTH_CONCAT(berth_r_, __LINE__)).error(); \
  }                                                                \
  lhs = std::move(BERTH_CONCAT(berth_r_, __LINE__)).value()
