#include "queue/dead_letters.hpp"

#include "queue/header_value.hpp"

#include "queue/nats_error.hpp"

#include <memory>

namespace archie::queue {
namespace {

struct msg_deleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using dead_letter_msg = std::unique_ptr<natsMsg, msg_deleter>;

std::string header(natsMsg* m, const char* name) {
  const char* v = nullptr;
  return natsMsgHeader_Get(m, name, &v) == NATS_OK && v ? std::string(v) : std::string();
}

std::uint64_t header_number(natsMsg* m, const char* name) {
  std::string v = header(m, name);
  try {
    return v.empty() ? 0 : std::stoull(v);
  } catch (const std::exception&) {
    return 0;  // a header someone else wrote: shown as 0, never fatal
  }
}

dead_letter decode(natsMsg* m, std::uint64_t seq) {
  dead_letter d;
  d.sequence = seq;
  d.stored = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::nanoseconds(natsMsg_GetTime(m))));
  d.code = decode_header_value(header(m, "Archie-Term-Code"));
  d.reason = decode_header_value(header(m, "Archie-Term-Reason"));
  d.original_subject = decode_header_value(header(m, "Archie-Original-Subject"));
  d.original_stream = decode_header_value(header(m, "Archie-Stream"));
  d.original_sequence = header_number(m, "Archie-Stream-Sequence");
  d.deliveries = header_number(m, "Archie-Deliveries");
  d.truncated = header(m, "Archie-Truncated") == "true";
  d.data.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  return d;
}

}  // namespace

std::string dead_letter_stream_name(const config::queue_config& cfg) { return cfg.stream.name + "-dead-letter"; }

bool dead_letter_filter::matches(const dead_letter& d) const {
  if (code && d.code != *code) return false;
  if (since && d.stored < *since) return false;
  return d.sequence >= first_sequence && d.sequence <= last_sequence;
}

void dead_letter_stream::for_each(const dead_letter_filter& filter,
                                  const std::function<bool(const dead_letter&)>& visit) {
  std::string stream = dead_letter_stream_name(cfg_);
  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) throw nats_error("stream info " + stream, s, jerr);
  std::uint64_t first = std::max(info->State.FirstSeq, filter.first_sequence);
  std::uint64_t last = std::min(info->State.LastSeq, filter.last_sequence);
  std::uint64_t count = info->State.Msgs;
  jsStreamInfo_Destroy(info);
  // Deleted sequences leave gaps; reading by sequence skips them (not found).
  for (std::uint64_t seq = first; count > 0 && seq <= last && seq != 0; ++seq) {
    natsMsg* raw = nullptr;
    s = js_GetMsg(&raw, js_, stream.c_str(), seq, nullptr, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) continue;
    if (s != NATS_OK) throw nats_error("get " + stream + " #" + std::to_string(seq), s, jerr);
    dead_letter_msg m(raw);
    dead_letter d = decode(m.get(), seq);
    if (filter.matches(d) && !visit(d)) break;
  }
}

void dead_letter_stream::replay(const dead_letter& d) {
  std::string subject = d.original_subject;
  if (subject.empty() && !cfg_.stream.subjects.empty()) subject = cfg_.stream.subjects.front();
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, subject.c_str(), nullptr, d.data.data(), static_cast<int>(d.data.size()));
  if (s != NATS_OK) throw nats_error("replay message", s);
  dead_letter_msg m(raw);
  natsMsgHeader_Set(m.get(), "Archie-Replayed-From", std::to_string(d.sequence).c_str());
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_PublishMsg(&ack, js_, m.get(), nullptr, &jerr);
  jsPubAck_Destroy(ack);
  if (s != NATS_OK) throw nats_error("replay #" + std::to_string(d.sequence) + " to " + subject, s, jerr);
  remove(d.sequence);
}

void dead_letter_stream::remove(std::uint64_t sequence) {
  std::string stream = dead_letter_stream_name(cfg_);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteMsg(js_, stream.c_str(), sequence, nullptr, &jerr);
  if (s != NATS_OK) throw nats_error("delete " + stream + " #" + std::to_string(sequence), s, jerr);
}

}  // namespace archie::queue
