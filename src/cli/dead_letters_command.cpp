#include "cli/dead_letters_command.hpp"

#include "service/exit_codes.hpp"

#include "config/duration.hpp"
#include "queue/dead_letters.hpp"
#include "queue/nats_connection.hpp"

#include <boost/json.hpp>

#include <ctime>
#include <iostream>

namespace archie::cli {
using service::exit_failed;
using service::exit_usage;

namespace json = boost::json;
using clock = std::chrono::system_clock;

namespace {


std::string utc_text(clock::time_point t) {
  std::time_t secs = clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "2h" (that long ago) or "2026-11-29T12:00:00Z".
std::optional<clock::time_point> parse_since(const std::string& text) {
  if (auto d = config::parse_duration(text)) return clock::now() - *d;
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end) return std::nullopt;
  return clock::from_time_t(timegm(&tm));
}

// "A-B" or "A": sequences are 1-based.
bool parse_sequences(const std::string& text, queue::dead_letter_filter& f) {
  auto number = [](const std::string& s, std::uint64_t& out) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19) return false;
    out = std::stoull(s);
    return out > 0;
  };
  auto dash = text.find('-');
  if (dash == std::string::npos) {
    if (!number(text, f.first_sequence)) return false;
    f.last_sequence = f.first_sequence;
    return true;
  }
  return number(text.substr(0, dash), f.first_sequence) && number(text.substr(dash + 1), f.last_sequence) &&
         f.first_sequence <= f.last_sequence;
}

json::object to_json(const queue::dead_letter& d) {
  return {{"sequence", d.sequence},
          {"stored", utc_text(d.stored)},
          {"code", d.code},
          {"reason", d.reason},
          {"original_subject", d.original_subject},
          {"original_stream", d.original_stream},
          {"original_sequence", d.original_sequence},
          {"deliveries", d.deliveries},
          {"truncated", d.truncated},
          {"bytes", d.data.size()},
          {"data", d.data}};
}

}  // namespace

int run_dead_letters(const config::config& cfg, const command_options& opts) {
  if (cfg.queue.dead_letter_subject.empty()) {
    std::cerr << "archie: queue.dead_letter_subject is not set: there is no dead-letter stream\n";
    return exit_usage;
  }
  queue::dead_letter_filter filter;
  filter.code = opts.code;
  if (opts.since) {
    filter.since = parse_since(*opts.since);
    if (!filter.since) {
      std::cerr << "archie: --since " << *opts.since << ": expected a duration (2h) or a time (2026-11-29T12:00:00Z)\n";
      return exit_usage;
    }
  }
  if (opts.seq && !parse_sequences(*opts.seq, filter)) {
    std::cerr << "archie: --seq " << *opts.seq << ": expected A-B or A (sequences from 1)\n";
    return exit_usage;
  }
  std::unique_ptr<queue::nats_connection> nats;
  try {
    nats = queue::nats_connection::connect(cfg.queue.nats);
  } catch (const std::exception& e) {
    std::cerr << "archie: " << e.what() << "\n";
    return exit_failed;
  }
  queue::dead_letter_stream stream(nats->jetstream(), cfg.queue);
  const std::string& action = opts.dead_letter_action;
  std::uint64_t matched = 0, acted = 0, skipped = 0, failed = 0;
  auto visit = [&](const queue::dead_letter& d) {
    ++matched;
    if (action == "list") {
      if (opts.json)
        std::cout << json::serialize(to_json(d)) << "\n";
      else
        std::cout << d.sequence << "\t" << utc_text(d.stored) << "\t" << d.code << "\t" << d.original_subject << " #"
                  << d.original_sequence << "\tdeliveries " << d.deliveries << (d.truncated ? "\ttruncated" : "")
                  << "\t" << d.reason << "\n";
      return true;
    }
    if (action == "replay" && d.truncated) {
      ++skipped;
      std::cerr << "archie: #" << d.sequence << " skipped: truncated when dead-lettered, its body is incomplete\n";
      return true;
    }
    if (opts.dry_run) {
      std::cout << "would " << action << "\t#" << d.sequence << "\t" << d.code << "\n";
      return true;
    }
    try {
      if (action == "replay")
        stream.replay(d);
      else
        stream.remove(d.sequence);
      ++acted;
      std::cout << (action == "replay" ? "replayed" : "purged") << "\t#" << d.sequence << "\t" << d.code << "\n";
    } catch (const std::exception& e) {
      ++failed;
      std::cerr << "archie: #" << d.sequence << ": " << e.what() << "\n";
    }
    return true;
  };
  try {
    stream.for_each(filter, visit);
  } catch (const std::exception& e) {
    std::cerr << "archie: " << e.what() << "\n";
    nats->close();
    return exit_failed;
  }
  nats->close();
  if (action != "list")
    std::cerr << "archie: " << matched << " matched, " << acted << (action == "replay" ? " replayed" : " purged")
              << (opts.dry_run ? " (dry run)" : "") << ", " << skipped << " skipped, " << failed << " failed\n";
  else if (!opts.json)
    std::cerr << "archie: " << matched << " dead letters\n";
  return failed ? exit_failed : 0;
}

}  // namespace archie::cli
