#include "cli/backfill_command.hpp"

#include "async/run_blocking.hpp"
#include "async/wait_group.hpp"
#include "service/exit_codes.hpp"
#include "cli/route_selection.hpp"
#include "cli/walk_report.hpp"
#include "cli/walk_runner.hpp"
#include "engine/replicator.hpp"
#include "event/synthetic_event.hpp"
#include "queue/nats_connection.hpp"
#include "queue/nats_error.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <iostream>

namespace archie::cli {
using service::exit_failed;
using service::exit_interrupted;
using service::exit_usage;

namespace asio = boost::asio;
namespace json = boost::json;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t failures_listed = 20;

struct repair_job {
  engine::repair what = engine::repair::none;
  std::string bucket;
  std::string key;
  std::uint64_t size = 0;
  std::string payload;  ///< the synthetic event
  bool versions_only = false;  ///< a version-history repair: NATS header Archie-Scope: versions
};

struct repair_tally {
  std::uint64_t copies = 0, removals = 0, done = 0, failed = 0, bytes = 0;
  std::vector<std::pair<std::string, std::string>> failures;  ///< key, reason (first few)
  void fail(const std::string& key, std::string reason) {
    ++failed;
    if (failures.size() < failures_listed) failures.emplace_back(key, std::move(reason));
  }
};

// The subject events are published on: a literal subject the stream (and the consumer's
// filter) captures. Wildcard-only configurations cannot be guessed.
std::string event_subject(const config::queue_config& q) {
  auto literal = [](const std::string& s) { return s.find_first_of("*>") == std::string::npos; };
  if (!q.consumer.filter_subject.empty() && literal(q.consumer.filter_subject)) return q.consumer.filter_subject;
  for (const auto& s : q.stream.subjects)
    if (literal(s)) return s;
  return {};
}

// A dry run's line: "would copy KEY", or {"would":"copy","key":KEY} with --json. Outside the
// coroutine: GCC 12 rule 3 (async/gcc12_coroutines.hpp).
void print_planned(engine::repair what, const std::string& key, bool as_json) {
  if (as_json)
    std::cout << json::serialize(json::object{{"would", engine::to_string(what)}, {"key", key}}) << "\n";
  else
    std::cout << "would " << engine::to_string(what) << "\t" << key << "\n";
}

// Repairs run in batches of `width` at a time: bounded memory and bounded load on the stores.
class repairer {
 public:
  repairer(walk_runner& runner, const command_options& opts, queue::nats_connection* nats, std::string subject)
      : runner_(runner), opts_(opts), nats_(nats), subject_(std::move(subject)),
        width_(opts.direct ? static_cast<std::size_t>(std::max<std::int64_t>(1, runner.cfg().worker.concurrency)) : 64),
        pacer_(runner.io) {
    if (opts.direct) engine_ = std::make_unique<engine::replicator>(runner.io.get_executor(), runner.cfg(), runner.stores());
  }

  repair_tally tally;

  asio::awaitable<void> on_difference(const engine::key_difference& d) {
    std::vector<engine::key_state> states;
    for (const auto& v : d.at) states.push_back(v.state);
    auto what = engine::repair_for(d.source.has_value(), states, opts_.delete_extra);
    // A history that differs is levelled by any event for its key; the event is scoped to
    // the versions = "all" destinations, so the others are left as the walk found them
    // (a history under a delete marker does not remove current copies without --delete-extra).
    if (d.versions_only) what = d.source ? engine::repair::copy : engine::repair::remove;
    if (what == engine::repair::none) co_return;
    const auto& rc = runner_.cfg().routes[runner_.current_route()];
    repair_job job{what, rc.source.bucket, d.source_key, d.source ? d.source->size : 0, {}, d.versions_only};
    event::synthetic_object o{job.bucket, job.key, job.size, d.source ? d.source->etag : std::string()};
    job.payload = what == engine::repair::copy ? event::synthetic_put_event(o) : event::synthetic_delete_event(o);
    (what == engine::repair::copy ? tally.copies : tally.removals)++;
    if (opts_.dry_run) {
      print_planned(what, job.key, opts_.json);
      co_return;
    }
    batch_.push_back(std::move(job));
    if (batch_.size() >= width_) co_await flush();
  }

