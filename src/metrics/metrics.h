// Prometheus metrics read straight from the components' own counters.
//
// Components keep plain atomics (worker_stats, hub_stats, ...) on their hot
// paths; a scrape calls each registered reader and renders the Prometheus
// text format with prometheus-cpp's serializer. Nothing is copied or locked
// between scrapes.
//
// Thread safety: register everything before serving; render() may then be
// called from any thread, and the readers must be safe to call from it.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace feed {

class metrics {
 public:
  using labels = std::vector<std::pair<std::string, std::string>>;
  using reader = std::function<double()>;

  // A monotonically increasing count (name should end in _total).
  void counter(std::string name, std::string help, reader read, labels l = {});
  // A value that goes up and down.
  void gauge(std::string name, std::string help, reader read, labels l = {});

  std::string render() const;

 private:
  struct series {
    labels l;
    reader read;
  };
  struct family {
    std::string name, help;
    bool is_counter;
    std::vector<series> members;
  };
  void add(std::string name, std::string help, bool is_counter, reader read, labels l);
  std::vector<family> families_;
};

}  // namespace feed
