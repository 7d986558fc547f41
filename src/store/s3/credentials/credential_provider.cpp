#include "store/s3/credentials/credential_provider.hpp"

#include "config/url_redaction.hpp"

#include "async/run_blocking.hpp"
#include "async/single_flight.hpp"
#include "config/secret_file.hpp"
#include "http/client_cache.hpp"
#include "http/percent_encoding.hpp"
#include "log/logger.hpp"
#include "store/request_runner.hpp"
#include "store/s3/credentials/credential_process.hpp"
#include "store/s3/credentials/refresh_schedule.hpp"
#include "store/s3/credentials/shared_config_file.hpp"

#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cctype>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>

// GCC 12 rules (async/gcc12_coroutines.hpp): requests and errors are built by the plain
// functions below, and coroutines take references to named objects.

namespace archie::store::s3 {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

enum class source { static_keys, env, profile, web_identity, container, imds };

constexpr int remote_attempts = 3;
constexpr auto file_recheck = 2s;  // how often file-backed keys look at their files
constexpr const char* imds_default_endpoint = "http://169.254.169.254";
constexpr const char* container_host = "http://169.254.170.2";  // ECS, for a relative URI
constexpr const char* imds_token_ttl = "21600";
constexpr auto uncertain_invalidation_interval = 10s;
constexpr int max_profile_hops = 4;  // role_arn -> source_profile -> ... (the AWS CLI allows chains)
constexpr std::chrono::milliseconds credential_process_timeout{60000};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string{};
}

const char* source_name(source s) {
  switch (s) {
    case source::static_keys: return "static";
    case source::env: return "env";
    case source::profile: return "profile";
    case source::web_identity: return "web_identity";
    case source::container: return "container";
    case source::imds: return "imds";
  }
  return "?";
}

std::string home_file(const char* env_name, const char* under_home) {
  std::string p = env(env_name);
  if (!p.empty()) return p;
  std::string home = env("HOME");
  return home.empty() ? std::string{} : home + under_home;
}

// A missing file reads as empty: the SDKs treat an absent ~/.aws/config as "no profiles".
std::string read_optional_file(const std::string& path) {
  if (path.empty()) return {};
  std::string error;
  return config::read_secret_file(path, error);
}

bool env_keys_present() { return !env("AWS_ACCESS_KEY_ID").empty() && !env("AWS_SECRET_ACCESS_KEY").empty(); }
bool web_identity_present() { return !env("AWS_ROLE_ARN").empty() && !env("AWS_WEB_IDENTITY_TOKEN_FILE").empty(); }
bool container_present() {
  return !env("AWS_CONTAINER_CREDENTIALS_FULL_URI").empty() || !env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty();
}
bool imds_disabled() {
  std::string v = env("AWS_EC2_METADATA_DISABLED");
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true";
}

store_error cred_error(const std::string& store, error_kind kind, int status, std::string code, std::string message) {
  return store_error{kind, store, "FetchCredentials", "", "", status, std::move(code), std::move(message), ""};
}

error_kind kind_for_status(int status) {
  if (status == 408 || status == 429 || status >= 500) return error_kind::retryable;
  return error_kind::permission;
}

http::request sts_request(const http::endpoint& ep, std::span<const std::byte> body) {
  http::request req;
  req.method = "POST";
  req.target = ep.base_path.empty() ? "/" : ep.base_path + "/";
  req.headers.emplace_back("content-type", "application/x-www-form-urlencoded; charset=utf-8");
  req.body = body;
  return req;
}

// STS AssumeRole: the same answer format as AssumeRoleWithWebIdentity, signed (SigV4,
// service "sts") with the source profile's credentials.
std::string assume_role_form(const std::string& role_arn, const std::string& session_name,
                             const std::string& external_id, const std::string& duration_seconds) {
  std::string form = "Action=AssumeRole&Version=2011-06-15&RoleArn=" + http::percent_encode(role_arn) +
                     "&RoleSessionName=" + http::percent_encode(session_name);
  if (!external_id.empty()) form += "&ExternalId=" + http::percent_encode(external_id);
  if (!duration_seconds.empty()) form += "&DurationSeconds=" + http::percent_encode(duration_seconds);
  return form;
}

