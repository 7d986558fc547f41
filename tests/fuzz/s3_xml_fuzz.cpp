// The S3 XML reader (src/store/s3/xml_reader.cpp) on any bytes: every element it returns must
// lie inside the document, unescaping never grows text (entities are longer than what they
// stand for), and escaping then unescaping gives the text back. Besides the tags S3 answers
// use, the text before the first newline (if short) is tried as a tag too.
#include "store/s3/xml_reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <functional>

using namespace archie::store::s3;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  std::less_equal<const char*> le;
  return part.empty() || (le(whole.data(), part.data()) && le(part.data() + part.size(), whole.data() + whole.size()));
}

void check_tag(std::string_view xml, std::string_view tag) {
  auto all = xml_elements(xml, tag);
  for (auto e : all) FUZZ_REQUIRE(inside(e, xml));
  auto first = xml_first(xml, tag);
  FUZZ_REQUIRE(first.has_value() == !all.empty());
  if (first) FUZZ_REQUIRE(first->size() <= all.front().size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto xml = archie::fuzz::as_text(data, size);
  for (std::string_view tag : {"Code", "Message", "Key", "Size", "ETag", "Contents", "Upload", "UploadId",
                               "IsTruncated", "NextContinuationToken"})
    check_tag(xml, tag);
  if (auto nl = xml.find('\n'); nl != std::string_view::npos && nl > 0 && nl <= 16) check_tag(xml, xml.substr(0, nl));

  FUZZ_REQUIRE(xml_unescape(xml).size() <= xml.size());
  FUZZ_REQUIRE(xml_unescape(xml_escape(xml)) == xml);
  return 0;
}
