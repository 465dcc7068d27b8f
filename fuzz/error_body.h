// Every error reaches the client as {"error": "..."}; messages quote input
// (a header, a query value), and the body must stay valid UTF-8 JSON even
// when that input is not (issue 9, defect 8).
#pragma once

#include <string_view>

#include <boost/json.hpp>

#include "fuzz_check.h"
#include "http/response.h"
#include "model/utf8.h"

inline void check_error_body(std::string_view message) {
  feed::http::request req;
  req.version(11);
  const auto res = feed::http::error_response(req, feed::http::status::bad_request, message);
  FUZZ_CHECK(feed::utf8_code_points(res.body()).has_value());
  boost::system::error_code ec;
  const auto v = boost::json::parse(res.body(), ec);
  FUZZ_CHECK(!ec && v.is_object() && v.as_object().contains("error"));
}
