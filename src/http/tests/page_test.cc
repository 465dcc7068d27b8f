#include <stdexcept>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <gtest/gtest.h>

#include "http/handlers/handlers.h"
#include "http/tests/dispatch.h"

namespace feed::http {
namespace {

namespace bhttp = beast::http;

// Through the router, as the server calls it, so HEAD is covered too.
class PageTest : public ::testing::Test, protected testing::routed {
 protected:
  PageTest() : assets(web_page_assets()) { add_page_routes(routes); }

  response get(std::string_view target, std::vector<std::string> if_none_match = {}, verb method = verb::get) {
    request req{method, target, 11};
    for (auto& tag : if_none_match) req.insert(bhttp::field::if_none_match, tag);
    return dispatch(req);
  }

  const web_asset& asset(std::string_view suffix) const {
    for (const auto& a : assets)
      if (a.path.ends_with(suffix)) return a;
    throw std::runtime_error("no asset ending in " + std::string(suffix));
  }

  std::vector<web_asset> assets;
};

TEST_F(PageTest, ThePageNamesItsAssetsByContentHash) {
  ASSERT_EQ(assets.size(), 3u);
  const auto& page = asset("/");
  const auto& app = asset(".js");
  const auto& style = asset(".css");
  EXPECT_EQ(page.path, "/");
  EXPECT_TRUE(app.path.starts_with("/app.")) << app.path;
  EXPECT_TRUE(style.path.starts_with("/style.")) << style.path;
  EXPECT_NE(page.body.find("\"" + app.path + "\""), std::string::npos);
  EXPECT_NE(page.body.find("\"" + style.path + "\""), std::string::npos);
  EXPECT_EQ(page.body.find("\"/app.js\""), std::string::npos);
  EXPECT_EQ(page.body.find("\"/style.css\""), std::string::npos);
  // Each ETag is the hash in quotes; an asset's is the one in its name.
  for (const auto& a : assets) {
    ASSERT_GE(a.etag.size(), 18u) << a.path;
    EXPECT_EQ(a.etag.front(), '"');
    EXPECT_EQ(a.etag.back(), '"');
  }
  EXPECT_NE(app.path.find(app.etag.substr(1, app.etag.size() - 2)), std::string::npos);
  EXPECT_NE(style.path.find(style.etag.substr(1, style.etag.size() - 2)), std::string::npos);
}

TEST_F(PageTest, ThePageIsRevalidatedAndLocksScriptsToItsOwn) {
  const auto res = get("/");
  EXPECT_EQ(res.result(), status::ok);
  EXPECT_EQ(res[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(res[bhttp::field::etag], asset("/").etag);
  EXPECT_EQ(res[bhttp::field::cache_control], "no-cache");
  const std::string csp(res["Content-Security-Policy"]);
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("require-trusted-types-for 'script'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(res.body(), asset("/").body);
}

TEST_F(PageTest, HashedAssetsAreCachedForGood) {
  for (std::string_view suffix : {".js", ".css"}) {
    const auto& a = asset(suffix);
    const auto res = get(a.path);
    EXPECT_EQ(res.result(), status::ok) << a.path;
    EXPECT_EQ(res[bhttp::field::cache_control], "public, max-age=31536000, immutable");
    EXPECT_EQ(res[bhttp::field::etag], a.etag);
    EXPECT_EQ(res[bhttp::field::content_type], a.content_type);
    EXPECT_EQ(res.body(), a.body);
  }
  EXPECT_EQ(asset(".js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(asset(".css").content_type, "text/css; charset=utf-8");
}

TEST_F(PageTest, AMatchingIfNoneMatchIs304WithTheValidatorsAndNoBody) {
  for (const auto& a : assets) {
    const auto res = get(a.path, {a.etag});
    EXPECT_EQ(res.result(), status::not_modified) << a.path;
    EXPECT_EQ(res[bhttp::field::etag], a.etag);
    EXPECT_EQ(res[bhttp::field::cache_control], a.cache_control);
    EXPECT_TRUE(res.body().empty());
  }
}

TEST_F(PageTest, IfNoneMatchComparesWeaklyAndReadsLists) {
  const std::string tag = asset("/").etag;
  const std::vector<std::vector<std::string>> match = {
      {"W/" + tag}, {"\"old\", " + tag}, {"\"old\"," + tag + ",\"older\""}, {"*"}, {"\"old\"", tag}, {" " + tag + " "}};
  for (const auto& header : match) EXPECT_EQ(get("/", header).result(), status::not_modified) << header.front();
  const std::vector<std::vector<std::string>> differ = {
      {"\"old\""}, {tag.substr(1, tag.size() - 2)}, {"W/\"old\", \"older\""}, {""}, {tag + "x"}};
  for (const auto& header : differ) EXPECT_EQ(get("/", header).result(), status::ok) << header.front();
}

TEST_F(PageTest, HeadHasTheGetHeadersAndNoBody) {
  const auto head = get("/", {}, verb::head);
  EXPECT_EQ(head.result(), status::ok);
  EXPECT_EQ(head[bhttp::field::content_length], std::to_string(asset("/").body.size()));
  EXPECT_EQ(head[bhttp::field::etag], asset("/").etag);
  EXPECT_TRUE(head.body().empty());
  const auto not_modified = get("/", {asset("/").etag}, verb::head);
  EXPECT_EQ(not_modified.result(), status::not_modified);
  EXPECT_EQ(not_modified.count(bhttp::field::content_length), 0u);
}

TEST_F(PageTest, AnAssetUnderAnotherHashIsNotFound) {
  EXPECT_EQ(get("/app.js").result(), status::not_found);
  EXPECT_EQ(get("/app.0000000000000000.js").result(), status::not_found);
}

}  // namespace
}  // namespace feed::http
