#include "store/range_answer.hpp"

#include <doctest/doctest.h>

using archie::store::judge_range_answer;
using archie::store::parse_content_range;

TEST_CASE("a Content-Range names its first and last byte and the total, or * for an unknown total") {
  auto r = parse_content_range("bytes 0-99/1234");
  REQUIRE(r);
  CHECK(r->first == 0);
  CHECK(r->last == 99);
  CHECK(r->total == 1234u);
  auto open = parse_content_range("bytes 5-9/*");
  REQUIRE(open);
  CHECK_FALSE(open->total);
  CHECK_FALSE(parse_content_range("bytes */1234"));      // unsatisfied range: no bytes carried
  CHECK_FALSE(parse_content_range("bytes 9-5/100"));     // last before first
  CHECK_FALSE(parse_content_range("bytes 0-100/100"));   // last byte past the end
  CHECK_FALSE(parse_content_range("items 0-1/2"));
  CHECK_FALSE(parse_content_range("bytes 0-1x/2"));
}

TEST_CASE("an exact answer to a ranged read is used as it is") {
  auto a = judge_range_answer(206, std::string("bytes 100-199/1000"), 100, 100, 100, false);
  CHECK(a.error.empty());
  CHECK(a.received == 100);
  CHECK_FALSE(a.more);
  CHECK(a.total == 1000u);
}

TEST_CASE("a shorter range than asked, while the object goes on, asks for the rest") {
  // The first half of the range: legal HTTP, and the bytes after it were never received.
  auto a = judge_range_answer(206, std::string("bytes 0-511/1024"), 0, 1024, 512, true);
  CHECK(a.error.empty());
  CHECK(a.received == 512);
  CHECK(a.more);
  auto part = judge_range_answer(206, std::string("bytes 0-2621439/7340032"), 0, 5242880, 2621440, false);
  CHECK(part.error.empty());
  CHECK(part.more);
}

TEST_CASE("a read of up to N bytes of a smaller object ends with the object") {
  auto a = judge_range_answer(206, std::string("bytes 0-99/100"), 0, 65536, 100, true);
  CHECK(a.error.empty());
  CHECK_FALSE(a.more);
  CHECK(a.total == 100u);
  // A part read that expected N bytes and found the object ending sooner: the object shrank.
  auto part = judge_range_answer(206, std::string("bytes 0-99/100"), 0, 200, 100, false);
  CHECK_FALSE(part.error.empty());
}

TEST_CASE("an answer that starts elsewhere or disagrees with its own body is refused") {
  CHECK_FALSE(judge_range_answer(206, std::string("bytes 0-99/1000"), 100, 100, 100, false).error.empty());
  CHECK_FALSE(judge_range_answer(206, std::string("bytes 100-149/1000"), 100, 100, 100, false).error.empty());
  CHECK_FALSE(judge_range_answer(206, std::nullopt, 0, 100, 100, false).error.empty());
  CHECK_FALSE(judge_range_answer(206, std::string("garbage"), 0, 100, 100, false).error.empty());
  CHECK_FALSE(judge_range_answer(204, std::nullopt, 0, 100, 0, true).error.empty());
}

TEST_CASE("a whole-object answer to a ranged read is used only from the object's first byte") {
  auto whole = judge_range_answer(200, std::nullopt, 0, 65536, 1000, true);
  CHECK(whole.error.empty());
  CHECK(whole.received == 1000);
  CHECK(whole.total == 1000u);
  CHECK_FALSE(judge_range_answer(200, std::nullopt, 5242880, 5242880, 5242880, false).error.empty());
  CHECK_FALSE(judge_range_answer(200, std::nullopt, 0, 2000, 1000, false).error.empty());
}

TEST_CASE("an answer that goes on past the buffer carries the buffer and the bytes right after it") {
  // "bytes=0-" of a 3000-byte object into 1000 bytes: 2000 bytes stay on the connection.
  auto a = judge_range_answer(206, std::string("bytes 0-2999/3000"), 0, 1000, 1000, false, 2000);
  CHECK(a.error.empty());
  CHECK(a.received == 1000);
  CHECK(a.continues == 2000);
  CHECK(a.total == 3000u);
  CHECK_FALSE(a.more);
  // A server that ignores the range sends the whole object: usable from byte 0 only.
  auto whole = judge_range_answer(200, std::nullopt, 0, 1000, 1000, false, 2000);
  CHECK(whole.error.empty());
  CHECK(whole.total == 3000u);
  CHECK(whole.continues == 2000);
  CHECK_FALSE(judge_range_answer(200, std::nullopt, 500, 1000, 1000, false, 2000).error.empty());
  // A shorter range that still goes on past the buffer: the stream ends where it says.
  auto shorter = judge_range_answer(206, std::string("bytes 0-1499/3000"), 0, 1000, 1000, false, 500);
  CHECK(shorter.error.empty());
  CHECK(shorter.continues == 500);
}

TEST_CASE("an answer that goes on must start where asked and carry exactly what its Content-Range names") {
  CHECK_FALSE(judge_range_answer(206, std::string("bytes 10-2999/3000"), 0, 1000, 1000, false, 1990).error.empty());
  CHECK_FALSE(judge_range_answer(206, std::string("bytes 0-2999/3000"), 0, 1000, 1000, false, 1000).error.empty());
  CHECK_FALSE(judge_range_answer(206, std::nullopt, 0, 1000, 1000, false, 2000).error.empty());
  // It cannot go on past a buffer it did not fill.
  CHECK_FALSE(judge_range_answer(206, std::string("bytes 0-2999/3000"), 0, 1000, 900, false, 2100).error.empty());
}
