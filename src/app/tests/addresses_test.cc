#include "config/addresses.h"

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(Addresses, BrokerListsLibrdkafkaTakesPass) {
  for (const char* ok : {"127.0.0.1:9092", "kafka", "k1:9092,k2:9093", "k1:9092, k2:9093 ", "[::1]:9092", "[::1]",
                         "PLAINTEXT://kafka:9092", "sasl_ssl://b-1.example.com:9096", "my_host-1.local:1",
                         "k:65535"}) {
    EXPECT_EQ(broker_list_problem(ok), "") << ok;
  }
}

TEST(Addresses, BrokerListsThatCannotWorkAreNamed) {
  struct bad {
    const char* list;
    const char* says;
  };
  for (const auto& [list, says] : {bad{"host:99999", "port '99999' is not a whole number from 1 to 65535"},
                                   bad{"host:0", "port '0'"},
                                   bad{"host:", "port ''"},
                                   bad{"host:9092x", "port '9092x'"},
                                   bad{"host:-1", "port '-1'"},
                                   bad{"a,,b", "has an empty entry"},
                                   bad{"a,", "has an empty entry"},
                                   bad{",", "has an empty entry"},
                                   bad{"  ", "empty"},
                                   bad{"kafka:9092:29092", "more than one ':'"},
                                   bad{"::1", "more than one ':'"},
                                   bad{"a b:9092", "'a b' is not a host name or address"},
                                   bad{"[::1", "not a bracketed IPv6 address"},
                                   bad{"[nothost]:1", "not a bracketed IPv6 address"},
                                   bad{"[::1]x", "expected ':port' after ']'"},
                                   bad{"[::1]:70000", "port '70000'"},
                                   bad{"http://kafka:9092", "unknown protocol 'http'"},
                                   bad{":9092", "'' is not a host name or address"}}) {
    const auto problem = broker_list_problem(list);
    EXPECT_NE(problem.find(says), std::string::npos) << list << " -> " << problem;
  }
}

TEST(Addresses, ListenAddressesStayAndNamesResolve) {
  std::string problem;
  EXPECT_EQ(listen_address("127.0.0.1", problem), "127.0.0.1");
  EXPECT_EQ(listen_address("::1", problem), "::1");
  EXPECT_EQ(listen_address("0.0.0.0", problem), "0.0.0.0");
  EXPECT_EQ(problem, "");
  EXPECT_EQ(listen_address("localhost", problem), "127.0.0.1") << "IPv4 first, as Go binds \"localhost\"";
  EXPECT_EQ(problem, "");
  EXPECT_EQ(listen_address("no-such-host.invalid", problem), "");
  EXPECT_NE(problem.find("'no-such-host.invalid' is neither an IP address nor a host name that resolves"),
            std::string::npos)
      << problem;
  listen_address("127.0.0.1:80", problem);
  EXPECT_NE(problem, "");
}

TEST(Addresses, AReferenceHostVariableIsAHostAlone) {
  std::string problem;
  EXPECT_EQ(host_for_port("kafka", problem), "kafka");
  EXPECT_EQ(host_for_port("10.0.0.7", problem), "10.0.0.7");
  EXPECT_EQ(host_for_port("::1", problem), "[::1]") << "bracketed before :port";
  EXPECT_EQ(host_for_port("[fd00::7]", problem), "[fd00::7]");
  EXPECT_EQ(problem, "");
  host_for_port("kafka:9092", problem);
  EXPECT_EQ(problem, "'kafka:9092' holds a port");
  host_for_port("a b", problem);
  EXPECT_EQ(problem, "'a b' is not a host name or address");
}

}  // namespace
}  // namespace feed
