#include <memory>

#include <boost/beast/http/field.hpp>
#include <fmt/format.h>

#include "http/handlers/handlers.h"
#include "http/request_checks.h"

namespace feed::http {

// web/, embedded at build time (see cmake/embed_text.cmake); the hashes are
// SHA-256 prefixes the build computes (src/http/CMakeLists.txt).
extern const std::string_view kWebIndexHtml;
extern const std::string_view kWebAppJs;
extern const std::string_view kWebStyleCss;

namespace {

namespace bhttp = beast::http;

// The page loads nothing but its own script and styles and talks only to
// this server. Without 'unsafe-inline' no injected handler or inline script
// can run, and with Trusted Types a string assigned to innerHTML or the like
// throws: message text reaches the page as text or not at all.
constexpr std::string_view kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'";

// The page names its assets by hash, so it must be revalidated (a cheap 304)
// for a new build to show up; an asset under a hashed name never changes.
constexpr std::string_view kRevalidate = "no-cache";
constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";

// If-None-Match is "*" or a list of entity tags, compared weakly (RFC 9110
// §13.1.2): a W/ prefix does not matter. Several header lines form one list.
bool none_match_fails(const request& req, std::string_view etag) {
  const auto [first, last] = req.equal_range(bhttp::field::if_none_match);
  for (auto field = first; field != last; ++field) {
    std::string_view list = field->value();
    while (!list.empty()) {
      const auto comma = list.find(',');
      auto tag = trim_ows(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      if (tag == "*") return true;
      if (tag.starts_with("W/")) tag.remove_prefix(2);
      if (tag == etag) return true;
    }
  }
  return false;
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::string quoted(std::string_view hash) { return fmt::format("\"{}\"", hash); }

}  // namespace

std::vector<web_asset> web_page_assets() {
  const std::string app = fmt::format("/app.{}.js", FEED_WEB_APP_HASH);
  const std::string style = fmt::format("/style.{}.css", FEED_WEB_STYLE_HASH);
  // web/index.html refers to its files by their plain names, so that it
  // reads as what it is; here they get the names the server gives them.
  std::string page = replace_all(std::string(kWebIndexHtml), "\"/app.js\"", quoted(app));
  page = replace_all(std::move(page), "\"/style.css\"", quoted(style));
  return {
      {"/", "text/html; charset=utf-8", std::move(page), quoted(FEED_WEB_PAGE_HASH), std::string(kRevalidate)},
      {app, "text/javascript; charset=utf-8", std::string(kWebAppJs), quoted(FEED_WEB_APP_HASH),
       std::string(kImmutable)},
      {style, "text/css; charset=utf-8", std::string(kWebStyleCss), quoted(FEED_WEB_STYLE_HASH),
       std::string(kImmutable)},
  };
}

response web_asset_response(const request& req, const web_asset& a) {
  const bool unchanged = none_match_fails(req, a.etag);
  response res{unchanged ? status::not_modified : status::ok, req.version()};
  res.set(bhttp::field::etag, a.etag);
  res.set(bhttp::field::cache_control, a.cache_control);
  res.set(bhttp::field::server, "feed-api");
  if (unchanged) return res;
  res.set(bhttp::field::content_type, a.content_type);
  res.set("Content-Security-Policy", kPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.body() = a.body;
  return res;
}

void add_page_routes(router& r) {
  for (auto& asset : web_page_assets()) {
    auto shared = std::make_shared<const web_asset>(std::move(asset));
    r.add(verb::get, shared->path, [shared](request_context& ctx) -> asio::awaitable<response> {
      co_return web_asset_response(ctx.req, *shared);
    });
  }
}

}  // namespace feed::http
