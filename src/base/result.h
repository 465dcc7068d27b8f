// result<T>: a T or a feed::error, the return type of every fallible call.
//
// A small stand-in for std::expected (C++23), which the toolchain we target
// does not ship in C++20 mode.
#pragma once

#include <cassert>
#include <utility>
#include <variant>

#include "base/error.h"

namespace feed {

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}
  result(errc e, std::string msg) : v_(std::in_place_index<1>, error(e, std::move(msg))) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  const error& err() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error e) : e_(std::move(e)), failed_(true) {}
  result(errc e, std::string msg) : e_(e, std::move(msg)), failed_(true) {}

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const error& err() const { assert(failed_); return e_; }

 private:
  error e_{errc::ok, {}};
  bool failed_ = false;
};

}  // namespace feed
