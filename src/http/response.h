// Building responses: every body is JSON, every error is {"error": "..."}.
#pragma once

#include <string_view>

#include <boost/json/value.hpp>

#include "http/types.h"

namespace feed::http {

response json_response(const request& req, status s, const boost::json::value& body);
response error_response(const request& req, status s, std::string_view message);

}  // namespace feed::http
