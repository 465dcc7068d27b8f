// A stand-in for feed-api, for measuring feed-bot and smoke-testing it
// without the real server: answers every POST with 202 and fans each message
// out as an SSE event to every open GET on the feed path. Knobs inject the
// faults the bot must detect (503s, lost and duplicated events, chunked
// streams, posts stored but not (or not fully) answered, messages stored twice) and
// stand in for several instances of one feed (--two-ports: a second port
// on the same feed, which --kill-second-after closes with everything
// accepted on it, as a killed instance would). Posts with an
// Idempotency-Key seen before are answered with the first id and not
// published again; with --replay a stream opened with Last-Event-ID gets
// the events it missed. GET /api/messages?limit=1 names the newest seq.
// Single-threaded; binds 127.0.0.1 only; exits after --max-seconds.
//
// Prints "port <n>" (and "port2 <n>") on stdout once listening (use --port 0
// for any free port).
#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
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
  std::uint64_t reject_every = 0;       // every Nth post gets 503
  std::uint64_t drop_every = 0;         // every Nth accepted message is not fanned out
  std::uint64_t dup_every = 0;          // every Nth accepted message is sent twice
  std::uint64_t hangup_every = 0;       // every Nth new message is stored, then the connection closed mid-answer
  std::uint64_t unknown_every = 0;      // every Nth new message is stored, and answered 503 naming its id
  std::uint64_t dup_content_every = 0;  // every Nth new message is stored twice, under two ids
  double heartbeat_s = 15;
  double max_seconds = 600;
  unsigned idle_close_ms = 0;  // close a connection that waits this long for a request (0: never)
  bool two_ports = false;
  double kill_second_after_s = 0;  // 0: never
  bool replay = false;
};

struct stream {
  explicit stream(tcp::socket s) : sock(std::move(s)) {}
  tcp::socket sock;
  std::deque<std::shared_ptr<const std::string>> queue;
  bool writing = false;
  bool dead = false;
};

struct request {
  std::string method;
  std::string path;
  std::string body;
  std::string idempotency_key;
  std::optional<std::uint64_t> last_event_id;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// The value of header `name` in `head` (request line and headers, each
// line ending in CRLF), or empty.
std::string header_value(std::string_view head, std::string_view name) {
  for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
    pos += 2;
    const auto end = head.find("\r\n", pos);
    auto line = head.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (line.size() > name.size() && line[name.size()] == ':' && iequals(line.substr(0, name.size()), name)) {
      line.remove_prefix(name.size() + 1);
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      return std::string(line);
    }
    pos = end;
  }
  return {};
}

void on_done(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::cerr << "discard_server: coroutine failed: " << x.what() << std::endl;
  }
}

class server {
 public:
  server(asio::io_context& ioc, const settings& cfg)
      : ioc_(ioc), cfg_(cfg), acceptor_(ioc), acceptor2_(ioc), heartbeat_(ioc), deadline_(ioc), kill_(ioc) {
    listen(acceptor_, cfg.port);
    if (cfg.two_ports) listen(acceptor2_, 0);
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::optional<unsigned short> port2() const {
    if (!acceptor2_.is_open()) return std::nullopt;
    return acceptor2_.local_endpoint().port();
  }

  void start() {
    asio::co_spawn(ioc_, accept_loop(acceptor_, false), on_done);
    if (acceptor2_.is_open()) asio::co_spawn(ioc_, accept_loop(acceptor2_, true), on_done);
    schedule_heartbeat();
    deadline_.expires_after(seconds(cfg_.max_seconds));
    deadline_.async_wait([this](error_code ec) {
      if (!ec) ioc_.stop();
    });
    if (cfg_.two_ports && cfg_.kill_second_after_s > 0) {
      kill_.expires_after(seconds(cfg_.kill_second_after_s));
      kill_.async_wait([this](error_code ec) {
        if (!ec) kill_second();
      });
    }
  }

 private:
  static std::chrono::steady_clock::duration seconds(double s) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
  }

  static void listen(tcp::acceptor& a, unsigned short port) {
    a.open(tcp::v4());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    a.listen(4096);
  }

  // Like SIGKILL of the instance behind the second port: it stops accepting
  // and every connection it holds is closed at once.
  void kill_second() {
    error_code ignored;
    acceptor2_.close(ignored);
    for (tcp::socket* s : second_socks_) s->close(ignored);
    std::cerr << "discard_server: second port closed with " << second_socks_.size() << " connection(s)" << std::endl;
  }

  // Registers a socket of the second port for kill_second(), for as long as it lives.
  struct second_guard {
    server* srv;
    tcp::socket* sock;
    second_guard(server* s, tcp::socket* k, bool second) : srv(second ? s : nullptr), sock(k) {
      if (srv) srv->second_socks_.insert(sock);
    }
    ~second_guard() {
      if (srv) srv->second_socks_.erase(sock);
    }
    second_guard(const second_guard&) = delete;
    second_guard& operator=(const second_guard&) = delete;
  };

  asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, bool second) {
    for (;;) {
      error_code ec;
      tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        continue;  // e.g. EMFILE: keep serving the others
      }
      s.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(ioc_, serve(std::move(s), second), on_done);
    }
  }

  // Reads one request into `req`; false when the connection is done.
  asio::awaitable<bool> read_request(tcp::socket& sock, std::string& buf, request& req) {
    error_code ec;
    char tmp[8192];
    asio::steady_timer idle(ioc_);
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
      if (ec) co_return false;
      buf.append(tmp, n);
      if (buf.size() > 65536) co_return false;
    }
    const std::string_view head(buf.data(), head_end + 2);
    const auto sp1 = head.find(' ');
    const auto sp2 = head.find(' ', sp1 + 1);
    req.method = std::string(head.substr(0, sp1));
    const std::string_view target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    req.path = std::string(target.substr(0, target.find('?')));
    const auto length_text = header_value(head, "Content-Length");
    const std::size_t length = length_text.empty() ? 0 : std::stoul(length_text);
    req.idempotency_key = header_value(head, "Idempotency-Key");
    const auto last = header_value(head, "Last-Event-ID");
    req.last_event_id = last.empty() ? std::nullopt : std::optional<std::uint64_t>(std::stoull(last));
    const std::size_t need = head_end + 4 + length;
    while (buf.size() < need) {
      const auto n = co_await sock.async_read_some(asio::buffer(tmp), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
      buf.append(tmp, n);
    }
    req.body = buf.substr(head_end + 4, length);
    buf.erase(0, need);
    co_return true;
  }

  asio::awaitable<void> serve(tcp::socket sock, bool second) {
    second_guard guard(this, &sock, second);
    std::string buf;
    std::string out;
    request req;
    error_code ec;
    for (;;) {
      if (!co_await read_request(sock, buf, req)) co_return;
      out.clear();
      if (req.method == "POST" && req.path == "/api/messages") {
        if (!answer_post(req, out)) {
          co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
          co_return;  // stored, answer cut off
        }
      } else if (req.method == "GET" && req.path == "/api/feed") {
        co_await hold_stream(std::move(sock), second, req);
        co_return;
      } else if (req.method == "GET" && req.path == "/api/messages") {
        const auto page = seq_ > 0 ? fmt::format(R"([{{"seq":{}}}])", seq_) : std::string("[]");
        reply(out, 200, fmt::format(R"({{"messages":{},"next_before":null}})", page), "");
      } else if (req.method == "GET" && req.path == "/api/health") {
        reply(out, 200, R"({"status":"ok"})", "");
      } else {
        reply(out, 404, R"({"error":"not found"})", "");
      }
      co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  // Fills `out` with the answer; false when the post was stored and the
  // connection is to be closed after the first bytes of `out` (--hangup-every).
  bool answer_post(const request& req, std::string& out) {
    ++posts_;
    if (cfg_.reject_every > 0 && posts_ % cfg_.reject_every == 0) {
      reply(out, 503, R"({"error":"saturated"})", "Retry-After: 1\r\n");
      return true;
    }
    if (!req.idempotency_key.empty()) {
      if (auto it = keys_.find(req.idempotency_key); it != keys_.end()) {
        reply(out, 202, fmt::format(R"({{"id":"{}","status":"accepted"}})", it->second), "");
        return true;
      }
    }
    const auto id = store(req.body);
    ++stored_;
    if (!req.idempotency_key.empty()) keys_.emplace(req.idempotency_key, id);
    if (cfg_.dup_content_every > 0 && stored_ % cfg_.dup_content_every == 0) store(req.body);
    if (cfg_.unknown_every > 0 && stored_ % cfg_.unknown_every == 0) {
      // What feed-api says when the queue confirmed too late.
      reply(out, 503, fmt::format(R"({{"error":"the outcome is unknown","id":"{}"}})", id), "Retry-After: 1\r\n");
      return true;
    }
    reply(out, 202, fmt::format(R"({{"id":"{}","status":"accepted"}})", id), "");
    // Dies mid-answer: some bytes, so the client cannot take it for a
    // kept-alive connection the server had closed while it sat idle.
    if (cfg_.hangup_every > 0 && stored_ % cfg_.hangup_every == 0) {
      out.resize(12);
      return false;
    }
    return true;
  }

  std::string store(std::string_view body) {
    const std::uint64_t seq = ++seq_;
    const auto id = fmt::format("{:08x}-0000-4000-8000-{:012x}", seq >> 32, seq);
    publish(seq, id, body);
    return id;
  }

  asio::awaitable<void> hold_stream(tcp::socket sock, bool second, const request& req) {
    error_code ec;
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
    out += cfg_.chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
    auto st = std::make_shared<stream>(std::move(sock));
    second_guard guard(this, &st->sock, second);
    co_await asio::async_write(st->sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    // Events already flushed to other streams are replayed; later ones come
    // with the next flush, so none is sent twice.
    if (cfg_.replay && req.last_event_id) {
      std::string missed;
      for (const auto& [seq, event] : history_) {
        if (seq > *req.last_event_id && seq <= flushed_seq_) missed += event;
      }
      if (!missed.empty()) enqueue(st, framed(std::move(missed)));
    }
    streams_.push_back(st);
    // Hold the stream until the client goes away.
    char tmp[512];
    while (!st->dead) {
      co_await st->sock.async_read_some(asio::buffer(tmp), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    st->dead = true;
    error_code ignored;
    st->sock.close(ignored);
  }

  static void reply(std::string& out, int status, std::string_view body, std::string_view extra) {
    const char* reason = status == 202 ? "Accepted" : status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found";
    out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\n\r\n{}", status,
                      reason, extra, body.size(), body);
  }

  void publish(std::uint64_t seq, std::string_view id, std::string_view body) {
    if (!cfg_.fanout || (streams_.empty() && !cfg_.replay)) return;
    if (cfg_.drop_every > 0 && seq % cfg_.drop_every == 0) return;
    // {"user_id":...,"content":...} -> {"id":...,"user_id":...,"content":...,"created_at":...}
    std::string_view inner = body;
    if (inner.size() >= 2 && inner.front() == '{' && inner.back() == '}') inner = inner.substr(1, inner.size() - 2);
    const auto event = fmt::format("id: {}\ndata: {{\"id\":\"{}\",{},\"created_at\":\"2024-01-01T00:00:00.000000Z\"}}\n\n",
                                   seq, id, inner);
    if (cfg_.replay) history_.emplace_back(seq, event);
    pending_ += event;
    pending_seq_ = seq;
    if (cfg_.dup_every > 0 && seq % cfg_.dup_every == 0) pending_ += event;
    if (!flush_posted_) {
      flush_posted_ = true;
      asio::post(ioc_, [this] { flush(); });
    }
  }

  std::shared_ptr<const std::string> framed(std::string events) const {
    if (cfg_.chunked) events = fmt::format("{:x}\r\n{}\r\n", events.size(), events);
    return std::make_shared<const std::string>(std::move(events));
  }

  // Everything published since the last flush goes out as one write per
  // stream, so fan-out cost grows with streams, not streams x messages.
  void flush() {
    flush_posted_ = false;
    if (pending_.empty()) return;
    auto shared = framed(std::move(pending_));
    pending_.clear();
    flushed_seq_ = std::max(flushed_seq_, pending_seq_);
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
      enqueue(st, shared);
    }
    streams_.resize(live);
  }

  static void enqueue(const std::shared_ptr<stream>& st, std::shared_ptr<const std::string> bytes) {
    st->queue.push_back(std::move(bytes));
    if (!st->writing) write_next(st);
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
    heartbeat_.expires_after(seconds(cfg_.heartbeat_s));
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
  tcp::acceptor acceptor2_;
  asio::steady_timer heartbeat_;
  asio::steady_timer deadline_;
  asio::steady_timer kill_;
  std::vector<std::shared_ptr<stream>> streams_;
  std::set<tcp::socket*> second_socks_;
  std::unordered_map<std::string, std::string> keys_;     // Idempotency-Key -> id
  std::deque<std::pair<std::uint64_t, std::string>> history_;  // --replay: every published event
  std::string pending_;
  std::uint64_t pending_seq_ = 0;
  std::uint64_t flushed_seq_ = 0;
  bool flush_posted_ = false;
  std::uint64_t posts_ = 0;
  std::uint64_t stored_ = 0;
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
  app.add_option("--hangup-every", cfg.hangup_every, "Store every Nth new message, then close mid-answer");
  app.add_option("--unknown-every", cfg.unknown_every,
                 "Store every Nth new message, then answer 503 naming its id (outcome unknown)");
  app.add_option("--dup-content-every", cfg.dup_content_every, "Store every Nth new message twice, under two ids");
  app.add_option("--heartbeat", cfg.heartbeat_s, "Seconds between keep-alive comments");
  app.add_option("--max-seconds", cfg.max_seconds, "Exit after this long");
  app.add_option("--idle-close-ms", cfg.idle_close_ms, "Close a connection that sends no request for this long");
  app.add_flag("--two-ports", cfg.two_ports, "Also listen on a second port, on the same feed");
  app.add_option("--kill-second-after", cfg.kill_second_after_s,
                 "Seconds after which the second port closes with all its connections");
  app.add_flag("--replay", cfg.replay, "Keep every event and replay the missed ones to a Last-Event-ID");
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
  if (auto p2 = srv.port2()) std::cout << "port2 " << *p2 << std::endl;
  asio::signal_set stop(ioc, SIGINT, SIGTERM);
  stop.async_wait([&](error_code, int) { ioc.stop(); });
  ioc.run();
  return 0;
}
