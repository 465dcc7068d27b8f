// The newest seq in the feed before this run posts anything: the point from
// which a subscriber that lost its stream before its first event resumes
// (run_context::resume_floor).
//
// Asks GET <post-path>?limit=1 (feed-api lists messages newest first, each
// with its seq) on each instance in turn until one answers. A server that
// does not list messages leaves the floor unknown; subscribers then resume
// such a stream without Last-Event-ID, as before.
//
// probe_newest_seq() blocks the calling thread (it runs a private
// io_context) for at most about `timeout` per instance; call it before
// posting starts. newest_seq_in_page() is a pure function.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "bot/run_context.h"

namespace feed::bot {

// From a page {"messages":[{"seq":N,...}],...}: N, or 0 for an empty page;
// nullopt when the body is not such a page.
std::optional<std::int64_t> newest_seq_in_page(std::string_view body);

std::optional<std::int64_t> probe_newest_seq(const run_context& ctx, std::chrono::milliseconds timeout);

}  // namespace feed::bot
