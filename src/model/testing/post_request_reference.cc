#include "model/testing/post_request_reference.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <boost/container/small_vector.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <fmt/format.h>

#include "model/utf8.h"

namespace feed::test_support {
namespace {

// Boost.JSON reports a lone high surrogate escape as a plain syntax error;
// this lets the error name the real problem.
bool has_surrogate_escape(std::string_view body) {
  for (auto p = body.find("\\u"); p != std::string_view::npos; p = body.find("\\u", p + 2)) {
    if (p + 3 < body.size() && (body[p + 2] == 'd' || body[p + 2] == 'D') &&
        std::string_view("89abcdefABCDEF").find(body[p + 3]) != std::string_view::npos)
      return true;
  }
  return false;
}

// Parse events that only collect each object's keys (unescaped), to find a
// key given twice. Boost.JSON keeps the last of duplicate keys, while a
// proxy or log reader may take the first: the two would disagree on who
// posted what.
class duplicate_key_finder {
 public:
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  using ec_t = boost::system::error_code;
  using sv = boost::json::string_view;

  const std::optional<std::string>& duplicate() const { return duplicate_; }

  bool on_object_begin(ec_t&) { return open_.emplace_back(), true; }
  bool on_object_end(std::size_t, ec_t&) {
    auto& keys = open_.back();
    std::sort(keys.begin(), keys.end());
    if (auto it = std::adjacent_find(keys.begin(), keys.end()); it != keys.end() && !duplicate_)
      duplicate_ = *it;
    open_.pop_back();
    return true;
  }
  bool on_key_part(sv s, std::size_t, ec_t&) { return key_.append(s.data(), s.size()), true; }
  bool on_key(sv s, std::size_t, ec_t&) {
    key_.append(s.data(), s.size());
    open_.back().push_back(std::move(key_));
    key_.clear();
    return true;
  }
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_string_part(sv, std::size_t, ec_t&) { return true; }
  bool on_string(sv, std::size_t, ec_t&) { return true; }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, sv, ec_t&) { return true; }
  bool on_double(double, sv, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }

 private:
  // Keys of each object being parsed. Inline capacity for a post's one
  // object of two keys (short enough for std::string's own buffer): a valid
  // post costs this check no heap allocation.
  boost::container::small_vector<boost::container::small_vector<std::string, 4>, 2> open_;
  std::string key_;
  std::optional<std::string> duplicate_;
};

// The first key that some object of `json` (already known to parse) has
// twice, if any.
std::optional<std::string> duplicate_key(std::string_view json, const boost::json::parse_options& opts) {
  boost::json::basic_parser<duplicate_key_finder> p(opts);
  boost::system::error_code ec;
  p.write_some(false, json.data(), json.size(), ec);
  return p.handler().duplicate();
}

// Quotes the key only when it is short and valid UTF-8 (an escape can
// decode to bytes that are not), so the error stays readable, valid JSON.
std::string duplicate_key_error(const std::string& key) {
  if (key.size() <= 64 && utf8_code_points(key))
    return fmt::format("the JSON object has the key \"{}\" more than once", key);
  return "the JSON object has a key more than once";
}

}  // namespace

result<post_request> parse_post_request_reference(std::string_view body, const post_limits& limits) {
  // A byte order mark is noise some clients put before UTF-8 JSON.
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  // Check the raw bytes first: Boost.JSON also rejects bad UTF-8, but with a
  // generic syntax error, and clients deserve to be told what is wrong.
  if (!utf8_code_points(body)) return error(errc::invalid_input, "request body is not valid UTF-8");

  boost::json::parse_options opts;
  opts.max_depth = 8;
  boost::system::error_code ec;
  // The parsed tree lives only in this call: a monotonic resource over a
  // stack buffer holds a usual post's tree (object, table, strings) without
  // touching the heap; a larger body spills over to the heap as before.
  unsigned char scratch[4096];
  boost::json::monotonic_resource tree_memory(scratch, sizeof scratch);
  boost::json::value v = boost::json::parse(body, ec, &tree_memory, opts);
  if (ec) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
      return error(errc::invalid_input, "request body is empty; expected a JSON object");
    if (ec == boost::json::error::illegal_leading_surrogate || ec == boost::json::error::illegal_trailing_surrogate ||
        has_surrogate_escape(body))
      return error(errc::invalid_input,
                   "invalid JSON: a \\u escape encodes a lone UTF-16 surrogate, which is not valid UTF-8");
    return error(errc::invalid_input, fmt::format("invalid JSON: {}", ec.message()));
  }
  const auto* obj = v.if_object();
  if (!obj) return error(errc::invalid_input, "request body must be a JSON object with user_id and content");
  if (auto key = duplicate_key(body, opts)) return error(errc::invalid_input, duplicate_key_error(*key));

  auto string_field = [&](const char* name, std::string& out) -> std::string {
    const auto* f = obj->if_contains(name);
    if (!f || f->is_null()) return fmt::format("missing field: {}", name);
    const auto* s = f->if_string();
    if (!s) return fmt::format("{} must be a string", name);
    out.assign(s->data(), s->size());
    return {};
  };

  post_request req;
  if (auto e = string_field("user_id", req.user_id); !e.empty()) return error(errc::invalid_input, e);
  if (auto e = string_field("content", req.content); !e.empty()) return error(errc::invalid_input, e);

  if (auto e = check_author(req.user_id, limits.max_user_id_bytes); !e.empty()) return error(errc::invalid_input, e);
  if (auto e = check_content(req.content, limits.max_content_code_points); !e.empty())
    return error(errc::invalid_input, e);
  return req;
}

}  // namespace feed::test_support
