#include "engine/record_policy.hpp"

namespace archie::engine {
namespace {

int severity(const queue::message_outcome& o) {
  switch (o.what) {
    case queue::message_outcome::kind::ack: return 0;
    case queue::message_outcome::kind::term: return 1;
    case queue::message_outcome::kind::nak: return 2;  // a retry must not be swallowed by a term
  }
  return 0;
}

record_plan settle(queue::message_outcome o) {
  record_plan p;
  p.settled = std::move(o);
  return p;
}

}  // namespace

record_plan plan_record(const event::object_event& ev, const config::replication_config& cfg,
                        const route::router& router) {
  using event::event_action;
  using queue::message_outcome;
  if (ev.action == event_action::skip) return settle(message_outcome::ack_without_work("skipped"));
  if (ev.action == event_action::copy_metadata && cfg.metadata_events == config::metadata_events_policy::skip)
    return settle(message_outcome::ack_without_work("metadata_skipped"));
  if (ev.action == event_action::remove && ev.lifecycle_expiry && cfg.ignore_lifecycle_expiry)
    return settle(message_outcome::ack_without_work("lifecycle_skipped"));
  auto d = router.route(ev.bucket, ev.key);
  if (!d.route) {
    if (cfg.unrouted_events == config::unrouted_policy::term)
      return settle(message_outcome::term("unrouted", "no route covers bucket " + ev.bucket));
    return settle(message_outcome::ack_without_work("unrouted"));
  }
  const bool remove = ev.action == event_action::remove;
  if ((remove ? d.route->exclude_remove : d.route->exclude_copy).matches(ev.key))
    return settle(message_outcome::ack_without_work("excluded"));
  record_plan p;
  p.what = remove ? record_plan::work::remove : record_plan::work::copy;
  p.metadata_only = ev.action == event_action::copy_metadata;
  p.route = std::move(d);
  return p;
}

queue::message_outcome merge_outcomes(const queue::message_outcome& so_far, queue::message_outcome next) {
  const bool confirm = so_far.confirm || next.confirm;  // one record that wrote makes the ack worth confirming
  queue::message_outcome out = severity(next) >= severity(so_far) ? std::move(next) : so_far;
  out.confirm = confirm;
  return out;
}

queue::message_outcome outcome_for(const store::store_error& e, const char* code_prefix) {
  if (e.code == store::customer_key_code)
    return queue::message_outcome::term(std::string(code_prefix) + "_customer_key", e.describe());
  std::string code = std::string(code_prefix) + "_" + store::to_string(e.kind);
  if (e.kind == store::error_kind::permanent) return queue::message_outcome::term(code, e.describe());
  return queue::message_outcome::nak(code, e.describe());
}

std::optional<queue::message_outcome> destination_failures_outcome(
    std::span<const std::optional<store::store_error>> failures) {
  std::string reasons;
  bool retry = false;
  const store::store_error* first = nullptr;
  for (const auto& f : failures) {
    if (!f) continue;
    if (!first) first = &*f;
    if (f->kind != store::error_kind::permanent) retry = true;
    reasons += (reasons.empty() ? "" : "; ") + f->describe();
  }
  if (!first) return std::nullopt;
  std::string code = std::string("destination_") + store::to_string(first->kind);
  if (retry) {
    if (first->kind == store::error_kind::permanent) code = "destination_retryable";
    return queue::message_outcome::nak(std::move(code), std::move(reasons));
  }
  return queue::message_outcome::term(std::move(code), std::move(reasons));
}

}  // namespace archie::engine
