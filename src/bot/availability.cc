#include "bot/availability.h"

#include <algorithm>

namespace feed::bot {

availability::availability(std::size_t instances)
    : instances_(instances), per_instance_(instances), last_failure_(instances), open_at_end_(instances + 1, false) {}

void availability::success(std::size_t instance, time_point at) {
  std::lock_guard lock(mu_);
  all_.success(at);
  if (instance < instances_) per_instance_[instance].success(at);
}

void availability::failure(std::size_t instance, time_point at, bool overall, std::string_view what) {
  std::lock_guard lock(mu_);
  if (overall) all_.failure(at);
  if (instance < instances_) {
    per_instance_[instance].failure(at);
    last_failure_[instance].assign(what);
  }
}

void availability::finish(time_point end) {
  std::lock_guard lock(mu_);
  open_at_end_[0] = open_at_end_[0] || all_.open();
  all_.finish(end);
  for (std::size_t i = 0; i < instances_; ++i) {
    open_at_end_[i + 1] = open_at_end_[i + 1] || per_instance_[i].open();
    per_instance_[i].finish(end);
  }
}

availability::figures availability::figures_of(const outage_tracker& t, bool open_at_end) {
  figures f;
  f.longest_s = t.longest_s();
  f.outages = t.outages();
  f.open = t.open() || open_at_end;
  f.open_since = t.open_since();
  f.last_closed_s = std::chrono::duration<double>(t.last()).count();
  // An outage still open counts up to its last failure: the caller may ask
  // long after posting stopped, when nothing was being attempted.
  if (t.open() && t.last_failure()) {
    f.longest_s = std::max(f.longest_s, std::chrono::duration<double>(*t.last_failure() - *t.open_since()).count());
  }
  return f;
}

availability::figures availability::overall() const {
  std::lock_guard lock(mu_);
  return figures_of(all_, open_at_end_[0]);
}

availability::figures availability::instance(std::size_t i) const {
  std::lock_guard lock(mu_);
  if (i >= instances_) return {};
  auto f = figures_of(per_instance_[i], open_at_end_[i + 1]);
  f.last_failure = last_failure_[i];
  return f;
}

}  // namespace feed::bot
