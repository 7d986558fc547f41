// credential_process without a profile around it: how its command line is split, how it is
// run, and what its output must hold.
#include "store/s3/credentials/credential_process.hpp"
#include "store/s3/credentials/shared_config_file.hpp"

#include <doctest/doctest.h>

using namespace archie::store::s3;
using namespace std::chrono_literals;
using words = std::vector<std::string>;

TEST_CASE("a credential_process command line is split into words as a shell would, without a shell") {
  CHECK(split_command_line("/usr/bin/aws-vault export --format=json prod") ==
        words{"/usr/bin/aws-vault", "export", "--format=json", "prod"});
  CHECK(split_command_line("tool 'two words' \"a \\\"quoted\\\" one\" back\\ slash") ==
        words{"tool", "two words", "a \"quoted\" one", "back slash"});
  CHECK(split_command_line("  spaced   out  ") == words{"spaced", "out"});
  CHECK(split_command_line("tool ''") == words{"tool", ""});
  CHECK(split_command_line("tool $HOME *") == words{"tool", "$HOME", "*"});  // no expansion
  CHECK_FALSE(split_command_line("tool 'open"));
  CHECK_FALSE(split_command_line("tool \"open"));
}

TEST_CASE("a credential process runs without a shell; its output, exit status and a hang are told apart") {
  auto ok = run_process({"/bin/echo", "-n", "{\"Version\": 1}"}, 5s);
  CHECK(ok.ran);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == "{\"Version\": 1}");
  auto failing = run_process({"/bin/false"}, 5s);
  CHECK(failing.ran);
  CHECK(failing.exit_code == 1);
  auto missing = run_process({"/no/such/tool"}, 5s);
  CHECK_FALSE(missing.ran);
  CHECK(missing.problem.find("cannot start /no/such/tool") != std::string::npos);
  auto hung = run_process({"/bin/sleep", "10"}, 200ms);
  CHECK_FALSE(hung.ran);
  CHECK(hung.problem.find("did not finish within 200 ms") != std::string::npos);
  // It exits, but a child it left behind keeps stdout open: its output counts, no timeout.
  auto detached = run_process({"/bin/sh", "-c", "echo done; sleep 5 &"}, 3s);
  CHECK(detached.ran);
  CHECK(detached.out == "done\n");
  // It closes stdout and lingers: the deadline still holds.
  auto lingering = run_process({"/bin/sh", "-c", "exec >&-; sleep 5"}, 300ms);
  CHECK_FALSE(lingering.ran);
  auto chatty = run_process({"/bin/cat", "/dev/zero"}, 5s, 1000);
  CHECK_FALSE(chatty.ran);
  CHECK(chatty.out.empty());
}

TEST_CASE("a credential process's output needs Version 1 and both keys; token and expiry are optional") {
  auto full = parse_credential_process_output(
      R"({"Version": 1, "AccessKeyId": "AK", "SecretAccessKey": "SK", "SessionToken": "T",
          "Expiration": "2030-01-01T00:00:00Z"})");
  REQUIRE(full.creds);
  CHECK(full.creds->keys.session_token == "T");
  CHECK(full.creds->expiration);
  auto long_lived = parse_credential_process_output(R"({"Version": 1, "AccessKeyId": "AK", "SecretAccessKey": "SK"})");
  REQUIRE(long_lived.creds);
  CHECK_FALSE(long_lived.creds->expiration);
  CHECK_FALSE(parse_credential_process_output(R"({"Version": 2, "AccessKeyId": "AK", "SecretAccessKey": "SK"})").creds);
  auto no_secret = parse_credential_process_output(R"({"Version": 1, "AccessKeyId": "AK"})");
  CHECK_FALSE(no_secret.creds);
  CHECK(no_secret.error.find("SecretAccessKey") != std::string::npos);
  CHECK_FALSE(parse_credential_process_output("AK SK").creds);
}

TEST_CASE("a profile's settings merge both files, the credentials file winning") {
  auto s = profile_settings("[writer]\naws_access_key_id = FROMCREDS\n",
                            "[profile writer]\nrole_arn = arn:aws:iam::1:role/r\naws_access_key_id = FROMCONFIG\n"
                            "source_profile = base\n",
                            "writer");
  REQUIRE(s);
  CHECK(s->at("aws_access_key_id") == "FROMCREDS");
  CHECK(s->at("role_arn") == "arn:aws:iam::1:role/r");
  CHECK(s->at("source_profile") == "base");
  CHECK_FALSE(profile_settings("", "[profile other]\nregion = x\n", "writer"));
}
