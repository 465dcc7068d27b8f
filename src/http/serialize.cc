#include "http/serialize.h"

namespace feed::http {
namespace {

void append(head_buffer& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

}  // namespace

void append_head(const response& res, head_buffer& out) {
  const unsigned v = res.version(), code = res.result_int();
  const char status_line[] = {'H', 'T', 'T', 'P', '/', static_cast<char>('0' + v / 10 % 10), '.',
                              static_cast<char>('0' + v % 10), ' ', static_cast<char>('0' + code / 100 % 10),
                              static_cast<char>('0' + code / 10 % 10), static_cast<char>('0' + code % 10), ' '};
  append(out, {status_line, sizeof status_line});
  append(out, res.reason());
  append(out, "\r\n");
  for (const auto& field : res) {
    append(out, field.name_string());
    append(out, ": ");
    append(out, field.value());
    append(out, "\r\n");
  }
  append(out, "\r\n");
}

}  // namespace feed::http
