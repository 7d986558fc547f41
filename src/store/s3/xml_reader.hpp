#pragma once
// Just enough XML for S3's responses (errors, listings, multipart results): find elements
// by tag and unescape their text. S3 documents are flat and machine-written; a general
// parser would buy nothing here.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archie::store::s3 {

/// Text content of every <tag>...</tag> at any depth, in document order (raw, still escaped).
std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view tag);
/// Unescaped text of the first <tag>; nullopt when absent.
std::optional<std::string> xml_first(std::string_view xml, std::string_view tag);
/// Resolves &amp; &lt; &gt; &quot; &apos; and numeric character references.
std::string xml_unescape(std::string_view text);
/// Escapes text for an element body.
std::string xml_escape(std::string_view text);

}  // namespace archie::store::s3
