// A stand-in for feed-api, for measuring feed-bot and smoke-testing it
// without the real server: answers every POST with 202 and fans each message
// out as an SSE event to every open GET on the feed path. Knobs inject the
// faults the bot must detect (503s, lost and duplicated events, chunked
// streams). Single-threaded; binds 127.0.0.1 only; exits after --max-seconds.
//
// Prints "port <n>" on stdout once listening (use --port 0 for any free port).
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <deque>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <fmt/format.h>

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

struct settings {
  unsigned short port = 0;
  bool chunked = false;
  bool fanout = true;
  std::uint64_t reject_every = 0;  // every Nth post gets 503
  std::uint64_t drop_every = 0;    // every Nth accepted message is not fanned out
  std::uint64_t dup_every = 0;     // every Nth accepted message is sent twice
  double heartbeat_s = 15;
  double max_seconds = 600;
  unsigned idle_close_ms = 0;      // close a connection that waits this long for a request (0: never)
};

struct stream {
  explicit stream(tcp::socket s) : sock(std::move(s)) {}
  tcp::socket sock;
  std::deque<std::shared_ptr<const std::string>> queue;
  bool writing = false;
  bool dead = false;
};

class server {
 public:
  server(asio::io_context& ioc, const settings& cfg)
      : ioc_(ioc), cfg_(cfg), acceptor_(ioc), heartbeat_(ioc), deadline_(ioc) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), cfg.port));
    acceptor_.listen(4096);
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void start() {
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    schedule_heartbeat();
    deadline_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(cfg_.max_seconds)));
    deadline_.async_wait([this](error_code ec) {
      if (!ec) ioc_.stop();
    });
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      tcp::socket s = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;  // e.g. EMFILE: keep serving the others
      }
      s.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(ioc_, serve(std::move(s)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket sock) {
    std::string buf;
    std::string out;
    error_code ec;
    char tmp[8192];
    asio::steady_timer idle(ioc_);
    for (;;) {
      std::size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        // Like a server's keep-alive timeout: hang up on a connection that
        // sends nothing for a while (the handler touches the socket only
        // when the timer really fired).
        if (cfg_.idle_close_ms > 0 && buf.empty()) {
          idle.expires_after(std::chrono::milliseconds(cfg_.idle_close_ms));
          idle.async_wait([&sock](error_code e) {
            if (!e) sock.close(e);
          });
        }
        const auto n = co_await sock.async_read_some(asio::buffer(tmp), asio::redirect_error(asio::use_awaitable, ec));
        idle.cancel();
        if (ec) co_return;
        buf.append(tmp, n);
        if (buf.size() > 65536) co_return;
      }
      const std::string_view head(buf.data(), head_end);
      const auto sp1 = head.find(' ');
      const auto sp2 = head.find(' ', sp1 + 1);
      // Copies: buf is compacted below.
      const std::string method(head.substr(0, sp1));
      const std::string_view target = head.substr(sp1 + 1, sp2 - sp1 - 1);
      const std::string path(target.substr(0, target.find('?')));
      std::size_t length = 0;
      for (const char* name : {"Content-Length:", "content-length:"}) {
        if (auto p = head.find(name); p != std::string_view::npos) length = std::stoul(std::string(head.substr(p + 15, 20)));
      }
      const std::size_t need = head_end + 4 + length;
      while (buf.size() < need) {
        const auto n = co_await sock.async_read_some(asio::buffer(tmp), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        buf.append(tmp, n);
      }
      const std::string body = buf.substr(head_end + 4, length);
      buf.erase(0, need);

      out.clear();
      if (method == "POST" && path == "/api/messages") {
        ++posts_;
        if (cfg_.reject_every > 0 && posts_ % cfg_.reject_every == 0) {
          reply(out, 503, R"({"error":"saturated"})", "Retry-After: 1\r\n");
        } else {
          const std::uint64_t seq = ++seq_;
          const auto id = fmt::format("{:08x}-0000-4000-8000-{:012x}", seq >> 32, seq);
          publish(seq, id, body);
          reply(out, 202, fmt::format(R"({{"id":"{}","status":"accepted"}})", id), "");
        }
      } else if (method == "GET" && path == "/api/feed") {
        out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
        out += cfg_.chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
        co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        auto st = std::make_shared<stream>(std::move(sock));
        streams_.push_back(st);
        // Hold the stream until the client goes away.
        while (!st->dead) {
          co_await st->sock.async_read_some(asio::buffer(tmp), asio::redirect_error(asio::use_awaitable, ec));
          if (ec) break;
        }
        st->dead = true;
        error_code ignored;
        st->sock.close(ignored);
        co_return;
      } else if (method == "GET" && path == "/api/health") {
        reply(out, 200, R"({"status":"ok"})", "");
      } else {
        reply(out, 404, R"({"error":"not found"})", "");
      }
      co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  static void reply(std::string& out, int status, std::string_view body, std::string_view extra) {
    const char* reason = status == 202 ? "Accepted" : status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found";
    out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\n\r\n{}", status,
                      reason, extra, body.size(), body);
  }

  void publish(std::uint64_t seq, std::string_view id, std::string_view body) {
    if (!cfg_.fanout || streams_.empty()) return;
    if (cfg_.drop_every > 0 && seq % cfg_.drop_every == 0) return;
    // {"user_id":...,"content":...} -> {"id":...,"user_id":...,"content":...,"created_at":...}
    std::string_view inner = body;
    if (inner.size() >= 2 && inner.front() == '{' && inner.back() == '}') inner = inner.substr(1, inner.size() - 2);
    const auto event = fmt::format("id: {}\ndata: {{\"id\":\"{}\",{},\"created_at\":\"2024-01-01T00:00:00.000000Z\"}}\n\n",
                                   seq, id, inner);
    pending_ += event;
    if (cfg_.dup_every > 0 && seq % cfg_.dup_every == 0) pending_ += event;
    if (!flush_posted_) {
      flush_posted_ = true;
      asio::post(ioc_, [this] { flush(); });
    }
  }

  // Everything published since the last flush goes out as one write per
  // stream, so fan-out cost grows with streams, not streams x messages.
  void flush() {
    flush_posted_ = false;
    if (pending_.empty()) return;
    std::string batch;
    if (cfg_.chunked) batch = fmt::format("{:x}\r\n{}\r\n", pending_.size(), pending_);
    else batch.swap(pending_);
    pending_.clear();
    auto shared = std::make_shared<const std::string>(std::move(batch));
    std::size_t live = 0;
    for (auto& st : streams_) {
      if (st->dead) continue;
      streams_[live++] = st;
      if (st->queue.size() > 10000) {  // hopelessly behind: cut it off
        st->dead = true;
        error_code ignored;
        st->sock.close(ignored);
        continue;
      }
      st->queue.push_back(shared);
      if (!st->writing) write_next(st);
    }
    streams_.resize(live);
  }

  static void write_next(const std::shared_ptr<stream>& st) {
    if (st->queue.empty() || st->dead) {
      st->writing = false;
      return;
    }
    st->writing = true;
    asio::async_write(st->sock, asio::buffer(*st->queue.front()), [st](error_code ec, std::size_t) {
      st->queue.pop_front();
      if (ec) {
        st->dead = true;
        st->writing = false;
        return;
      }
      write_next(st);
    });
  }

  void schedule_heartbeat() {
    heartbeat_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(cfg_.heartbeat_s)));
    heartbeat_.async_wait([this](error_code ec) {
      if (ec) return;
      pending_ += ": keep-alive\n\n";
      flush();
      schedule_heartbeat();
    });
  }

  asio::io_context& ioc_;
  settings cfg_;
  tcp::acceptor acceptor_;
  asio::steady_timer heartbeat_;
  asio::steady_timer deadline_;
  std::vector<std::shared_ptr<stream>> streams_;
  std::string pending_;
  bool flush_posted_ = false;
  std::uint64_t posts_ = 0;
  std::uint64_t seq_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  settings cfg;
  CLI::App app{"Stand-in feed server for feed-bot measurements (127.0.0.1 only)."};
  app.add_option("--port", cfg.port, "Port on 127.0.0.1 (0 = any)");
  app.add_flag("--chunked", cfg.chunked, "Send the SSE stream with chunked transfer coding");
  app.add_flag("!--no-fanout", cfg.fanout, "Hold streams but send no events");
  app.add_option("--reject-every", cfg.reject_every, "Answer every Nth post with 503 Retry-After: 1");
  app.add_option("--drop-every", cfg.drop_every, "Do not deliver every Nth accepted message");
  app.add_option("--dup-every", cfg.dup_every, "Deliver every Nth accepted message twice");
  app.add_option("--heartbeat", cfg.heartbeat_s, "Seconds between keep-alive comments");
  app.add_option("--max-seconds", cfg.max_seconds, "Exit after this long");
  app.add_option("--idle-close-ms", cfg.idle_close_ms, "Close a connection that sends no request for this long");
  CLI11_PARSE(app, argc, argv);

  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::signal(SIGPIPE, SIG_IGN);

  asio::io_context ioc{1};
  server srv(ioc, cfg);
  srv.start();
  std::cout << "port " << srv.port() << std::endl;
  asio::signal_set stop(ioc, SIGINT, SIGTERM);
  stop.async_wait([&](error_code, int) { ioc.stop(); });
  ioc.run();
  return 0;
}
