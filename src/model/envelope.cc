#include "model/envelope.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "model/message_id.h"
#include "model/message_json.h"
#include "model/utf8.h"
#include "model/word_bytes.h"

namespace feed {

// The encoder writes the text itself instead of building a boost::json
// object and serializing it: that took about fifteen heap allocations per
// record (every key and string, the nested data object, the formatted
// times, the result), twice per post in Kafka mode. The bytes must stay
// what boost::json::serialize writes (the envelope tests compare them);
// data is the message's own JSON, and the envelope's fields are escaped by
// the same writer, so there is one escaper to keep equal to boost::json's.
void encode_envelope_into(std::string& out, const message& m, std::string_view event_type, bool with_seq) {
  out.clear();
  // The fixed part is 205 bytes, 232 with the longest seq; escapes may add more.
  out.reserve(256 + m.id.size() + m.user_id.size() + m.content.size() + event_type.size());
  const timestamp now = now_utc();
  out.append(R"({"id":")");
  append_uuid7(out, now);
  out.append(R"(","event_type":)");
  append_json_string(out, event_type);
  out.append(R"(,"timestamp":)");
  append_json_time(out, now);
  // The version is a constant of ours with nothing to escape: written as it
  // is, which spares a sizing and an escaping pass per record.
  static_assert(std::ranges::none_of(envelope_version,
                                     [](unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }));
  out.append(R"(,"version":")").append(envelope_version).append(R"(","data":)");
  append_json(out, m, with_seq);
  out.push_back('}');
}

std::string encode_envelope(const message& m, std::string_view event_type, bool with_seq) {
  std::string out;
  encode_envelope_into(out, m, event_type, with_seq);
  return out;
}

namespace {

error bad(std::string what) { return error(errc::corrupt, "envelope " + std::move(what)); }

// The string at `key`, nullptr when absent; an error when present but not a string.
result<const boost::json::string*> optional_string(const boost::json::object& o, std::string_view key,
                                                   std::string_view where) {
  const auto* v = o.if_contains(key);
  if (!v) return static_cast<const boost::json::string*>(nullptr);
  if (const auto* s = v->if_string()) return s;
  return bad(fmt::format("{}{} is not a string", where, key));
}

// `may_be_empty`: the reference's API accepts a post without a user_id and
// publishes it with "", and the reference's worker stores it; ours does too.
result<std::string> required_string(const boost::json::object& o, std::string_view key, bool may_be_empty = false) {
  auto s = optional_string(o, key, "data.");
  if (!s) return s.err();
  if (!*s) return bad(fmt::format("data.{} is missing", key));
  if ((*s)->empty() && !may_be_empty) return bad(fmt::format("data.{} is empty", key));
  return std::string(**s);
}

// The time at `key`; nullopt when absent.
result<std::optional<timestamp>> optional_time(const boost::json::object& o, std::string_view key,
                                               std::string_view where) {
  auto s = optional_string(o, key, where);
  if (!s) return s.err();
  if (!*s) return std::optional<timestamp>{};
  auto t = parse_rfc3339(**s);
  if (!t) return bad(fmt::format("{}{} is not an RFC 3339 time: \"{}\"", where, key, std::string_view(**s)));
  return t;
}

result<seq_t> optional_seq(const boost::json::object& o) {
  const auto* v = o.if_contains("seq");
  if (!v) return seq_t{0};
  std::int64_t n;
  if (const auto* i = v->if_int64()) n = *i;
  else if (const auto* u = v->if_uint64(); u && *u <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    n = static_cast<std::int64_t>(*u);
  else return bad("data.seq is not a 64-bit integer");
  if (n < 0) return bad(fmt::format("data.seq is negative ({})", n));
  return seq_t{n};
}

// Reads a record of exactly the shape encode_envelope writes (these keys in
// this order, no whitespace, no escapes, seq a plain integer), which is
// nearly every record, in one pass and without building a JSON tree: the
// tree cost about a microsecond per record, paid by the worker's consumer
// and again by every subscriber. Anything else, valid or not, gives
// nullopt and is left to the general parser below; what this accepts, that
// would accept and read the same way.
class exact_reader {
 public:
  explicit exact_reader(std::string_view json) : p_(json.data()), end_(json.data() + json.size()) {}

  bool literal(std::string_view s) {
    if (static_cast<std::size_t>(end_ - p_) < s.size() || std::memcmp(p_, s.data(), s.size()) != 0) return false;
    p_ += s.size();
    return true;
  }

  // A JSON string: a view of its bytes in the record, or in `scratch` when
  // it has escapes. The escapes taken are the two-character ones (\" \\ \/
  // \b \f \n \r \t), which encode_envelope writes for quotes, backslashes
  // and common controls; \u escapes go to the general parser. The bytes
  // must be valid UTF-8, as the general parser requires.
  std::optional<std::string_view> string(std::string& scratch) {
    if (p_ == end_ || *p_ != '"') return std::nullopt;
    const char* run = ++p_;
    bool ascii = true, escaped = false;
    for (;; ++p_) {
      skip_plain(ascii);
      if (p_ == end_) return std::nullopt;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c < 0x20) return std::nullopt;
      ascii &= c < 0x80;
      if (c != '\\') continue;
      if (!escaped) {
        // The rest of the record bounds the string: one allocation.
        scratch.clear();
        scratch.reserve(static_cast<std::size_t>(end_ - run));
        escaped = true;
      }
      scratch.append(run, p_);
      if (++p_ == end_) return std::nullopt;
      switch (*p_) {
        case '"': scratch.push_back('"'); break;
        case '\\': scratch.push_back('\\'); break;
        case '/': scratch.push_back('/'); break;
        case 'b': scratch.push_back('\b'); break;
        case 'f': scratch.push_back('\f'); break;
        case 'n': scratch.push_back('\n'); break;
        case 'r': scratch.push_back('\r'); break;
        case 't': scratch.push_back('\t'); break;
        default: return std::nullopt;
      }
      run = p_ + 1;
    }
    std::string_view s(run, static_cast<std::size_t>(p_ - run));
    ++p_;
    if (escaped) {
      scratch.append(s);
      s = scratch;
    }
    if (!ascii && !utf8_code_points(s)) return std::nullopt;
    return s;
  }

  std::optional<timestamp> time(std::string& scratch) {
    const auto s = string(scratch);
    return s ? parse_rfc3339(*s) : std::nullopt;
  }

  // A non-negative integer that certainly fits in 63 bits (at most 18
  // digits, no leading zero).
  std::optional<std::int64_t> small_integer() {
    const auto digit = [this] { return p_ != end_ && *p_ >= '0' && *p_ <= '9'; };
    const char* const first = p_;
    std::int64_t n = 0;
    while (digit() && p_ - first < 18) n = n * 10 + (*p_++ - '0');
    const auto digits = p_ - first;
    if (digits == 0 || digit() || (digits > 1 && *first == '0')) return std::nullopt;
    return n;
  }

  bool at_end() const { return p_ == end_; }

 private:
  // Moves past the bytes that need no attention in a string (not a quote,
  // a backslash or a control), sixteen at a time while sixteen are left,
  // then eight; `ascii` turns false if a byte passed is not ASCII.
  void skip_plain(bool& ascii) {
    using namespace word_bytes;
    while (end_ - p_ >= 16) {
      const block16 b(p_);
      const unsigned stops = b.equal('"') | b.equal('\\') | b.below(0x20);
      if (!stops) {
        ascii &= !b.high();
        p_ += 16;
        continue;
      }
      const unsigned n = static_cast<unsigned>(std::countr_zero(stops));
      ascii &= !(b.high() & bits_before(n));
      p_ += n;
      return;
    }
    while (end_ - p_ >= 8) {
      const std::uint64_t w = load8(p_);
      const std::uint64_t stops = bytes_equal(w, '"') | bytes_equal(w, '\\') | bytes_below(w, 0x20);
      if (!stops) {
        ascii &= !high_bytes(w);
        p_ += 8;
        continue;
      }
      const unsigned n = first_marked(stops);
      if (n) ascii &= !(high_bytes(w) & ((std::uint64_t{1} << (8 * n)) - 1));
      p_ += n;
      return;
    }
    for (; p_ != end_; ++p_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"' || c == '\\' || c < 0x20) return;
      ascii &= c < 0x80;
    }
  }

  const char* p_;
  const char* end_;
};

std::optional<message> decode_exact(std::string_view json, envelope* meta) {
  exact_reader r(json);
  // Where a string with escapes is unescaped; empty (no heap) otherwise.
  std::string id_buf, type_buf, version_buf, data_id_buf, user_buf, content_buf, time_buf;
  std::optional<std::string_view> id, type, version, data_id, user, content;
  std::optional<timestamp> at, created;
  if (!(r.literal(R"({"id":)") && (id = r.string(id_buf)) && r.literal(R"(,"event_type":)") &&
        (type = r.string(type_buf)) && r.literal(R"(,"timestamp":)") && (at = r.time(time_buf)) &&
        r.literal(R"(,"version":)") && (version = r.string(version_buf)) && r.literal(R"(,"data":{"id":)") &&
        (data_id = r.string(data_id_buf)) && r.literal(R"(,"user_id":)") && (user = r.string(user_buf)) &&
        r.literal(R"(,"content":)") && (content = r.string(content_buf)) && r.literal(R"(,"created_at":)") &&
        (created = r.time(time_buf))))
    return std::nullopt;
  std::int64_t seq = 0;
  if (r.literal(R"(,"seq":)")) {
    const auto n = r.small_integer();
    if (!n) return std::nullopt;
    seq = *n;
  }
  if (!r.literal("}}") || !r.at_end() || data_id->empty()) return std::nullopt;
  if (meta) {
    meta->id = *id;
    meta->event_type = *type;
    meta->version = *version;
    meta->at = *at;
  }
  // Content that needed unescaping is taken as it is, not copied again.
  std::string text = content->data() == content_buf.data() ? std::move(content_buf) : std::string(*content);
  return message{std::string(*data_id), std::string(*user), std::move(text), *created, seq_t{seq}};
}

// Both decoders: `meta` receives the envelope's own fields when given; they
// are checked either way, so both accept and refuse the same records.
// Without `fast`, every record goes to the general parser. (One function
// with a flag rather than two: split, decode_exact stopped being inlined
// here and decoding took 5-10% longer.)
result<message> decode(std::string_view json, envelope* meta, bool fast = true) {
  if (fast) {
    if (auto m = decode_exact(json, meta)) return std::move(*m);
  }

  // The tree lives only in this call: build it in a stack buffer (spilling
  // to the heap for large records) instead of one allocation per node.
  unsigned char buffer[4096];
  boost::json::monotonic_resource arena(buffer, sizeof buffer);
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(json, ec, &arena);
  if (ec) return bad(fmt::format("is not valid JSON: {}", ec.message()));
  const auto* o = root.if_object();
  if (!o) return bad("is not a JSON object");

  for (auto [key, out] : {std::pair{"id", meta ? &meta->id : nullptr},
                          {"event_type", meta ? &meta->event_type : nullptr},
                          {"version", meta ? &meta->version : nullptr}}) {
    auto s = optional_string(*o, key, "");
    if (!s) return s.err();
    if (*s && out) *out = std::string(**s);
  }
  auto at = optional_time(*o, "timestamp", "");
  if (!at) return at.err();
  if (meta) meta->at = at->value_or(timestamp{});

  const auto* d = o->if_contains("data");
  if (!d) return bad("has no data");
  const auto* data = d->if_object();
  if (!data) return bad("data is not a JSON object");

  auto id = required_string(*data, "id");
  if (!id) return id.err();
  auto user = required_string(*data, "user_id", /*may_be_empty=*/true);
  if (!user) return user.err();
  // Empty content is the API's to refuse; here only the type matters.
  auto content = optional_string(*data, "content", "data.");
  if (!content) return content.err();
  if (!*content) return bad("data.content is missing");
  auto created = optional_time(*data, "created_at", "data.");
  if (!created) return created.err();
  auto seq = optional_seq(*data);
  if (!seq) return seq.err();

  return message{std::move(*id), std::move(*user), std::string(**content),
                 created->has_value() ? **created : now_utc(), *seq};
}

}  // namespace

result<envelope> decode_envelope(std::string_view json) {
  envelope e;
  auto m = decode(json, &e);
  if (!m) return m.err();
  e.msg = std::move(*m);
  return e;
}

result<envelope> decode_envelope_general(std::string_view json) {
  envelope e;
  auto m = decode(json, &e, false);
  if (!m) return m.err();
  e.msg = std::move(*m);
  return e;
}

result<message> decode_envelope_message(std::string_view json) { return decode(json, nullptr); }

}  // namespace feed