void sign_sts_request(http::request& req, const http::endpoint& ep, std::string_view form, const credentials& keys,
                      const std::string& region) {
  request_to_sign r;
  r.method = req.method;
  r.path = req.target;
  r.headers = {{"host", ep.host_header()}};
  for (const auto& [name, value] : req.headers)  // signed as sent (sts_request sets it)
    if (name == "content-type") r.headers.emplace_back(name, value);
  r.payload_hash = sha256_hex(form);
  r.s3_path_rules = false;
  r.content_sha256_header = false;
  auto signed_request = sign_v4(r, keys, region, "sts", std::chrono::system_clock::now());
  for (auto& h : signed_request.headers_to_add) req.headers.push_back(std::move(h));
}

std::string sts_form(const std::string& role_arn, const std::string& session_name, const std::string& token) {
  return "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + http::percent_encode(role_arn) +
         "&RoleSessionName=" + http::percent_encode(session_name) +
         "&WebIdentityToken=" + http::percent_encode(token);
}

http::request get_request(std::string target, const char* header, const std::string& value) {
  http::request req;
  req.method = "GET";
  req.target = std::move(target);
  if (!value.empty()) req.headers.emplace_back(header, value);
  return req;
}

http::request imds_token_request() {
  http::request req;
  req.method = "PUT";
  req.target = "/latest/api/token";
  req.headers.emplace_back("x-aws-ec2-metadata-token-ttl-seconds", imds_token_ttl);
  return req;
}

// parse_endpoint keeps a URL's path (and any query) as base_path.
std::string target_of(const http::endpoint& ep) { return ep.base_path.empty() ? "/" : ep.base_path; }

std::string first_line(std::string_view text) {
  auto nl = text.find_first_of("\r\n");
  std::string_view line = text.substr(0, nl);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  return std::string(line);
}

std::optional<http::endpoint> endpoint_of(const std::string& url) { return http::parse_endpoint(url); }

}  // namespace

const char* credentials_mode_name(config::s3_credentials mode) {
  switch (mode) {
    case config::s3_credentials::static_keys: return "static";
    case config::s3_credentials::env: return "env";
    case config::s3_credentials::profile: return "profile";
    case config::s3_credentials::web_identity: return "web_identity";
    case config::s3_credentials::container: return "container";
    case config::s3_credentials::imds: return "imds";
    case config::s3_credentials::chain: return "chain";
  }
  return "?";
}

struct credential_provider::impl {
  asio::any_io_executor executor;
  std::string store;
  config::s3_store_config cfg;
  config::s3_credentials mode;
  config::secret_file_watch access_key, secret_key, session_token;
  std::optional<source> current_source;

  // The cached credentials and when to replace them.
  bool have = false;
  aws_credentials cached;
  wall_clock::time_point refresh_at{};
  wall_clock::time_point usable_to{};

  // One fetch at a time; the others wait for it and read its outcome.
  async::single_flight refresh;
  std::optional<store_error> last_failure;
  std::size_t fetched = 0;
  std::mt19937_64 rng{std::random_device{}()};

  http::client_cache clients;
  std::optional<asio::thread_pool> process_pool;  ///< runs credential_process (blocking), made on first use
  /// The last fetch ran a credential_process: without an Expiration its keys are kept until
  /// a server refuses them (the process is not run every few seconds like a file is read).
  bool from_process = false;
  std::chrono::steady_clock::time_point last_guess{};  // last invalidate(certain = false) honoured

  impl(asio::any_io_executor ex, std::string name, const config::s3_store_config& c)
      : executor(ex),
        store(std::move(name)),
        cfg(c),
        mode(c.credentials),
        access_key(c.access_key_id),
        secret_key(c.secret_access_key),
        session_token(c.session_token),
        refresh(ex),
        clients(ex) {}

