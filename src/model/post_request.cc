#include "model/post_request.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include <boost/container/small_vector.hpp>
#include <boost/json/array.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/string.hpp>
#include <fmt/format.h>

#include "model/utf8.h"

namespace feed {
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

using key_list = boost::container::small_vector<std::string, 4>;

// What the top-level object holds under one of the two keys a post needs.
struct field {
  enum kind_t : unsigned char { absent, null, string, other };
  kind_t kind = absent;
  std::string text;  // the decoded string, when kind is string
};

// Parse events of a post body, read as the parser makes its one pass: no
// tree is built. The body is a post only as a whole, so every event returns
// true and the parse always runs to the end: a syntax error after the
// fields, or anywhere, decides the answer before anything gathered here.
//
// A key given twice in any object, at any depth, is refused: a parser that
// keeps the last of duplicate keys (Boost.JSON's tree does) and a proxy or
// log reader that takes the first would disagree on who posted what.
class post_reader {
 public:
  // A tree's own limits (boost::json::parser's handler), so that a body
  // past one fails with the error it always did.
  static constexpr std::size_t max_object_size = boost::json::object::max_size();
  static constexpr std::size_t max_array_size = boost::json::array::max_size();
  static constexpr std::size_t max_key_size = boost::json::string::max_size();
  static constexpr std::size_t max_string_size = boost::json::string::max_size();
  using ec_t = boost::system::error_code;
  using sv = boost::json::string_view;

  post_reader() = default;
  // field_ points into the reader itself.
  post_reader(const post_reader&) = delete;
  post_reader& operator=(const post_reader&) = delete;

  bool root_is_object() const { return root_is_object_; }
  // A key that some object has twice, if any (see find_repeated).
  const std::optional<std::string>& duplicate() const { return duplicate_; }
  field& user_id() { return user_id_; }
  field& content() { return content_; }

  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_object_begin(ec_t&) {
    if (depth_ == 0) root_is_object_ = true;
    value_is(field::other);
    object_keys_.push_back(keys_.size());
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, ec_t&) {
    const auto first = keys_.begin() + static_cast<std::ptrdiff_t>(object_keys_.back());
    object_keys_.pop_back();
    if (!duplicate_) find_repeated(first);
    keys_.erase(first, keys_.end());
    --depth_;
    return true;
  }
  bool on_array_begin(ec_t&) {
    value_is(field::other);
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, ec_t&) { return --depth_, true; }
  bool on_key_part(sv s, std::size_t, ec_t&) { return key_.append(s.data(), s.size()), true; }
  bool on_key(sv s, std::size_t, ec_t&) {
    // Most keys arrive whole; only a long or escaped one comes in parts.
    if (key_.empty()) {
      keys_.emplace_back(s.data(), s.size());
    } else {
      key_.append(s.data(), s.size());
      keys_.push_back(std::move(key_));
      key_.clear();
    }
    if (depth_ == 1) {
      const std::string& k = keys_.back();
      field_ = k == "user_id" ? &user_id_ : k == "content" ? &content_ : nullptr;
      // A repeated key refuses the post, so which of its values is kept
      // does not matter; the last, as in a tree. (Its kind is set by the
      // value, which follows.)
      if (field_) field_->text.clear();
    }
    return true;
  }
  bool on_string_part(sv s, std::size_t, ec_t&) {
    if (at_field()) field_->text.append(s.data(), s.size());
    return true;
  }
  bool on_string(sv s, std::size_t, ec_t&) {
    if (at_field()) {
      field_->text.append(s.data(), s.size());
      field_->kind = field::string;
    }
    return true;
  }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) { return value_is(field::other), true; }
  bool on_uint64(std::uint64_t, sv, ec_t&) { return value_is(field::other), true; }
  bool on_double(double, sv, ec_t&) { return value_is(field::other), true; }
  bool on_bool(bool, ec_t&) { return value_is(field::other), true; }
  bool on_null(ec_t&) { return value_is(field::null), true; }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }

 private:
  // Whether the value being read is the top-level object's, under a key a
  // post needs: values nested deeper are not the fields.
  bool at_field() const { return depth_ == 1 && field_; }
  void value_is(field::kind_t k) {
    if (at_field()) field_->kind = k;
  }

  // Keeps the smallest key that [first, end of keys_) holds more than once.
  // Which key the error names follows from where it is looked for: the
  // objects in the order they close (inner ones first), and in each the
  // smallest repeated key, the empty key too.
  void find_repeated(key_list::iterator first) {
    const auto last = keys_.end();
    // A post's object has two keys: comparing each pair costs less than
    // sorting, and quadratic time is kept to small objects.
    if (last - first <= 8) {
      const std::string* least = nullptr;
      for (auto i = first; i != last; ++i)
        for (auto j = i + 1; j != last; ++j)
          if (*i == *j && (!least || *i < *least)) least = &*i;
      if (least) duplicate_ = *least;
      return;
    }
    std::sort(first, last);
    if (auto it = std::adjacent_find(first, last); it != last) duplicate_ = *it;
  }

  // Keys of the objects being read, outer objects' first; object_keys_ has
  // where each open object's keys start. Inline capacity for a post's two
  // keys (short enough for std::string's own buffer): a valid post costs the
  // duplicate check no heap allocation.
  key_list keys_;
  boost::container::small_vector<std::size_t, 4> object_keys_;
  std::string key_;  // a key arriving in parts
  std::optional<std::string> duplicate_;
  std::size_t depth_ = 0;  // objects and arrays open
  bool root_is_object_ = false;
  field* field_ = nullptr;  // the field the top-level object's last key names, if any
  field user_id_;
  field content_;
};

