#pragma once
// Graceful shutdown: the first SIGTERM/SIGINT flips readiness, runs every registered drain
// hook with one shared deadline (worker.shutdown_wait), then stops the loop. A second SIGINT
// exits at once, for the operator who really means it.
//
// How work stops in archie, all of it (each mechanism is named where it is implemented):
//
//  What stops         Started by                    Mechanism                       Then
//  -----------------  ----------------------------  ------------------------------  -----------------------------
//  the whole worker   SIGTERM / SIGINT /            shutdown_coordinator (here):    the drain below, in order
//                     request_stop (start-up fail)  readiness -> not ready
//  fetching           drain, step 1                 pull_consumer `stopping` flag   no new pull requests; late
//                                                   (atomic: nats.c threads read)   arrivals are given back (nak 0)
//  idle handlers      drain, step 2                 a stop sentinel per worker      each finishes what it holds
//                                                   queued behind real messages
//  busy handlers      drain at worker.shutdown_wait pull_consumer `hard_stop`       Asio cancellation of the
//                     past the deadline             timer set to min                handler: nak "shutdown", 0 s
//  one message        worker.message_timeout        the message's watchdog wins     same cancellation: nak "timeout"
//                                                   the `||` race in process()
//  one copy           the handler's cancellation    http::cut_group (per copy)      its requests end at once; its
//                     (either of the two above)     cuts reads, parts, begin()      uploads are aborted; the
//                                                                                   cancellation is rethrown up
//  waiting parts      the source failed mid-copy    upload::stop_waiting()          in-order destinations stop
//                                                                                   waiting for parts never coming
//  every request      abort_grace (5 s) past the    store_set::abort_requests() ->  every S3/GCS request in flight
//                     deadline, if still draining   http::client::abort_all()       fails, none is sent after
//  a walk             SIGINT/SIGTERM in verify,     walk_runner `stop_` flag        the walk stops between keys,
//                     backfill                      (atomic: set by the signal)     reports, exits 130
//
// Nothing is lost at any step: a message is acked only after its work is done, and every
// message stopped is naked (or not settled at all, then redelivered after ack_wait).
#include "health/readiness.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace archie::service {

using drain_hook = std::function<boost::asio::awaitable<void>(std::chrono::steady_clock::time_point deadline)>;

class shutdown_coordinator {
 public:
  shutdown_coordinator(boost::asio::any_io_executor executor, health::readiness& ready, std::chrono::milliseconds wait);

  /// Hooks run in registration order; each must return by the deadline (cancel what is left).
  void add_drain_hook(drain_hook hook);
  /// Runs after every hook, e.g. to close the admin listener and stop the loop.
  void on_finished(std::function<void()> fn);
  /// Waits for the first signal (or request_stop), then drains. Spawn once.
  boost::asio::awaitable<void> watch();
  /// Starts the same graceful drain as SIGTERM, e.g. after a fatal start-up error.
  void request_stop(std::string reason);

 private:
  boost::asio::awaitable<void> exit_on_second_interrupt();

  boost::asio::signal_set signals_;
  boost::asio::steady_timer stop_requested_;
  std::string stop_reason_;
  health::readiness& ready_;
  std::chrono::milliseconds wait_;
  std::vector<drain_hook> hooks_;
  std::vector<std::function<void()>> finished_;
};

}  // namespace archie::service