  bool files_watched() const { return access_key.watched() || secret_key.watched() || session_token.watched(); }

  // Which source serves the next fetch; nullopt when the chain finds none.
  std::optional<source> resolve() const {
    switch (mode) {
      case config::s3_credentials::static_keys: return source::static_keys;
      case config::s3_credentials::env: return source::env;
      case config::s3_credentials::profile: return source::profile;
      case config::s3_credentials::web_identity: return source::web_identity;
      case config::s3_credentials::container: return source::container;
      case config::s3_credentials::imds: return source::imds;
      case config::s3_credentials::chain: break;
    }
    if (env_keys_present()) return source::env;
    if (web_identity_present()) return source::web_identity;
    // A profile counts when it can give credentials: keys, a role to assume, or a process.
    if (auto s = profile_settings(read_optional_file(credentials_file()), read_optional_file(config_file()),
                                  profile_name());
        s && (s->count("role_arn") || s->count("credential_process") ||
              (s->count("aws_access_key_id") && s->count("aws_secret_access_key"))))
      return source::profile;
    if (container_present()) return source::container;
    if (!imds_disabled()) return source::imds;
    return std::nullopt;
  }

  std::string profile_name() const {
    if (!cfg.profile.empty()) return cfg.profile;
    std::string p = env("AWS_PROFILE");
    return p.empty() ? "default" : p;
  }
  static std::string credentials_file() { return home_file("AWS_SHARED_CREDENTIALS_FILE", "/.aws/credentials"); }
  static std::string config_file() { return home_file("AWS_CONFIG_FILE", "/.aws/config"); }

  store_error failure(error_kind kind, int status, std::string code, const std::string& detail) {
    std::string where = current_source ? source_name(*current_source) : "chain";
    return cred_error(store, kind, status, std::move(code), "credentials from " + where + ": " + detail);
  }

  http::client& client_for(const std::string& url, const http::endpoint& ep, std::chrono::milliseconds timeout) {
    http::client_options opts;
    opts.max_connections = 2;
    opts.connect_timeout = timeout;
    opts.io_timeout = timeout;
    return clients.get(url, ep, opts);
  }

  // One request, retried on transport failures and 5xx/429. A non-2xx answer that is not
  // transient is returned as a response for the caller to read.
  asio::awaitable<result<http::response>> send(http::client& client, const http::request& req,
                                                const std::string& where, int attempts) {
    const std::string none;
    request_identity who{store, "FetchCredentials", none, none};
    retry_rules rules;
    rules.max_attempts = attempts;
    rules.backoff = config::backoff_config{200ms, 2.0, 2000ms, 0.3};
    auto prepare = [&req] { return result<http::request>(req); };
    auto judge = [&](http::response& r) {
      verdict v;
      if (kind_for_status(r.status) == error_kind::retryable)
        v.error = failure(error_kind::retryable, r.status, "HTTP" + std::to_string(r.status),
                          where + " answered " + std::to_string(r.status));
      return v;
    };
    auto answer = co_await run_request(executor, client, who, rules, {}, prepare, judge);
    if (answer || answer.error().http_status != 0) co_return answer;
    // No answer: say where from, as the answers do.
    co_return failure(error_kind::retryable, 0, "CredentialsEndpointUnreachable", where + ": " + answer.error().message);
  }

  result<aws_credentials> read_static() {
    aws_credentials out;
    out.keys = credentials{access_key.value().reveal(), secret_key.value().reveal(), session_token.value().reveal()};
    if (out.keys.access_key_id.empty() || out.keys.secret_access_key.empty())
      return failure(error_kind::permission, 0, "CredentialsMissing", "access_key_id or secret_access_key is empty");
    return out;
  }

