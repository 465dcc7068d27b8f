#include "bot/content.h"

#include <array>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace feed::bot {
namespace {

constexpr std::array<std::string_view, 96> kWords = {
    "the", "a", "feed", "river", "morning", "coffee", "server", "cloud", "quiet", "bright",
    "slow", "fast", "little", "big", "green", "blue", "red", "golden", "tiny", "ancient",
    "cat", "dog", "fox", "owl", "train", "bicycle", "garden", "city", "mountain", "ocean",
    "book", "song", "idea", "plan", "bug", "patch", "release", "deploy", "queue", "message",
    "runs", "jumps", "sings", "waits", "builds", "breaks", "fixes", "reads", "writes", "ships",
    "under", "over", "near", "beyond", "with", "without", "before", "after", "around", "through",
    "today", "tonight", "again", "finally", "maybe", "surely", "quickly", "gently", "rarely", "always",
    "and", "but", "so", "because", "while", "then", "yet", "or", "if", "when",
    "café", "naïve", "über", "jalapeño", "smörgåsbord", "déjà", "vu", "résumé", "piñata", "coöperate",
    "latency", "throughput", "tail", "percentile", "backlog", "stream"};

constexpr std::array<char, 4> kEnds = {'.', '.', '!', '?'};

// splitmix64: cheap, well-mixed, and deterministic for a given (seed, i).
struct rng {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) noexcept { return static_cast<std::size_t>(next() % n); }
};

void append_sentence(std::string& out, rng& r) {
  const std::size_t words = 3 + r.below(10);
  for (std::size_t w = 0; w < words; ++w) {
    if (w > 0) out.push_back(' ');
    const std::size_t at = out.size();
    out.append(kWords[r.below(kWords.size())]);
    if (w == 0 && out[at] >= 'a' && out[at] <= 'z') out[at] = static_cast<char>(out[at] - 'a' + 'A');
  }
  out.push_back(kEnds[r.below(kEnds.size())]);
}

// Cuts `s` to at most `bytes` without splitting a UTF-8 sequence.
void truncate_utf8(std::string& s, std::size_t from, std::size_t bytes) {
  if (s.size() - from <= bytes) return;
  std::size_t cut = from + bytes;
  while (cut > from && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  while (s.size() > from && s.back() == ' ') s.pop_back();
}

}  // namespace

std::string make_run_id(std::uint64_t entropy) {
  rng r{entropy};
  return fmt::format("{:08x}", static_cast<std::uint32_t>(r.next()));
}

std::string token_prefix(std::string_view run_id) { return fmt::format("#t{}-", run_id); }

std::optional<std::uint64_t> find_token(std::string_view text, std::string_view prefix) noexcept {
  std::size_t at = 0;
  while ((at = text.find(prefix, at)) != std::string_view::npos) {
    const char* b = text.data() + at + prefix.size();
    const char* e = text.data() + text.size();
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec == std::errc{} && p != b) return v;
    at += prefix.size();
  }
  return std::nullopt;
}

std::optional<std::string_view> find_message_id(std::string_view json) noexcept {
  constexpr std::string_view kKey = R"("id")";
  std::size_t at = 0;
  while ((at = json.find(kKey, at)) != std::string_view::npos) {
    std::size_t p = at + kKey.size();
    while (p < json.size() && (json[p] == ' ' || json[p] == ':')) ++p;  // `"id" : "x"` too
    if (p > at + kKey.size() && p < json.size() && json[p] == '"' &&
        json.substr(at + kKey.size(), p - at - kKey.size()).find(':') != std::string_view::npos) {
      const auto end = json.find('"', p + 1);
      if (end == std::string_view::npos) return std::nullopt;
      return json.substr(p + 1, end - p - 1);
    }
    at += kKey.size();
  }
  return std::nullopt;
}

std::uint64_t id_hash(std::string_view id) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : id) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h == 0 ? 1 : h;
}

void make_content(std::string& out, std::uint64_t seed, std::uint64_t i, std::size_t target_bytes,
                  std::string_view prefix) {
  rng r{seed * 0x2545F4914F6CDD1DULL ^ (i + 1) * 0x9E3779B97F4A7C15ULL};
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, i);
  (void)ec;
  const std::size_t token_len = prefix.size() + static_cast<std::size_t>(end - digits);

  // Text bytes before " <token>"; bytes >= code points, so a byte budget
  // keeps the result within the code-point limit.
  const std::size_t max_text = kMaxContentCodePoints > token_len + 1 ? kMaxContentCodePoints - token_len - 1 : 0;
  std::size_t budget;
  if (target_bytes == 0) {
    budget = max_text;
  } else {
    budget = target_bytes > token_len + 1 ? std::min(target_bytes - token_len - 1, max_text) : 0;
  }

  const std::size_t start = out.size();
  if (budget > 0) {
    if (target_bytes == 0) {
      const std::size_t sentences = 1 + r.below(3);
      for (std::size_t s = 0; s < sentences; ++s) {
        if (s > 0) out.push_back(' ');
        append_sentence(out, r);
      }
    } else {
      while (out.size() - start < budget) {
        if (out.size() > start) out.push_back(' ');
        append_sentence(out, r);
      }
    }
    truncate_utf8(out, start, budget);
  }
  if (out.size() > start) out.push_back(' ');
  out.append(prefix);
  out.append(digits, end);
}

void make_post_body(std::string& out, std::string_view user_id, std::string_view content) {
  out.append(R"({"user_id":")");
  out.append(user_id);
  out.append(R"(","content":")");
  out.append(content);
  out.append(R"("})");
}

std::size_t count_code_points(std::string_view s) noexcept {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace feed::bot
