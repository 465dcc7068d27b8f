// One handler per endpoint; each file in this directory holds one.
#pragma once

#include <string>
#include <vector>

#include "http/handlers/services.h"
#include "http/router.h"

namespace feed::http {

handler health_handler();                         // GET /api/health
handler ready_handler(services& s);               // GET /api/ready
handler post_message_handler(services& s);        // POST /api/messages
handler list_messages_handler(services& s);       // GET /api/messages
handler feed_handler(services& s);                // GET /api/feed (SSE)
handler feed_head_handler(services& s);           // HEAD /api/feed: GET's status and fields
handler openapi_handler();                        // GET /api/openapi.yaml
handler metrics_handler(const metrics& m);        // GET /metrics (Prometheus text format)

// GET /api/messages's ?limit=&before=&user_id= as the store read it asks
// for, or the error naming the parameter that is wrong (answered 400).
result<read_query> list_query(boost::urls::url_view url, const api_options& opts);

// The web page (web/, embedded at build time): GET / and the script and
// styles it loads, each under a path naming its content hash.
struct web_asset {
  std::string path;           // "/", "/app.<hash>.js", "/style.<hash>.css"
  std::string content_type;
  std::string body;
  std::string etag;           // quoted content hash: a strong validator
  std::string cache_control;  // the page is revalidated; hashed assets never change
};
std::vector<web_asset> web_page_assets();
// 200 with the asset, or 304 when If-None-Match names its ETag (or is "*").
response web_asset_response(const request& req, const web_asset& a);
void add_page_routes(router& r);                 // GET / and its assets

// All of the above on their paths.
void add_routes(router& r, services& s);

}  // namespace feed::http