  result<aws_credentials> read_env() {
    aws_credentials out;
    out.keys = credentials{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
    if (out.keys.access_key_id.empty() || out.keys.secret_access_key.empty())
      return failure(error_kind::permission, 0, "CredentialsMissing",
                     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set");
    return out;
  }

  // A profile's credentials: a role assumed with its source_profile's credentials
  // (role_arn), the output of its credential_process, or its static keys, in the AWS CLI's
  // order. A source_profile may itself assume a role, up to a few hops.
  asio::awaitable<result<aws_credentials>> fetch_profile(const std::string& name, int hops) {
    auto settings = profile_settings(read_optional_file(credentials_file()), read_optional_file(config_file()), name);
    if (!settings)
      co_return failure(error_kind::permission, 0, "CredentialsMissing",
                        "no profile \"" + name + "\" in the shared credentials or config file");
    auto get = [&](const char* k) {
      auto it = settings->find(k);
      return it == settings->end() ? std::string() : it->second;
    };
    if (std::string role = get("role_arn"); !role.empty()) {
      std::string source_profile = get("source_profile");
      if (source_profile.empty())
        co_return failure(error_kind::permission, 0, "CredentialsMissing",
                          "profile \"" + name + "\" has role_arn but no source_profile (credential_source is not "
                          "supported)");
      if (hops >= max_profile_hops)
        co_return failure(error_kind::permission, 0, "CredentialsMissing",
                          "profile \"" + name + "\": more than " + std::to_string(max_profile_hops) +
                              " source_profile hops (a loop?)");
      ++fetched;
      // A profile naming itself uses its own static keys (as the AWS CLI does).
      std::optional<result<aws_credentials>> base;
      if (source_profile == name) base = static_profile_keys(name);
      else base = co_await fetch_profile(source_profile, hops + 1);
      if (!*base) co_return base->error();
      // Named, not temporaries in the co_await: GCC 12 rule 1 (async/gcc12_coroutines.hpp).
      const std::string session = get("role_session_name"), external_id = get("external_id"),
                        duration = get("duration_seconds");
      co_return co_await assume_role(role, session, external_id, duration, (*base)->keys, name);
    }
    if (std::string command = get("credential_process"); !command.empty()) {
      ++fetched;
      from_process = true;
      co_return co_await run_credential_process(command, name);
    }
    co_return static_profile_keys(name);
  }

  result<aws_credentials> static_profile_keys(const std::string& name) {
    std::string error;
    auto creds = profile_credentials(read_optional_file(credentials_file()), read_optional_file(config_file()), name,
                                     error);
    if (!creds) return failure(error_kind::permission, 0, "CredentialsMissing", error);
    return std::move(*creds);
  }

  asio::awaitable<result<aws_credentials>> assume_role(const std::string& role_arn, const std::string& session_name,
                                                       const std::string& external_id,
                                                       const std::string& duration_seconds, const credentials& keys,
                                                       const std::string& profile) {
    const std::string form = assume_role_form(role_arn, session_or_default(session_name), external_id, duration_seconds);
    const std::string what = "AssumeRole for " + role_arn + " (profile " + profile + ")";
    co_return co_await call_sts(form, &keys, what);
  }

  static std::string session_or_default(const std::string& session) {
    if (!session.empty()) return session;
    return "archie-" +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wall_clock::now().time_since_epoch()).count());
  }

  // One STS call: AssumeRoleWithWebIdentity (unsigned: the token is the proof) or AssumeRole
  // (signed with `signer`). `what` names the action and role in errors.
  asio::awaitable<result<aws_credentials>> call_sts(const std::string& form, const credentials* signer,
                                                    const std::string& what) {
    std::string url = sts_url();
    auto ep = endpoint_of(url);
    if (!ep) co_return failure(error_kind::permission, 0, "InvalidStsEndpoint", url + " is not an http(s) URL");
    auto req = sts_request(*ep, std::as_bytes(std::span(form)));
    if (signer) sign_sts_request(req, *ep, form, *signer, cfg.region);
    auto& client = client_for(url, *ep, cfg.connect_timeout);
    std::string where = "STS " + url + " " + what;
    auto r = co_await send(client, req, where, remote_attempts);
    if (!r) co_return r.error();
    auto answer = parse_sts_answer(r->body);
    if (!answer.creds) co_return from_answer(answer, r->status, where);
    co_return std::move(*answer.creds);
  }

