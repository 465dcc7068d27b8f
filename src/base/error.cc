#include "base/error.h"

namespace feed {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "feed"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::ok: return "ok";
      case errc::invalid_input: return "invalid input";
      case errc::queue_full: return "queue full";
      case errc::unavailable: return "service unavailable";
      case errc::timeout: return "timed out";
      case errc::shutting_down: return "shutting down";
      case errc::storage: return "storage error";
      case errc::corrupt: return "corrupt data";
      case errc::key_conflict: return "Idempotency-Key stored with other content";
      case errc::not_sent: return "never sent to the broker";
    }
    return "unknown feed error";
  }
};

}  // namespace

const std::error_category& feed_category() noexcept {
  static const category c;
  return c;
}

}  // namespace feed
