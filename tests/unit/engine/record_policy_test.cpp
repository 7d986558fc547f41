#include "engine/record_policy.hpp"

#include <doctest/doctest.h>

using namespace archie;
using engine::record_plan;
using event::event_action;
using queue::message_outcome;

namespace {

route::router photos_router() {
  config::route_config r;
  r.source = {"src", "photos", ""};
  r.destinations = {{"dst", "backup", ""}};
  r.exclude_copy = {"^tmp/"};
  r.exclude_remove = {"^keep/"};
  return route::router({r});
}

event::object_event record(event_action a, std::string key, std::string bucket = "photos") {
  event::object_event ev;
  ev.event_name = "s3:ObjectCreated:Put";
  ev.action = a;
  ev.bucket = std::move(bucket);
  ev.key = std::move(key);
  return ev;
}

std::string settled_code(const record_plan& p) { return p.settled ? p.settled->code : "<work>"; }

}  // namespace

TEST_CASE("a record that is not replication work is acknowledged as skipped") {
  config::replication_config cfg;
  auto p = engine::plan_record(record(event_action::skip, "a.jpg"), cfg, photos_router());
  CHECK(settled_code(p) == "skipped");
}

TEST_CASE("metadata changes are compared and written where they differ, or skipped when metadata_events = skip") {
  config::replication_config cfg;
  auto router = photos_router();
  auto p = engine::plan_record(record(event_action::copy_metadata, "a.jpg"), cfg, router);
  CHECK(p.what == record_plan::work::copy);
  CHECK(p.metadata_only);
  cfg.metadata_events = config::metadata_events_policy::skip;
  CHECK(settled_code(engine::plan_record(record(event_action::copy_metadata, "a.jpg"), cfg, router)) ==
        "metadata_skipped");
}

TEST_CASE("lifecycle expiries are skipped only while ignore_lifecycle_expiry is on") {
  config::replication_config cfg;
  auto router = photos_router();
  auto ev = record(event_action::remove, "old.log");
  ev.lifecycle_expiry = true;
  CHECK(settled_code(engine::plan_record(ev, cfg, router)) == "lifecycle_skipped");
  cfg.ignore_lifecycle_expiry = false;
  CHECK(engine::plan_record(ev, cfg, router).what == record_plan::work::remove);
}

TEST_CASE("an unrouted bucket is acknowledged, or terminated with unrouted_events = term") {
  config::replication_config cfg;
  auto router = photos_router();
  auto ev = record(event_action::copy, "a.jpg", "videos");
  CHECK(settled_code(engine::plan_record(ev, cfg, router)) == "unrouted");
  CHECK(engine::plan_record(ev, cfg, router).settled->what == message_outcome::kind::ack);
  cfg.unrouted_events = config::unrouted_policy::term;
  CHECK(engine::plan_record(ev, cfg, router).settled->what == message_outcome::kind::term);
}

TEST_CASE("exclude_copy applies to copies only and exclude_remove to removals only") {
  config::replication_config cfg;
  auto router = photos_router();
  CHECK(settled_code(engine::plan_record(record(event_action::copy, "tmp/x"), cfg, router)) == "excluded");
  CHECK(engine::plan_record(record(event_action::remove, "tmp/x"), cfg, router).what == record_plan::work::remove);
  CHECK(settled_code(engine::plan_record(record(event_action::remove, "keep/x"), cfg, router)) == "excluded");
  auto copy = engine::plan_record(record(event_action::copy, "keep/x"), cfg, router);
  CHECK(copy.what == record_plan::work::copy);
  CHECK_FALSE(copy.metadata_only);
  REQUIRE(copy.route.targets.size() == 1);
  CHECK(copy.route.targets[0].bucket == "backup");
}

TEST_CASE("a message's outcome: nak beats term beats ack, so no retry is swallowed") {
  auto ack = message_outcome::ack("copied");
  auto term = message_outcome::term("destination_permanent", "fs");
  auto nak = message_outcome::nak("source_retryable", "503");
  CHECK(engine::merge_outcomes(ack, term).what == message_outcome::kind::term);
  CHECK(engine::merge_outcomes(term, ack).what == message_outcome::kind::term);
  CHECK(engine::merge_outcomes(term, nak).what == message_outcome::kind::nak);
  CHECK(engine::merge_outcomes(nak, term).what == message_outcome::kind::nak);
  CHECK(engine::merge_outcomes(ack, message_outcome::ack("removed")).code == "removed");
}

TEST_CASE("an ack is confirmed when any record of the message wrote, and not when none did") {
  auto skipped = engine::plan_record(record(event_action::skip, "a.jpg"), config::replication_config{}, photos_router());
  REQUIRE(skipped.settled);
  CHECK_FALSE(skipped.settled->confirm);  // a redelivered skip is as cheap as the skip
  auto none = engine::merge_outcomes(message_outcome::ack_without_work("empty"), *skipped.settled);
  CHECK_FALSE(none.confirm);
  auto copied_then_skipped = engine::merge_outcomes(message_outcome::ack("copied"), *skipped.settled);
  CHECK(copied_then_skipped.what == message_outcome::kind::ack);
  CHECK(copied_then_skipped.confirm);  // a lost ack would copy again
  CHECK(engine::merge_outcomes(*skipped.settled, message_outcome::ack("removed")).confirm);
}

TEST_CASE("the targets of a delete say which destinations keep deletes") {
  config::replication_config cfg;
  config::route_config r;
  r.source = {"src", "photos", ""};
  r.destinations = {{"dst", "backup", ""}, {"vault", "keep", ""}};
  r.destinations[0].deletes = config::deletes_policy::ignore;
  r.destinations[1].deletes = config::deletes_policy::ignore;
  route::router keep_all({r});
  // The source is still asked (a delete may uncover an older version, which the backup needs).
  CHECK(engine::plan_record(record(event_action::remove, "a.jpg"), cfg, keep_all).what == record_plan::work::remove);
  CHECK(engine::plan_record(record(event_action::copy, "a.jpg"), cfg, keep_all).what == record_plan::work::copy);
  r.destinations[1].deletes = config::deletes_policy::propagate;
  route::router one_keeps({r});
  auto p = engine::plan_record(record(event_action::remove, "a.jpg"), cfg, one_keeps);
  CHECK(p.what == record_plan::work::remove);
  REQUIRE(p.route.targets.size() == 2);
  CHECK(p.route.targets[0].keeps_deletes);
  CHECK_FALSE(p.route.targets[1].keeps_deletes);
}

TEST_CASE("a source encrypted with a customer key ends the message with its own code; other refusals keep theirs") {
  store::store_error sse_c{store::error_kind::permanent, "src", "HeadObject", "photos", "a.jpg", 400,
                           store::customer_key_code, "encrypted with a customer-provided key", ""};
  auto o = engine::outcome_for(sse_c, "source");
  CHECK(o.what == message_outcome::kind::term);
  CHECK(o.code == "source_customer_key");
  sse_c.code = "InvalidArgument";
  CHECK(engine::outcome_for(sse_c, "source").code == "source_permanent");
  sse_c.kind = store::error_kind::retryable;
  CHECK(engine::outcome_for(sse_c, "source").what == message_outcome::kind::nak);
}
