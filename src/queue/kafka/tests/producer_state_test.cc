#include "queue/kafka/producer_state.h"

#include <gtest/gtest.h>

#include <string>

namespace feed {
namespace {

// The shape librdkafka 2.0 writes (trimmed): brokers and topics first, then
// "eos", then the totals.
const std::string document =
    R"({ "name": "rdkafka#producer-1", "client_id": "feed-publisher", "type": "producer", "msg_cnt":0,)"
    R"( "brokers":{ "127.0.0.1:9092/1": { "name":"127.0.0.1:9092/1", "state":"UP",)"
    R"( "req": { "Produce": 0, "InitProducerId": 1 }, "toppars":{ } } }, "topics":{ } ,)"
    R"( "eos": { "idemp_state": "Assigned", "idemp_stateage": 96, "txn_state": "Init", "producer_id": 1026,)"
    R"( "producer_epoch": 0, "epoch_cnt": 1 }, "tx":3, "tx_bytes":104})";

TEST(IdempotenceState, IsReadFromLibrdkafkasStatistics) {
  EXPECT_EQ(idempotence_state(document), producer_id_assigned);
  std::string waiting = document;
  waiting.replace(waiting.find("Assigned"), 8, "WaitPID");
  EXPECT_EQ(idempotence_state(waiting), "WaitPID");
}

TEST(IdempotenceState, TakesTheLastKeySoNamesBeforeItCannotPoseAsTheState) {
  // A client id is written before "eos": even one holding the key itself,
  // unescaped, cannot pose as the state, which comes later.
  std::string named = document;
  named.replace(named.find("feed-publisher"), 14, R"(x", "idemp_state": "Assigned)");
  named.replace(named.find("\"Assigned\", \"idemp_stateage\""), 10, "\"FatalError\"");
  EXPECT_EQ(idempotence_state(named), "FatalError");
}

TEST(IdempotenceState, IsNothingWithoutAPlainStringValue) {
  for (const std::string bad : {
           "",
           "{}",
           R"({ "eos": { } })",                          // not idempotent
           R"({ "eos": { "idemp_state" })",              // no value
           R"({ "eos": { "idemp_state": )",              // cut off
           R"({ "eos": { "idemp_state": "Assig)",        // unterminated
           R"({ "eos": { "idemp_state": "" } })",        // empty
           R"({ "eos": { "idemp_state": 3 } })",         // not a string
           R"({ "eos": { "idemp_state" "Assigned" } })", // no colon
           R"({ "eos": { "idemp_state": "Ass\"igned" } })",
           R"({ "eos": { "idemp_state": "Assigned and more words" } })",
           R"({ "eos": { "idemp_state": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } })",
       }) {
    EXPECT_EQ(idempotence_state(bad), std::nullopt) << bad;
  }
}

TEST(IdempotenceState, ToleratesAnyJsonWhitespaceAroundTheColon) {
  EXPECT_EQ(idempotence_state("{\"eos\":{\"idemp_state\"\n:\t\"WaitPID\"}}"), "WaitPID");
  EXPECT_EQ(idempotence_state(R"({"eos":{"idemp_state":"Assigned"}})"), producer_id_assigned);
}

}  // namespace
}  // namespace feed
