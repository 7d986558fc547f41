#include "store/s3/credentials/credential_process.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace archie::store::s3 {

std::optional<std::vector<std::string>> split_command_line(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      auto end = command.find('\'', i + 1);
      if (end == std::string_view::npos) return std::nullopt;
      word.append(command.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '"') {
      in_word = true;
      for (++i;; ++i) {
        if (i >= command.size()) return std::nullopt;
        if (command[i] == '"') break;
        // Inside double quotes a backslash escapes only \ " $ ` and a newline.
        if (command[i] == '\\' && i + 1 < command.size() && std::strchr("\\\"$`\n", command[i + 1])) ++i;
        word += command[i];
      }
    } else if (c == '\\' && i + 1 < command.size()) {
      word += command[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

process_output run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           std::size_t max_output) {
  process_output result;
  if (argv.empty()) {
    result.problem = "the command is empty";
    return result;
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.problem = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  // stdin /dev/null, stdout the pipe, nothing else of ours (Asio's sockets are not
  // close-on-exec); its own process group, so a timeout kills what it started too; default
  // signal handling and an empty mask, whatever the worker's are.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t mask, defaults;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&attr, &mask);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    result.problem = "cannot start " + argv[0] + ": " + std::strerror(spawned);
    return result;
  }
  // Until it has exited and its output is read, or the deadline. A child it left running
  // may hold the pipe open: once it has exited, what is ready is read and that is all.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  bool stopped = false, eof = false, exited = false;
  int status = 0;
  for (;;) {
    if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
    if (exited && eof) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.problem = argv[0] + " did not finish within " + std::to_string(timeout.count()) + " ms";
      stopped = true;
      break;
    }
    const int wait_ms = static_cast<int>(std::min<long long>(left.count(), 50));
    if (eof) {
      ::poll(nullptr, 0, wait_ms);  // output done; waiting for it to exit
      continue;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    int ready = ::poll(&p, 1, exited ? 0 : wait_ms);
    if (ready <= 0) {
      if (exited) break;
      continue;
    }
    ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = true;
      continue;
    }
    if (result.out.size() + static_cast<std::size_t>(n) > max_output) {
      result.problem = argv[0] + " printed more than " + std::to_string(max_output) + " bytes";
      stopped = true;
      break;
    }
    result.out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  if (stopped) {
    ::kill(-pid, SIGKILL);  // its whole process group
    result.out.clear();
  }
  if (!exited)
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  if (stopped) return result;
  result.ran = true;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

credentials_answer parse_credential_process_output(std::string_view json) {
  auto failed = [](std::string why) { return credentials_answer{std::nullopt, "", std::move(why)}; };
  boost::system::error_code ec;
  auto value = boost::json::parse(json, ec);
  if (ec || !value.is_object()) return failed("its output is not a JSON object");
  const auto& o = value.as_object();
  auto text = [&](const char* name) -> std::string {
    auto it = o.find(name);
    return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
  };
  auto version = o.find("Version");
  if (version == o.end() || !version->value().is_int64() || version->value().as_int64() != 1)
    return failed("its output lacks \"Version\": 1");
  aws_credentials out;
  out.keys.access_key_id = text("AccessKeyId");
  out.keys.secret_access_key = text("SecretAccessKey");
  out.keys.session_token = text("SessionToken");
  if (out.keys.access_key_id.empty() || out.keys.secret_access_key.empty())
    return failed("its output lacks AccessKeyId or SecretAccessKey");
  if (std::string expiration = text("Expiration"); !expiration.empty()) {
    out.expiration = parse_iso8601_utc(expiration);
    if (!out.expiration) return failed("its output has an invalid Expiration (\"" + expiration + "\")");
  }
  return credentials_answer{std::move(out), "", ""};
}

}  // namespace archie::store::s3
