#include "queue/provisioning.hpp"

#include "log/logger.hpp"
#include "queue/nats_error.hpp"

#include <chrono>

namespace archie::queue {
namespace {

constexpr int64_t ns_per_ms = 1'000'000;

jsRetentionPolicy retention_of(const std::string& s) {
  if (s == "interest") return js_InterestPolicy;
  if (s == "workqueue") return js_WorkQueuePolicy;
  return js_LimitsPolicy;
}

jsDeliverPolicy deliver_policy_of(const std::string& s) {
  if (s == "new") return js_DeliverNew;
  if (s == "last") return js_DeliverLast;
  return js_DeliverAll;
}

template <class T>
void compare(std::vector<std::string>& diffs, const char* name, const T& live, const T& wanted) {
  if (live != wanted) diffs.push_back(std::string(name) + ": " + std::to_string(live) + " -> " + std::to_string(wanted));
}

void compare_text(std::vector<std::string>& diffs, const char* name, const char* live, const std::string& wanted) {
  std::string l = live ? live : "";
  if (l != wanted) diffs.push_back(std::string(name) + ": \"" + l + "\" -> \"" + wanted + "\"");
}

std::vector<std::string> stream_differences(const jsStreamConfig& live, const config::stream_config& want) {
  std::vector<std::string> d;
  std::vector<std::string> live_subjects(live.Subjects, live.Subjects + live.SubjectsLen);
  if (live_subjects != want.subjects) {
    std::string a, b;
    for (auto& s : live_subjects) a += (a.empty() ? "" : ",") + s;
    for (auto& s : want.subjects) b += (b.empty() ? "" : ",") + s;
    d.push_back("stream.subjects: [" + a + "] -> [" + b + "]");
  }
  compare(d, "stream.retention", static_cast<int>(live.Retention), static_cast<int>(retention_of(want.retention)));
  compare(d, "stream.max_bytes", live.MaxBytes, want.max_bytes);
  compare(d, "stream.max_age_ns", live.MaxAge, static_cast<int64_t>(want.max_age.count()) * ns_per_ms);
  compare(d, "stream.replicas", live.Replicas, want.replicas);
  compare_text(d, "stream.republish_source", live.RePublish ? live.RePublish->Source : nullptr, want.republish_source);
  compare_text(d, "stream.republish_destination", live.RePublish ? live.RePublish->Destination : nullptr,
               want.republish_destination);
  return d;
}

std::vector<std::string> consumer_differences(const jsConsumerConfig& live, const config::consumer_config& want) {
  std::vector<std::string> d;
  compare(d, "consumer.ack_wait_ns", live.AckWait, static_cast<int64_t>(want.ack_wait.count()) * ns_per_ms);
  compare(d, "consumer.max_deliver", live.MaxDeliver, want.max_deliver);
  compare(d, "consumer.max_ack_pending", live.MaxAckPending, want.max_ack_pending);
  compare(d, "consumer.deliver_policy", static_cast<int>(live.DeliverPolicy),
          static_cast<int>(deliver_policy_of(want.deliver_policy)));
  compare_text(d, "consumer.filter_subject", live.FilterSubject, want.filter_subject);
  std::vector<int64_t> live_backoff(live.BackOff, live.BackOff + live.BackOffLen), want_backoff;
  for (auto b : want.backoff) want_backoff.push_back(static_cast<int64_t>(b.count()) * ns_per_ms);
  if (live_backoff != want_backoff) d.push_back("consumer.backoff: changed");
  compare(d, "consumer.ack_policy", static_cast<int>(live.AckPolicy), static_cast<int>(js_AckExplicit));
  return d;
}

provision_action provision_stream(jsCtx* js, const config::stream_config& want, std::vector<std::string>& diffs) {
  std::vector<const char*> subjects;
  for (const auto& s : want.subjects) subjects.push_back(s.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = want.name.c_str();
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  cfg.Retention = retention_of(want.retention);
  cfg.MaxBytes = want.max_bytes;
  cfg.MaxAge = static_cast<int64_t>(want.max_age.count()) * ns_per_ms;
  cfg.Replicas = want.replicas;
  cfg.Storage = js_FileStorage;
  jsRePublish republish{want.republish_source.c_str(), want.republish_destination.c_str(), false};
  if (!want.republish_source.empty()) cfg.RePublish = &republish;

  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, js, want.name.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) {
    s = js_AddStream(nullptr, js, &cfg, nullptr, &jerr);
    if (s != NATS_OK) throw nats_error("create stream " + want.name, s, jerr);
    return provision_action::created;
  }
  if (s != NATS_OK) throw nats_error("read stream " + want.name, s, jerr);
  auto d = stream_differences(*info->Config, want);
  jsStreamInfo_Destroy(info);
  if (d.empty()) return provision_action::unchanged;
  for (auto& line : d) log::info("stream config drifted", {{"stream", want.name}, {"difference", line}});
  s = js_UpdateStream(nullptr, js, &cfg, nullptr, &jerr);
  if (s != NATS_OK) throw nats_error("update stream " + want.name, s, jerr);
  diffs.insert(diffs.end(), d.begin(), d.end());
  return provision_action::updated;
}

provision_action provision_consumer(jsCtx* js, const std::string& stream, const config::consumer_config& want,
                                    std::vector<std::string>& diffs) {
  std::vector<int64_t> backoff;
  for (auto b : want.backoff) backoff.push_back(static_cast<int64_t>(b.count()) * ns_per_ms);
  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.Durable = want.durable.c_str();
  cfg.AckPolicy = js_AckExplicit;
  cfg.AckWait = static_cast<int64_t>(want.ack_wait.count()) * ns_per_ms;
  cfg.MaxDeliver = want.max_deliver;
  cfg.MaxAckPending = want.max_ack_pending;
  cfg.DeliverPolicy = deliver_policy_of(want.deliver_policy);
  if (!want.filter_subject.empty()) cfg.FilterSubject = want.filter_subject.c_str();
  if (!backoff.empty()) {
    cfg.BackOff = backoff.data();
    cfg.BackOffLen = static_cast<int>(backoff.size());
  }

  jsConsumerInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&info, js, stream.c_str(), want.durable.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) {
    s = js_AddConsumer(nullptr, js, stream.c_str(), &cfg, nullptr, &jerr);
    if (s != NATS_OK) throw nats_error("create consumer " + want.durable + " on stream " + stream, s, jerr);
    return provision_action::created;
  }
  if (s != NATS_OK) throw nats_error("read consumer " + want.durable + " on stream " + stream, s, jerr);
  auto d = consumer_differences(*info->Config, want);
  jsConsumerInfo_Destroy(info);
  if (d.empty()) return provision_action::unchanged;
  for (auto& line : d) log::info("consumer config drifted", {{"consumer", want.durable}, {"difference", line}});
  s = js_UpdateConsumer(nullptr, js, stream.c_str(), &cfg, nullptr, &jerr);
  if (s != NATS_OK) throw nats_error("update consumer " + want.durable + " on stream " + stream, s, jerr);
  diffs.insert(diffs.end(), d.begin(), d.end());
  return provision_action::updated;
}

const char* action_name(provision_action a) {
  switch (a) {
    case provision_action::created: return "created";
    case provision_action::updated: return "updated";
    default: return "unchanged";
  }
}

}  // namespace

provision_result provision(jsCtx* js, const config::queue_config& cfg) {
  provision_result r;
  if (cfg.stream.provision) r.stream = provision_stream(js, cfg.stream, r.differences);
  if (cfg.stream.provision && !cfg.dead_letter_subject.empty()) {
    // Dead letters must be stored, not just published: without a stream capturing the
    // subject, terminating would throw the message away.
    config::stream_config dlq;
    dlq.name = cfg.stream.name + "-dead-letter";
    dlq.subjects = {cfg.dead_letter_subject};
    dlq.retention = "limits";
    dlq.replicas = cfg.stream.replicas;
    dlq.max_bytes = cfg.dead_letter_max_bytes;
    dlq.max_age = cfg.dead_letter_max_age;
    provision_stream(js, dlq, r.differences);
  }
  if (cfg.consumer.provision) r.consumer = provision_consumer(js, cfg.stream.name, cfg.consumer, r.differences);
  log::info("JetStream provisioning done", {{"stream", cfg.stream.name},
                                            {"stream_action", action_name(r.stream)},
                                            {"consumer", cfg.consumer.durable},
                                            {"consumer_action", action_name(r.consumer)}});
  return r;
}

}  // namespace archie::queue
