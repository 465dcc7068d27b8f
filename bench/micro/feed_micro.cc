// Micro-benchmarks of the hot paths (Google Benchmark):
//   - POST body decode + validate (feed::parse_post_request)
//   - SSE frame encode (feed::sse_event_frame)
//   - broadcaster::fan_out of one stored message + the hub's append (no subscribers)
//   - hub fan-out of one event to N real loopback TCP subscribers (N = 1,000 and
//     10,000), drained by a forked child process so the kernel buffers never
//     fill; one iteration = one event handed to the kernel for every subscriber.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <fmt/format.h>

#include "harness.h"

#include "broadcast/broadcaster.h"
#include "broadcast/hub.h"
#include "http/sse_session.h"
#include "model/message.h"
#include "model/post_request.h"
#include "model/sse_frame.h"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string post_body(std::size_t content_chars) {
  std::string content = micro::sample_content;
  while (content.size() < content_chars) content += " more words";
  content.resize(content_chars);
  return fmt::format(R"({{"user_id":"user_42","content":"{}"}})", content);
}

feed::message sample_message(std::int64_t seq) {
  return feed::message{"0b5c9a6e-8f3d-4c1e-9a7b-2d4e6f8a0c1e", "user_42", micro::sample_content,
                       feed::timestamp{std::chrono::microseconds{1'714'565'520'123'456}}, feed::seq_t{seq}};
}

void BM_ParsePostRequest(benchmark::State& state) {
  const std::string body = post_body(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto r = feed::parse_post_request(body);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.SetLabel(fmt::format("body {} B", body.size()));
}
BENCHMARK(BM_ParsePostRequest)->Arg(40)->Arg(120)->Arg(280);

void BM_SseEventFrame(benchmark::State& state) {
  const auto m = sample_message(123456);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto f = feed::sse_event_frame(m);
    bytes = f.size();
    benchmark::DoNotOptimize(f);
  }
  state.SetLabel(fmt::format("frame {} B", bytes));
}
BENCHMARK(BM_SseEventFrame);

// fan_out() of one stored message: sequencer, frame serialization, shared
// frame allocation, post to the loop; then the loop runs the hub's append.
void BM_BroadcasterPublish(benchmark::State& state) {
  asio::io_context ioc;
  std::vector<asio::io_context*> loops{&ioc};
  feed::broadcaster b(loops, feed::seq_t{0}, {}, [](feed::seq_t, feed::seq_t) {
    return feed::result<std::vector<feed::message>>(std::vector<feed::message>{});
  });
  std::int64_t seq = 0;
  for (auto _ : state) {
    std::vector<feed::message> v;
    v.push_back(sample_message(++seq));
    b.fan_out(std::move(v));
    ioc.poll();
  }
  b.stop();
}
BENCHMARK(BM_BroadcasterPublish);

// ---- hub fan-out to real sockets ----

void raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Child: opens n connections to port and reads everything until killed.
[[noreturn]] void drainer(int port, int n) {
  const int ep = epoll_create1(0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(3);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  static char buf[1 << 16];
  std::vector<epoll_event> evs(1024);
  for (;;) {
    const int k = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 1000);
    for (int i = 0; i < k; ++i)
      while (read(evs[i].data.fd, buf, sizeof buf) > 0) {
      }
    if (getppid() == 1) _exit(0);
  }
}

void BM_HubFanout(benchmark::State& state) {
  raise_nofile();
  const int n = static_cast<int>(state.range(0));
  asio::io_context ioc;
  tcp::acceptor acc(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  acc.listen(4096);
  const int port = acc.local_endpoint().port();
  const pid_t child = fork();
  if (child == 0) drainer(port, n);

  feed::hub h(ioc, feed::seq_t{0}, {});
  for (int i = 0; i < n; ++i) {
    tcp::socket s(ioc);
    acc.accept(s);
    feed::http::sse_session::start(std::move(s), h, {h.last_seq(), std::nullopt, {}});
  }
  if (h.subscribers() != static_cast<std::size_t>(n)) state.SkipWithError("open failed");
  ioc.poll();

  std::int64_t seq = 0;
  const std::string payload = feed::sse_event_frame(sample_message(1));
  for (auto _ : state) {
    const auto target = h.stats().frames_sent + static_cast<std::uint64_t>(n);
    ++seq;
    h.push({std::make_shared<const feed::frame>(feed::frame{payload, "user_42", feed::seq_t{seq}})});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (h.stats().frames_sent < target) {
      ioc.run_one_for(std::chrono::milliseconds(100));
      if (std::chrono::steady_clock::now() > deadline) break;
    }
    if (h.stats().frames_sent < target) {
      state.SkipWithError("fan-out did not complete (slow subscribers dropped?)");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * n);  // deliveries
  state.counters["writes_per_event"] =
      benchmark::Counter(static_cast<double>(h.stats().writes) / static_cast<double>(state.iterations() ? state.iterations() : 1));
  state.counters["dropped_slow"] = static_cast<double>(h.stats().dropped_slow);
  state.SetLabel(fmt::format("frame {} B", payload.size()));
  h.close_all();
  ioc.poll();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}
BENCHMARK(BM_HubFanout)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
