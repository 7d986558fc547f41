#include "store/range_answer.hpp"

#include <charconv>

namespace archie::store {
namespace {

bool read_number(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

range_answer refused(std::string why) {
  range_answer a;
  a.error = std::move(why);
  return a;
}

}  // namespace

std::optional<content_range> parse_content_range(std::string_view v) {
  constexpr std::string_view unit = "bytes ";
  if (v.substr(0, unit.size()) != unit) return std::nullopt;
  v.remove_prefix(unit.size());
  auto dash = v.find('-');
  auto slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
  content_range r;
  if (!read_number(v.substr(0, dash), r.first) || !read_number(v.substr(dash + 1, slash - dash - 1), r.last) ||
      r.last < r.first)
    return std::nullopt;
  auto total = v.substr(slash + 1);
  if (total != "*") {
    std::uint64_t t = 0;
    if (!read_number(total, t) || r.last >= t) return std::nullopt;
    r.total = t;
  }
  return r;
}

range_answer judge_range_answer(int status, const std::optional<std::string>& header, std::uint64_t offset,
                                std::size_t asked, std::size_t body_bytes, bool may_end_early,
                                std::uint64_t continues) {
  if (body_bytes > asked) return refused("answer is longer than the range asked");
  if (continues > 0 && body_bytes != asked) return refused("answer goes on past a buffer it did not fill");
  const std::uint64_t carried = body_bytes + continues;  // the whole body: the buffer and what goes on
  if (status == 200) {
    // The server ignored the range and sent the whole object: usable only from its start,
    // and only as a whole (the buffer, and what goes on after it when the reader takes that).
    if (offset != 0) return refused("range from byte " + std::to_string(offset) + " answered with the whole object");
    if (body_bytes < asked && !may_end_early)
      return refused("whole object of " + std::to_string(body_bytes) + " bytes, " + std::to_string(asked) + " asked");
    range_answer a;
    a.received = body_bytes;
    a.continues = continues;
    a.total = body_bytes < asked || continues > 0 ? std::optional<std::uint64_t>(carried) : std::nullopt;
    return a;
  }
  if (status != 206) return refused("unexpected status " + std::to_string(status) + " for a ranged read");
  if (!header) return refused("206 answer without Content-Range");
  auto cr = parse_content_range(*header);
  if (!cr) return refused("malformed Content-Range \"" + header->substr(0, 80) + "\"");
  if (cr->first != offset)
    return refused("Content-Range starts at byte " + std::to_string(cr->first) + ", asked from " +
                   std::to_string(offset));
  if (cr->last - cr->first + 1 != carried)
    return refused("Content-Range names " + std::to_string(cr->last - cr->first + 1) + " bytes, the body has " +
                   std::to_string(carried));
  range_answer a;
  a.received = body_bytes;
  a.continues = continues;
  a.total = cr->total;
  if (body_bytes < asked) {
    const bool object_ends = cr->total && cr->last + 1 == *cr->total;
    if (object_ends && !may_end_early)
      return refused("object ends at byte " + std::to_string(*cr->total) + ", before the range asked");
    a.more = !object_ends;
  }
  return a;
}

}  // namespace archie::store