  asio::awaitable<void> flush() {
    std::vector<repair_job> jobs;
    jobs.swap(batch_);
    if (jobs.empty()) co_return;
    if (!opts_.direct) {
      for (auto& job : jobs) {
        co_await pace();
        co_await publish(job);
      }
      co_return;
    }
    async::wait_group group(runner_.io.get_executor());
    for (auto& job : jobs) {
      co_await pace();
      group.add();
      asio::co_spawn(runner_.io, copy_direct(job), [&group](std::exception_ptr) { group.done(); });
    }
    co_await group.wait();
  }

 private:
  // --max-rps: each repair starts no sooner than 1/R after the previous one.
  asio::awaitable<void> pace() {
    if (opts_.max_rps <= 0) co_return;
    auto gap = std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(1.0 / opts_.max_rps));
    auto now = steady::now();
    next_start_ = std::max(next_start_ + gap, now);
    if (next_start_ > now) {
      pacer_.expires_at(next_start_);
      co_await pacer_.async_wait(asio::use_awaitable);
    }
  }

  asio::awaitable<void> publish(repair_job& job) {
    std::string error;
    auto send = [this, &job, &error] {
      natsMsg* m = nullptr;
      natsStatus s = natsMsg_Create(&m, subject_.c_str(), nullptr, job.payload.data(), static_cast<int>(job.payload.size()));
      if (s == NATS_OK) {
        natsMsgHeader_Set(m, "Archie-Origin", "backfill");
        if (job.versions_only) natsMsgHeader_Set(m, "Archie-Scope", "versions");
        jsPubAck* ack = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        s = js_PublishMsg(&ack, nats_->jetstream(), m, nullptr, &jerr);
        jsPubAck_Destroy(ack);
        if (s != NATS_OK) error = queue::nats_error_text("publish to " + subject_, s, jerr);
      } else {
        error = queue::nats_error_text("create message", s);
      }
      natsMsg_Destroy(m);
    };
    co_await async::run_blocking(runner_.blocking, send);
    if (error.empty()) {
      ++tally.done;
    } else {
      tally.fail(job.key, error);
    }
  }

  // The same engine as `run`, fed the synthetic event as if it came from the stream.
  asio::awaitable<void> copy_direct(repair_job& job) {
    natsMsg* m = nullptr;
    if (natsMsg_Create(&m, "archie.backfill", nullptr, job.payload.data(), static_cast<int>(job.payload.size())) !=
        NATS_OK) {
      tally.fail(job.key, "cannot create the event message");
      co_return;
    }
    if (job.versions_only) natsMsgHeader_Set(m, "Archie-Scope", "versions");
    queue::queue_message msg(m);
    auto outcome = co_await engine_->handle(msg);
    if (outcome.what == queue::message_outcome::kind::ack) {
      ++tally.done;
      if (job.what == engine::repair::copy) tally.bytes += job.size;
    } else {
      tally.fail(job.key, outcome.code + (outcome.reason.empty() ? "" : ": " + outcome.reason));
    }
  }

  walk_runner& runner_;
  const command_options& opts_;
  queue::nats_connection* nats_;
  std::string subject_;
  std::size_t width_;
  asio::steady_timer pacer_;
  steady::time_point next_start_{};
  std::unique_ptr<engine::replicator> engine_;
  std::vector<repair_job> batch_;
};

}  // namespace

