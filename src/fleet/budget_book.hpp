#pragma once
// The fleet-wide budgets of the stores ([stores.NAME] max_bandwidth, max_requests_per_second,
// max_transfers), applied by one worker. Every `archie run` takes its share from the number of
// live workers in the registry (fleet/worker_registry.hpp): a rate is divided evenly, a count
// of transfers too, its remainder going to the first workers in registry order so the shares
// add up to the budget exactly. When a worker dies, its entry expires with the registry's TTL
// and the next heartbeat of the others takes its share back.
//
// It also keeps a slow destination from holding the slots others could use. A record that
// writes only to stores some route does not write to steps aside after a second (it stops
// counting against worker.concurrency: queue/pull_consumer.hpp), so the worker fetches other
// routes' events meanwhile; each such store holds at most `concurrency` records at once, and
// the engine hands back those beyond (engine/transfer_slots.hpp).
#include "async/rate_limiter.hpp"
#include "async/slot_gate.hpp"
#include "config/config.hpp"
#include "fleet/fleet_position.hpp"
#include "http/send_budget.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace archie::fleet {

/// This worker's share of a count: total / workers, one more for the first total % workers
/// ranks. 0 is a share too: the budget holds even with more workers than it has.
std::size_t count_share(std::int64_t total, fleet_position p);

/// One store's budgets as this worker applies them (all on the io executor's thread).
class store_budget final : public http::send_budget {
 public:
  /// `fair_cap`: the most records it may hold besides its fleet share, for a destination
  /// some route does not write to (see above); slot_gate::unlimited for any other store.
  store_budget(std::string store, config::store_budget fleet, std::size_t fair_cap);

  /// This worker's shares for `p` at `now` (the timetable's step in force), and their gauges.
  void apply(fleet_position p, std::chrono::system_clock::time_point now);

  boost::asio::awaitable<void> before_request() override;
  boost::asio::awaitable<void> before_body_bytes(std::size_t bytes) override;
  std::size_t body_chunk() const override;

  /// The transfer gate; nullptr when transfers to this store are not limited.
  async::slot_gate* transfers();
  bool fair_share() const { return fair_cap_ != async::slot_gate::unlimited; }
  const std::string& store() const { return store_; }
  const config::store_budget& fleet() const { return fleet_; }

 private:
  std::string store_;
  config::store_budget fleet_;
  std::size_t fair_cap_;
  std::size_t fleet_share_ = async::slot_gate::unlimited;  ///< of max_transfers
  async::rate_limiter bandwidth_;
  async::rate_limiter requests_;
  async::slot_gate transfers_;
};

class budget_book {
 public:
  explicit budget_book(const config::config& cfg);

  /// The pace of `store`'s requests and bodies; null when it has no such budget (nothing
  /// is paced, at no cost).
  std::shared_ptr<http::send_budget> send_budget_for(const std::string& store) const;
  /// The transfer gate a record writing to `store` must pass; null when transfers to it are
  /// not limited.
  async::slot_gate* gate_for_record(const std::string& store) const;
  /// True when `store` takes part in the fair sharing of the slots (some route does not
  /// write to it): a record waiting on it alone may step aside (queue_message).
  bool shares_slots(const std::string& store) const;
  /// A record handed back because `store` had no free transfer slot.
  static void count_deferred(const std::string& store);

  /// Takes this worker's shares for `p` now; called on every registry heartbeat (so a
  /// timetable step starts within one heartbeat).
  void apply(fleet_position p);

 private:
  std::map<std::string, std::shared_ptr<store_budget>> stores_;
};

}  // namespace archie::fleet