// Quotes the key only when it is short and valid UTF-8 (an escape can
// decode to bytes that are not), so the error stays readable, valid JSON.
std::string duplicate_key_error(const std::string& key) {
  if (key.size() <= 64 && utf8_code_points(key))
    return fmt::format("the JSON object has the key \"{}\" more than once", key);
  return "the JSON object has a key more than once";
}

// What is wrong with a field of the top-level object, or "".
std::string field_error(const field& f, const char* name) {
  if (f.kind == field::absent || f.kind == field::null) return fmt::format("missing field: {}", name);
  if (f.kind != field::string) return fmt::format("{} must be a string", name);
  return {};
}

}  // namespace

std::string check_author(std::string_view user_id, std::size_t max_bytes) {
  if (auto e = check_user_id(user_id, max_bytes); !e.empty()) return e;
  if (is_blank_to_reader(user_id)) return "user_id must not be only whitespace or invisible characters";
  return {};
}

std::string check_user_id(std::string_view user_id, std::size_t max_bytes) {
  if (user_id.empty()) return "user_id must not be empty";
  if (user_id.size() > max_bytes) return fmt::format("user_id is longer than {} bytes", max_bytes);
  // Any text the reference takes (e-mail addresses, names with spaces or
  // accents, "user$i"), but no control character: user ids are shown, sent
  // as Kafka keys and named in query strings, where one would mislead.
  if (!utf8_code_points(user_id)) return "user_id is not valid UTF-8";
  if (user_id.find_first_of("\t\n") != std::string_view::npos || first_forbidden_control(user_id))
    return "user_id must not contain control characters";
  return {};
}

std::string check_content(std::string_view content, std::size_t max_code_points) {
  const auto scan = scan_text(content);
  const auto& points = scan.code_points;
  // Escapes such as "\ud800" decode to bytes that are not UTF-8.
  if (!points) return "content is not valid UTF-8 (lone surrogate escape?)";
  if (*points == 0) return "content must not be empty";
  if (const auto& c = scan.first_control)
    return fmt::format("content must not contain control characters (found U+{:04X}); only tab and line feed "
                       "(\\n) are allowed",
                       static_cast<std::uint32_t>(*c));
  if (is_blank_to_reader(content)) return "content must not be only whitespace or invisible characters";
  if (*points > max_code_points)
    return fmt::format("content is {} characters; the limit is {}", *points, max_code_points);
  return {};
}

result<post_request> parse_post_request(std::string_view body, const post_limits& limits) {
  // A byte order mark is noise some clients put before UTF-8 JSON.
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  // The raw bytes are checked here, not by the parser: Boost.JSON would
  // refuse bad UTF-8 with a generic syntax error, and clients deserve to be
  // told what is wrong. Its own check, which then finds nothing, is turned
  // off: it decodes every byte of a string that is not ASCII and cost more
  // than the rest of the parse.
  if (!utf8_code_points(body)) return error(errc::invalid_input, "request body is not valid UTF-8");

  boost::json::parse_options opts;
  opts.max_depth = 8;
  opts.allow_invalid_utf8 = true;
  boost::json::basic_parser<post_reader> parser(opts);
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  // What boost::json::parse adds to the parser's own checks.
  if (!ec && used < body.size()) ec = boost::json::error::extra_data;
  if (ec) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
      return error(errc::invalid_input, "request body is empty; expected a JSON object");
    if (ec == boost::json::error::illegal_leading_surrogate || ec == boost::json::error::illegal_trailing_surrogate ||
        has_surrogate_escape(body))
      return error(errc::invalid_input,
                   "invalid JSON: a \\u escape encodes a lone UTF-16 surrogate, which is not valid UTF-8");
    return error(errc::invalid_input, fmt::format("invalid JSON: {}", ec.message()));
  }
  post_reader& read = parser.handler();
  if (!read.root_is_object())
    return error(errc::invalid_input, "request body must be a JSON object with user_id and content");
  if (const auto& key = read.duplicate()) return error(errc::invalid_input, duplicate_key_error(*key));
  if (auto e = field_error(read.user_id(), "user_id"); !e.empty()) return error(errc::invalid_input, e);
  if (auto e = field_error(read.content(), "content"); !e.empty()) return error(errc::invalid_input, e);

  post_request req{std::move(read.user_id().text), std::move(read.content().text)};
  if (auto e = check_author(req.user_id, limits.max_user_id_bytes); !e.empty()) return error(errc::invalid_input, e);
  if (auto e = check_content(req.content, limits.max_content_code_points); !e.empty())
    return error(errc::invalid_input, e);
  return req;
}

}  // namespace feed
