#include "cli/route_selection.hpp"

#include <doctest/doctest.h>

using namespace archie;

namespace {
std::vector<config::route_config> two_routes() {
  config::route_config a, b;
  a.source = {"src", "photos", ""};
  b.source = {"src", "logs", "app/"};
  return {a, b};
}
}  // namespace

TEST_CASE("a route is chosen by number or by its source, --all takes every route") {
  cli::command_options o;
  o.route = "2";
  CHECK(std::get<std::vector<std::size_t>>(cli::select_routes(two_routes(), o)) == std::vector<std::size_t>{1});
  o.route = "src:photos";
  CHECK(std::get<std::vector<std::size_t>>(cli::select_routes(two_routes(), o)) == std::vector<std::size_t>{0});
  o.route = "src:logs/app/";
  CHECK(std::get<std::vector<std::size_t>>(cli::select_routes(two_routes(), o)) == std::vector<std::size_t>{1});
  o.route.reset();
  o.all = true;
  CHECK(std::get<std::vector<std::size_t>>(cli::select_routes(two_routes(), o)).size() == 2);
}

TEST_CASE("several routes without --route or --all, or an unknown route, is a usage error naming the choices") {
  cli::command_options o;
  CHECK(std::get<std::string>(cli::select_routes(two_routes(), o)).find("--route") != std::string::npos);
  o.route = "3";
  CHECK(std::get<std::string>(cli::select_routes(two_routes(), o)).find("routes 1 to 2") != std::string::npos);
  o.route = "src:nope";
  CHECK(std::get<std::string>(cli::select_routes(two_routes(), o)).find("src:photos") != std::string::npos);
  auto one = two_routes();
  one.pop_back();
  CHECK(std::get<std::vector<std::size_t>>(cli::select_routes(one, {})) == std::vector<std::size_t>{0});
}