  asio::awaitable<result<aws_credentials>> run_credential_process(const std::string& command,
                                                                  const std::string& profile) {
    const std::string where = "credential_process of profile " + profile;
    auto argv = split_command_line(command);
    if (!argv || argv->empty())
      co_return failure(error_kind::permission, 0, "InvalidCredentialProcess", where + ": the command has an open quote or is empty");
    if (!process_pool) process_pool.emplace(1);
    const std::vector<std::string>& args = *argv;
    auto run = [&args] { return run_process(args, credential_process_timeout); };
    process_output out = co_await async::run_blocking(*process_pool, run);
    // Its output is credentials: never quoted in an error.
    if (!out.ran) co_return failure(error_kind::retryable, 0, "CredentialProcessFailed", where + ": " + out.problem);
    if (out.exit_code != 0)
      co_return failure(error_kind::retryable, 0, "CredentialProcessFailed",
                        where + ": " + args.front() + " exited with status " + std::to_string(out.exit_code));
    auto answer = parse_credential_process_output(out.out);
    if (!answer.creds) co_return failure(error_kind::permission, 0, "CredentialProcessFailed", where + ": " + answer.error);
    co_return std::move(*answer.creds);
  }

  std::string sts_url() const {
    std::string url = cfg.sts_endpoint;
    if (url.empty()) url = env("AWS_ENDPOINT_URL_STS");
    if (url.empty()) url = "https://sts." + cfg.region + ".amazonaws.com";
    return url;
  }

  store_error from_answer(const credentials_answer& a, int status, const std::string& where) {
    // STS: a failed call to the identity provider is worth another try; a bad token is not.
    error_kind kind = kind_for_status(status);
    if (a.error_code == "IDPCommunicationError" || a.error_code == "Throttling") kind = error_kind::retryable;
    if (status == 200) kind = error_kind::retryable;  // a garbled answer from a healthy server
    return failure(kind, status, a.error_code.empty() ? "BadCredentialsAnswer" : a.error_code, where + ": " + a.error);
  }

  // The container endpoint's and IMDS's answer: 200 with the credentials JSON.
  result<aws_credentials> json_answer(const http::response& r, const std::string& where) {
    if (r.status != 200)
      return failure(kind_for_status(r.status), r.status, "HTTP" + std::to_string(r.status),
                     where + " answered " + std::to_string(r.status));
    auto answer = parse_credentials_json(r.body);
    if (!answer.creds) return from_answer(answer, r.status, where);
    return std::move(*answer.creds);
  }

  asio::awaitable<result<aws_credentials>> fetch_web_identity() {
    std::string role_arn = env("AWS_ROLE_ARN"), token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (role_arn.empty() || token_file.empty())
      co_return failure(error_kind::permission, 0, "CredentialsMissing",
                        "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE must both be set");
    std::string error;
    std::string token = config::read_secret_file(token_file, error);  // re-read: the kubelet rotates it
    if (!error.empty()) co_return failure(error_kind::permission, 0, "InvalidIdentityToken", error);
    const std::string form = sts_form(role_arn, session_or_default(env("AWS_ROLE_SESSION_NAME")), token);
    const std::string what = "AssumeRoleWithWebIdentity for " + role_arn;
    co_return co_await call_sts(form, nullptr, what);
  }

