// Addresses given in configuration, checked before anything starts: a value
// that cannot work is a usage error (exit 2, said at once), not a start-up
// that times out or a port that librdkafka quietly wraps (host:99999 was
// dialled as host:34463).
#pragma once

#include <string>
#include <string_view>

namespace feed {

// Why `brokers` is not a Kafka bootstrap list, or "". Accepted: entries
// separated by commas (spaces around them allowed), each
// [PROTOCOL://]host[:port], host a name, an IPv4 address or a bracketed IPv6
// address, port from 1 to 65535.
std::string broker_list_problem(std::string_view brokers);

// The address --host names: an IP address as given, or a host name's first
// IPv4 address (else its first address), as Go's net.Listen binds
// "localhost". Why not, in `problem`, when the name does not resolve.
std::string listen_address(const std::string& host, std::string& problem);

// A host from one of the reference's variables (KAFKA_HOST, DB_HOST) made
// fit for "host:port": an IPv6 address is bracketed. Why not, in `problem`,
// when it is not a host or holds a port of its own.
std::string host_for_port(const std::string& host, std::string& problem);

}  // namespace feed
