// When posts could get a 202: outages over all instances together, and per
// instance, while posting is under way.
//
// "Unavailable" over all instances means no post got a 202 from any of
// them: the outage opens at the first failed attempt after the last 202
// anywhere (a post that got no answer or a 503, dated when it was sent, or
// a failed connect while messages were waiting) and closes at the next 202
// from any instance. Per instance the same, with that instance's attempts
// and 202s only; there a failed connect always counts. An outage still open
// when posting ends lasts until then: nothing got a 202 after it began.
//
// Thread-safety: every member may be called from any thread; one mutex
// guards the trackers. Posting threads call it once per answer; no I/O is
// done under the lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bot/outage_tracker.h"

namespace feed::bot {

class availability {
 public:
  using time_point = outage_tracker::time_point;

  struct figures {
    double longest_s = 0;      // longest outage, closed ones and the open one so far
    std::uint64_t outages = 0;  // closed outages
    // Failing now (no 202 since the last failure), or when posting ended.
    bool open = false;
    // Per instance: since when the open outage runs, what its last failure
    // was ("connect: Connection refused", "503", ...), and how long the
    // outage closed last lasted.
    std::optional<time_point> open_since;
    std::string last_failure;
    double last_closed_s = 0;
  };

  explicit availability(std::size_t instances);

  // A 202 (any 2xx) from `instance`, answered at `at`.
  void success(std::size_t instance, time_point at);
  // A failed attempt on `instance` at `at`; `overall` says whether it also
  // counts against all instances together (see above). `what` names the
  // failure for the operator (kept per instance, the last one wins).
  void failure(std::size_t instance, time_point at, bool overall, std::string_view what = {});
  // Posting is over at `end`: closes the outages still open there (they
  // still say `open`: unavailable at the end).
  void finish(time_point end);

  figures overall() const;
  figures instance(std::size_t i) const;
  std::size_t instances() const noexcept { return instances_; }

 private:
  static figures figures_of(const outage_tracker& t, bool open_at_end);

  const std::size_t instances_;
  mutable std::mutex mu_;
  outage_tracker all_;                      // GUARDED_BY(mu_)
  std::vector<outage_tracker> per_instance_;  // GUARDED_BY(mu_)
  std::vector<std::string> last_failure_;     // GUARDED_BY(mu_)
  // Which were open when finish() closed them: all_ first, then each instance.
  std::vector<bool> open_at_end_;             // GUARDED_BY(mu_)
};

}  // namespace feed::bot
