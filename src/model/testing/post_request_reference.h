// The decoder of POST /api/messages bodies as it was before it read the JSON
// in one pass: a boost::json DOM, then a second parse that looks for a key
// given twice. Kept only for the differential test and the post_request
// fuzzer, which check that parse_post_request decides exactly as it did for
// every body: the same request, or the same error text.
//
// It shares with parse_post_request the field checks that follow decoding
// (check_user_id, check_content): what it pins down is the JSON reading and
// the order of the errors. A pure function, like parse_post_request.
#pragma once

#include <string_view>

#include "base/result.h"
#include "model/post_request.h"

namespace feed::test_support {

result<post_request> parse_post_request_reference(std::string_view body, const post_limits& limits = {});

}  // namespace feed::test_support