int run_backfill(const config::config& cfg, const command_options& opts) {
  auto selected = select_routes(cfg.routes, opts);
  if (auto* err = std::get_if<std::string>(&selected)) {
    std::cerr << "archie: " << *err << "\n";
    return exit_usage;
  }
  std::unique_ptr<queue::nats_connection> nats;
  std::string subject;
  if (!opts.direct && !opts.dry_run) {
    subject = event_subject(cfg.queue);
    if (subject.empty()) {
      std::cerr << "archie: cannot publish backfill events: neither queue.consumer.filter_subject nor any of "
                   "queue.stream.subjects is a literal subject (use --direct)\n";
      return exit_usage;
    }
    try {
      nats = queue::nats_connection::connect(cfg.queue.nats);
    } catch (const std::exception& e) {
      std::cerr << "archie: " << e.what() << "\n";
      return exit_failed;
    }
  }
  walk_outcome out;
  {
    walk_runner runner(cfg);
    repairer fixer(runner, opts, nats.get(), subject);
    const char* mode = opts.dry_run ? "dry-run" : opts.direct ? "direct" : "publish";
    runner.extra_fields = [&fixer](std::vector<progress_field>& f) {
      f.push_back({"copies", static_cast<double>(fixer.tally.copies)});
      f.push_back({"removals", static_cast<double>(fixer.tally.removals)});
      f.push_back({"repaired", static_cast<double>(fixer.tally.done)});
      f.push_back({"failed", static_cast<double>(fixer.tally.failed)});
      f.push_back({"bytes", static_cast<double>(fixer.tally.bytes)});
    };
    engine::difference_handler handler = [&fixer](const engine::key_difference& d) { return fixer.on_difference(d); };
    auto flush = [&fixer]() { return fixer.flush(); };
    std::function<asio::awaitable<void>()> finish = flush;
    engine::walk_options options{opts.prefix, false, true};  // version histories where a route keeps them
    out = runner.run(std::get<std::vector<std::size_t>>(selected), options, handler, finish);
    const auto& t = fixer.tally;
    std::uint64_t extras = 0;
    for (const auto& r : out.routes)
      for (const auto& d : r.progress.destinations) extras += d.extra;
    if (opts.json) {
      json::array failures;
      for (const auto& [key, reason] : t.failures) failures.push_back(json::object{{"key", key}, {"reason", reason}});
      json::object report{{"command", "backfill"},
                          {"mode", mode},
                          {"complete", !out.error && !out.interrupted},
                          {"interrupted", out.interrupted},
                          {"error", out.error ? json::value(*out.error) : json::value(nullptr)},
                          {"elapsed_seconds", out.elapsed_seconds},
                          {"copies", t.copies},
                          {"removals", t.removals},
                          {"repaired", t.done},
                          {"failed", t.failed},
                          {"bytes", t.bytes},
                          {"extras_kept", opts.delete_extra ? 0 : extras},
                          {"routes", routes_json(cfg, out)},
                          {"failures", std::move(failures)}};
      std::cout << json::serialize(report) << "\n";
    } else {
      print_route_summaries(cfg, out);
      std::cout << "backfill (" << mode << "): " << t.copies << " copies, " << t.removals << " removals";
      if (!opts.dry_run)
        std::cout << "; " << t.done << (opts.direct ? " done" : " events published") << ", " << t.failed
                  << " failed";
      std::cout << " (" << seconds_text(out.elapsed_seconds) << ")\n";
      if (!opts.delete_extra && extras)
        std::cout << extras << " extra keys kept at destinations (--delete-extra removes them)\n";
      for (const auto& [key, reason] : t.failures) std::cout << "  failed\t" << key << "\t" << reason << "\n";
    }
    if (out.error) std::cerr << "archie: backfill stopped: " << *out.error << "\n";
    if (out.interrupted) std::cerr << "archie: " << interruption_text(out) << "\n";
    // A dry run repairs nothing: the last backfill shown stays the last real one.
    if (!opts.dry_run) {
      std::string result = std::string(mode) + ": " + std::to_string(t.copies) + " copies, " +
                           std::to_string(t.removals) + " removals, " + std::to_string(t.done) +
                           (opts.direct ? " done, " : " events published, ") + std::to_string(t.failed) + " failed";
      record_runs(cfg, out, "backfill", result, nats.get());
    }
    if (nats) nats->close();
    if (out.interrupted) return exit_interrupted;
    return out.error || t.failed ? exit_failed : 0;
  }
}

}  // namespace archie::cli
