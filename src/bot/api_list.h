// The feed-api instances a run drives: `--api` is one base URL or a
// comma-separated list of them ("http://a:8090,http://b:8090").
//
// Every instance must be http://host[:port] with no path; entries may have
// spaces around them. Refused: an empty entry (",," or a trailing comma),
// another scheme, a path, a bad port, and the same host:port twice (it would
// double that instance's share of the load and make "the next instance"
// the same one). Hosts are compared as written: "localhost" and
// "127.0.0.1" are different entries even if they resolve alike.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace feed::bot {

struct api_instance {
  std::string url;          // normalised: "http://host:port" (IPv6 in brackets)
  std::string host;         // without brackets
  std::string port;         // decimal, 1..65535
  std::string host_header;  // "host:port", IPv6 in brackets
};

// Parses one base URL. On failure returns false and says why.
bool parse_api_url(std::string_view url, api_instance& out, std::string& why);

// Parses the whole list (at least one entry). On failure returns false, `out`
// is unspecified, and `why` names the bad entry.
bool parse_api_list(std::string_view list, std::vector<api_instance>& out, std::string& why);

}  // namespace feed::bot
