// One handler per endpoint; each file in this directory holds one.
#pragma once

#include "http/handlers/services.h"
#include "http/router.h"

namespace feed::http {

handler health_handler();                         // GET /api/health
handler ready_handler(services& s);               // GET /api/ready
handler post_message_handler(services& s);        // POST /api/messages
handler list_messages_handler(services& s);       // GET /api/messages
handler feed_handler(services& s);                // GET /api/feed (SSE)
handler openapi_handler();                        // GET /api/openapi.yaml
handler metrics_handler(const metrics& m);        // GET /metrics (Prometheus text format)

// All of the above on their paths.
void add_routes(router& r, services& s);

}  // namespace feed::http
