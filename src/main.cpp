// archie entry point: parse the command line, load the config, dispatch.
#include "archie_version.hpp"
#include "cli/backfill_command.hpp"
#include "cli/command_line.hpp"
#include "cli/dead_letters_command.hpp"
#include "cli/status_command.hpp"
#include "service/exit_codes.hpp"
#include "cli/verify_command.hpp"
#include "config/config.hpp"
#include "engine/replicator.hpp"
#include "fleet/budget_book.hpp"
#include "log/logger.hpp"
#include "service/worker_service.hpp"
#include "store/store_set.hpp"

#include <cstdio>
#include <iostream>

namespace {

int main_impl(int argc, char** argv) {
  using namespace archie;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = cli::parse_command_line(args);
  if (auto* err = std::get_if<cli::usage_error>(&parsed)) {
    std::cerr << "archie: " << err->message << "\nRun 'archie --help' for usage.\n";
    return service::exit_usage;
  }
  auto inv = std::get<cli::invocation>(parsed);
  if (inv.missing_command) {
    std::cerr << cli::help_text(std::nullopt);
    return service::exit_usage;
  }
  if (inv.help) {
    std::cout << cli::help_text(inv.cmd);
    return service::exit_ok;
  }
  if (inv.cmd == cli::command::version) {
    std::cout << "archie " << ARCHIE_VERSION << " (commit " << ARCHIE_COMMIT << ", built " << ARCHIE_BUILD_DATE << ")\n";
    return service::exit_ok;
  }

  std::optional<log::level> level_override;
  if (inv.log_level) {
    level_override = log::parse_level(*inv.log_level);
    if (!level_override) {
      std::cerr << "archie: invalid log level \"" << *inv.log_level << "\" (trace|debug|info|warn|error)\n";
      return service::exit_usage;
    }
  }
  std::optional<log::format> format_override;
  if (inv.log_format) {
    format_override = log::parse_format(*inv.log_format);
    if (!format_override) {
      std::cerr << "archie: invalid log format \"" << *inv.log_format << "\" (json|text)\n";
      return service::exit_usage;
    }
    log::set_format(*format_override);
  }
  if (!inv.config_path) {
    std::cerr << "archie: no config file: pass --config PATH or set ARCHIE_CONFIG\n";
    return service::exit_usage;
  }

  config::loaded_config loaded;
  try {
    loaded = config::load_file(*inv.config_path);
  } catch (const config::config_error& e) {
    std::cerr << config::describe(e);
    std::cerr << "archie: configuration rejected (" << e.problems().size() << " problem"
              << (e.problems().size() == 1 ? "" : "s") << ")\n";
    return service::exit_bad_config;
  }

  log::set_format(format_override.value_or(loaded.cfg.log_format));

  if (inv.cmd == cli::command::check_config) {
    std::cout << loaded.effective_toml;
    std::cerr << "archie: " << *inv.config_path << " is valid\n";
    return service::exit_ok;
  }

  switch (inv.cmd) {
    // One-shot commands log only warnings unless asked: their output is the report.
    case cli::command::verify:
      log::set_level(level_override.value_or(log::level::warn));
      return cli::run_verify(loaded.cfg, inv.options);
    case cli::command::backfill:
      log::set_level(level_override.value_or(log::level::warn));
      return cli::run_backfill(loaded.cfg, inv.options);
    case cli::command::dead_letters:
      log::set_level(level_override.value_or(log::level::warn));
      return cli::run_dead_letters(loaded.cfg, inv.options);
    case cli::command::status:
      log::set_level(level_override.value_or(log::level::warn));
      return cli::run_status(loaded.cfg, inv.options);
    default:
      break;
  }

  log::set_level(level_override.value_or(loaded.cfg.log_level));
  return service::run_worker(loaded.cfg, [&loaded](service::worker_context& ctx) -> queue::message_handler {
    // The fleet-wide budgets: shares from the registry's live worker count (every heartbeat).
    auto budgets = std::make_shared<fleet::budget_book>(loaded.cfg);
    ctx.on_fleet_position = [budgets](fleet::fleet_position p) { budgets->apply(p); };
    auto budget_for = [budgets](const std::string& store) { return budgets->send_budget_for(store); };
    auto stores = std::make_shared<store::store_set>(ctx.io, ctx.blocking, loaded.cfg, budget_for);
    stores->register_checks(ctx.ready);
    stores->start_health_checks();
    ctx.past_deadline.push_back([weak = std::weak_ptr<store::store_set>(stores)] {
      if (auto s = weak.lock()) s->abort_requests();
    });
    auto engine = std::make_shared<engine::replicator>(ctx.io, loaded.cfg, *stores, budgets.get());
    // The handler owns them all; the stores and budgets outlive the engine that borrows them.
    return [budgets, stores, engine](queue::queue_message& msg) { return engine->handle(msg); };
  });
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return main_impl(argc, argv);
  } catch (const std::exception& e) {
    archie::log::error("fatal error", {{"error", e.what()}});
    return archie::service::exit_failed;
  }
}
