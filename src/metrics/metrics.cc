#include "metrics/metrics.h"

#include <algorithm>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace feed {

void metrics::counter(std::string name, std::string help, reader read, labels l) {
  add(std::move(name), std::move(help), true, std::move(read), std::move(l));
}

void metrics::gauge(std::string name, std::string help, reader read, labels l) {
  add(std::move(name), std::move(help), false, std::move(read), std::move(l));
}

void metrics::add(std::string name, std::string help, bool is_counter, reader read, labels l) {
  auto it = std::find_if(families_.begin(), families_.end(), [&](const family& f) { return f.name == name; });
  if (it == families_.end()) {
    families_.push_back({std::move(name), std::move(help), is_counter, {}});
    it = families_.end() - 1;
  }
  it->members.push_back({std::move(l), std::move(read)});
}

std::string metrics::render() const {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families_.size());
  for (const auto& f : families_) {
    prometheus::MetricFamily mf;
    mf.name = f.name;
    mf.help = f.help;
    mf.type = f.is_counter ? prometheus::MetricType::Counter : prometheus::MetricType::Gauge;
    for (const auto& s : f.members) {
      prometheus::ClientMetric m;
      for (const auto& [k, v] : s.l) m.label.push_back({k, v});
      (f.is_counter ? m.counter.value : m.gauge.value) = s.read();
      mf.metric.push_back(std::move(m));
    }
    out.push_back(std::move(mf));
  }
  return prometheus::TextSerializer().Serialize(out);
}

}  // namespace feed
