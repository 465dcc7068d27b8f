#include "http/response.h"

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

namespace feed::http {

response json_response(const request& req, status s, const boost::json::value& body) {
  response res{s, req.version()};
  res.set(beast::http::field::content_type, "application/json");
  res.set(beast::http::field::server, "feed-api");
  res.body() = boost::json::serialize(body);
  res.body().push_back('\n');
  return res;
}

response error_response(const request& req, status s, std::string_view message) {
  return json_response(req, s, boost::json::object{{"error", message}});
}

}  // namespace feed::http
