// A worker with a scripted handler, for testing the queue layer on a real nats-server.
// Each message body is a JSON command:
//   {"do":"ack"}                          ack
//   {"do":"nak"}                          nak (backoff by delivery count)
//   {"do":"term","reason":"..."}          term (dead-lettered when configured)
//   {"do":"sleep","ms":N}                 work for N ms, then ack
//   {"do":"succeed_on","delivery":K}      nak until the K-th delivery, then ack
// Every settled message is appended to --record FILE as "seq deliveries outcome unix_ms".
// Usage: queue_worker --config FILE --record FILE
#include "config/config.hpp"
#include "log/logger.hpp"
#include "service/worker_service.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>

using namespace archie;

namespace {

std::mutex record_mutex;
std::FILE* record_file = nullptr;

void record(const queue::queue_message& msg, const char* outcome) {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  std::lock_guard lock(record_mutex);
  std::fprintf(record_file, "%llu %llu %s %lld\n", static_cast<unsigned long long>(msg.delivery().stream_sequence),
               static_cast<unsigned long long>(msg.delivery().deliveries), outcome, static_cast<long long>(now.count()));
  std::fflush(record_file);
}

boost::asio::awaitable<queue::message_outcome> scripted(queue::queue_message& msg) {
  boost::system::error_code ec;
  auto v = boost::json::parse(msg.data(), ec);
  if (ec || !v.is_object()) {
    record(msg, "term");
    co_return queue::message_outcome::term("malformed_command", "body is not a JSON object");
  }
  auto& o = v.as_object();
  std::string action = o.contains("do") ? std::string(o["do"].as_string()) : "ack";
  if (action == "sleep") {
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor,
                                std::chrono::milliseconds(o["ms"].to_number<std::int64_t>()));
    co_await t.async_wait(boost::asio::use_awaitable);
    action = "ack";
  }
  if (action == "succeed_on") {
    auto k = o["delivery"].to_number<std::uint64_t>();
    action = msg.delivery().deliveries >= k ? "ack" : "nak";
  }
  record(msg, action.c_str());
  if (action == "nak") co_return queue::message_outcome::nak("scripted", "scripted nak");
  if (action == "term") {
    std::string reason = o.contains("reason") ? std::string(o["reason"].as_string()) : "scripted term";
    co_return queue::message_outcome::term("scripted", reason);
  }
  co_return queue::message_outcome::ack();
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, record_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--config") config_path = argv[i + 1];
    else if (a == "--record") record_path = argv[i + 1];
  }
  if (config_path.empty() || record_path.empty()) {
    std::cerr << "usage: queue_worker --config FILE --record FILE\n";
    return 2;
  }
  record_file = std::fopen(record_path.c_str(), "a");
  if (!record_file) return 2;
  try {
    auto loaded = config::load_file(config_path);
    log::set_level(loaded.cfg.log_level);
    return service::run_worker(loaded.cfg, [](service::worker_context&) { return queue::message_handler(scripted); });
  } catch (const config::config_error& e) {
    std::cerr << config::describe(e);
    return 3;
  }
}