  asio::awaitable<result<aws_credentials>> fetch_container() {
    std::string url = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (url.empty() && !env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty())
      url = container_host + env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    if (url.empty())
      co_return failure(error_kind::permission, 0, "CredentialsMissing",
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI must be set");
    std::string authorization;
    if (std::string file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); !file.empty()) {
      std::string error;
      authorization = config::read_secret_file(file, error);  // re-read: EKS rotates it
      if (!error.empty()) co_return failure(error_kind::permission, 0, "CredentialsMissing", error);
    } else {
      authorization = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    auto ep = endpoint_of(url);
    if (!ep) co_return failure(error_kind::permission, 0, "InvalidContainerUri", url + " is not an http(s) URL");
    // The authorization token must not travel in clear text to an arbitrary host.
    if (!container_endpoint_allowed(ep->tls, ep->host))
      co_return failure(error_kind::permission, 0, "InvalidContainerUri",
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI " + config::redact_userinfo(url) +
                            ": plain http is allowed only to loopback, 169.254.170.2, 169.254.170.23 and "
                            "fd00:ec2::23; use https for any other host");
    auto req = get_request(target_of(*ep), "authorization", authorization);
    auto& client = client_for(url, *ep, 2000ms);
    std::string where = "container credentials endpoint " + url;
    auto r = co_await send(client, req, where, remote_attempts);
    if (!r) co_return r.error();
    co_return json_answer(r.value(), where);
  }

  asio::awaitable<result<aws_credentials>> fetch_imds() {
    std::string base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (base.empty()) base = imds_default_endpoint;
    while (!base.empty() && base.back() == '/') base.pop_back();
    auto ep = endpoint_of(base);
    if (!ep) co_return failure(error_kind::permission, 0, "InvalidImdsEndpoint", base + " is not an http(s) URL");
    // IMDS answers within milliseconds or not at all; the SDKs wait one second.
    auto& client = client_for(base, *ep, 1000ms);
    auto token_req = imds_token_request();
    std::string where = "IMDS " + base;
    auto token = co_await send(client, token_req, where, 2);
    if (!token) {
      store_error e = token.error();
      if (e.http_status == 0)
        e.message += " (the IMDSv2 session token request got no answer: from a container the instance's metadata "
                     "hop limit must be at least 2, e.g. `aws ec2 modify-instance-metadata-options "
                     "--http-put-response-hop-limit 2`)";
      co_return e;
    }
    if (token->status != 200)
      co_return failure(kind_for_status(token->status), token->status, "HTTP" + std::to_string(token->status),
                        where + " refused the IMDSv2 session token request (" + std::to_string(token->status) +
                            (token->status == 403 ? ": the instance metadata service is disabled)" : ")"));
    std::string imds_token = token->body;
    auto role_req = get_request("/latest/meta-data/iam/security-credentials/", "x-aws-ec2-metadata-token", imds_token);
    auto role = co_await send(client, role_req, where, remote_attempts);
    if (!role) co_return role.error();
    std::string role_name = first_line(role->body);
    if (role->status == 404 || (role->status == 200 && role_name.empty()))
      co_return failure(error_kind::permission, role->status, "NoInstanceProfile",
                        where + ": no IAM role (instance profile) is attached to this instance");
    if (role->status != 200)
      co_return failure(kind_for_status(role->status), role->status, "HTTP" + std::to_string(role->status),
                        where + " answered " + std::to_string(role->status) + " for the role name");
    auto creds_req = get_request("/latest/meta-data/iam/security-credentials/" + http::percent_encode(role_name),
                                 "x-aws-ec2-metadata-token", imds_token);
    auto r = co_await send(client, creds_req, where, remote_attempts);
    if (!r) co_return r.error();
    where += " role " + role_name;
    co_return json_answer(r.value(), where);
  }

  asio::awaitable<result<aws_credentials>> fetch() {
    current_source = resolve();
    if (!current_source)
      co_return failure(error_kind::permission, 0, "CredentialsMissing",
                        "no source in the chain (env, web_identity, profile, container, imds) is configured");
    switch (*current_source) {
      case source::static_keys: co_return read_static();
      case source::env: co_return read_env();
      case source::profile: {
        from_process = false;
        auto name = profile_name();
        co_return co_await fetch_profile(name, 0);
      }
      case source::web_identity: break;
      case source::container: break;
      case source::imds: break;
    }
    ++fetched;
    if (*current_source == source::web_identity) co_return co_await fetch_web_identity();
    if (*current_source == source::container) co_return co_await fetch_container();
    co_return co_await fetch_imds();
  }

  // When cached credentials are next replaced: at expiry for temporary ones, every few
  // seconds for keys read from files (so a rotated file is seen), never for fixed keys.
  void schedule(const aws_credentials& c, wall_clock::time_point now) {
    if (c.expiration) {
      std::uniform_real_distribution<double> jitter(0.0, 1.0);
      refresh_at = refresh_due_at(now, *c.expiration, jitter(rng));
      usable_to = usable_until(now, *c.expiration);
    } else {
      bool files = (current_source == source::profile && !from_process) ||
                   (current_source == source::static_keys && files_watched());
      refresh_at = files ? now + file_recheck : wall_clock::time_point::max();
      usable_to = wall_clock::time_point::max();
    }
  }

  asio::awaitable<result<credentials>> get() {
    for (;;) {
      auto now = wall_clock::now();
      auto state = have ? assess_credentials(now, refresh_at, usable_to) : cached_credentials_state::unusable;
      if (state == cached_credentials_state::fresh) co_return cached.keys;
      if (refresh.in_flight()) {
        if (state == cached_credentials_state::refresh_due) co_return cached.keys;  // another request refreshes
        bool landed = co_await refresh.wait_for_landing();
        bool still_usable = have && assess_credentials(wall_clock::now(), refresh_at, usable_to) !=
                                        cached_credentials_state::unusable;
        if (landed && last_failure && !still_usable) co_return *last_failure;
        continue;
      }
      async::single_flight::flight guard(refresh);
      if (mode == config::s3_credentials::static_keys) {
        access_key.check_now();
        secret_key.check_now();
        session_token.check_now();
      }
      auto got = co_await fetch();
      auto fetched_at = wall_clock::now();
      if (!got) {
        last_failure = got.error();
        if (state == cached_credentials_state::refresh_due) {
          log::warn("S3 credentials refresh failed; using the current ones until they expire",
                    {{"store", store}, {"error", got.error().describe()}});
          co_return cached.keys;
        }
        co_return got.error();
      }
      last_failure.reset();
      bool changed = !have || got->keys.access_key_id != cached.keys.access_key_id ||
                     got->keys.session_token != cached.keys.session_token ||
                     got->keys.secret_access_key != cached.keys.secret_access_key;
      cached = std::move(got.value());
      have = true;
      schedule(cached, fetched_at);
      if (changed && current_source && *current_source != source::static_keys) {
        boost::json::object fields{{"store", store}, {"source", source_name(*current_source)}};
        if (cached.expiration)
          fields["expires_in_s"] = std::chrono::duration_cast<std::chrono::seconds>(*cached.expiration - fetched_at).count();
        log::info("S3 credentials obtained", std::move(fields));
      }
      co_return cached.keys;
    }
  }
};

credential_provider::credential_provider(asio::any_io_executor executor, std::string store_name,
                                         const config::s3_store_config& cfg)
    : impl_(std::make_unique<impl>(executor, std::move(store_name), cfg)) {}
credential_provider::~credential_provider() = default;

asio::awaitable<result<credentials>> credential_provider::get() { return impl_->get(); }

bool credential_provider::invalidate(const credentials& refused, bool certain) {
  auto& i = *impl_;
  if (i.mode == config::s3_credentials::static_keys && !i.files_watched()) return false;
  if (!certain) {
    auto now = std::chrono::steady_clock::now();
    if (now - i.last_guess < uncertain_invalidation_interval) return false;
    i.last_guess = now;
  }
  if (i.have && i.cached.keys.access_key_id == refused.access_key_id &&
      i.cached.keys.session_token == refused.session_token)
    i.have = false;
  return true;
}

std::string credential_provider::describe() const {
  std::string out = credentials_mode_name(impl_->mode);
  if (impl_->mode == config::s3_credentials::chain && impl_->current_source)
    out += std::string(" -> ") + source_name(*impl_->current_source);
  return out;
}

std::size_t credential_provider::fetches() const { return impl_->fetched; }

}  // namespace archie::store::s3
