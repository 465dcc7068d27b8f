// Test helper: a TCP proxy on 127.0.0.1 in front of a real server that can
// be frozen. Frozen, it keeps every connection open and accepts new ones,
// but passes no byte either way: to a client, the server hangs as a paused
// VM or a stopped process does (the kernel still answers, nothing else).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <thread>

namespace feed::test_support {

class freezable_proxy {
 public:
  // receive_buffer (bytes; 0: the kernel's autotuned default, up to tens of
  // MB on loopback) bounds what a client can send to a frozen proxy before
  // its own sending blocks.
  explicit freezable_proxy(std::uint16_t target_port, int receive_buffer = 0) : target_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    // Set before listen() so that accepted sockets inherit it.
    if (receive_buffer > 0) ::setsockopt(listener_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in addr = loopback(0);
    socklen_t len = sizeof addr;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listener_, 64);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~freezable_proxy() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    std::lock_guard lock(mu_);
    for (auto& t : pumps_) t.join();
  }

  freezable_proxy(const freezable_proxy&) = delete;
  freezable_proxy& operator=(const freezable_proxy&) = delete;

  std::uint16_t port() const { return port_; }
  void freeze() { frozen_ = true; }
  void thaw() { frozen_ = false; }

 private:
  static sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    return addr;
  }

  void accept_loop() {
    while (!stopping_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = loopback(target_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      std::lock_guard lock(mu_);
      pumps_.emplace_back([this, client, server] { pump(client, server); });
    }
  }

  // Copies bytes both ways until either side closes or the proxy stops;
  // while frozen, reads nothing (what is sent waits in the kernel).
  void pump(int a, int b) {
    char buf[16384];
    while (!stopping_) {
      if (frozen_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(fds, 2, 20) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2 && !closed; ++i) {
        if (!fds[i].revents) continue;
        const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
        closed = n <= 0 || ::send(fds[1 - i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n;
      }
      if (closed) break;
    }
    ::close(a);
    ::close(b);
  }

  const std::uint16_t target_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> frozen_{false};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::thread> pumps_;  // GUARDED_BY(mu_)
};

}  // namespace feed::test_support
