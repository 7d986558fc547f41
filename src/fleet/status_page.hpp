#pragma once
// The admin server's /status page: the fleet view (fleet/fleet_view.hpp) as one small HTML
// document that refreshes itself, with no script and no external asset (inline style only),
// so it works behind any proxy and shows nothing /status.json does not. Every value an
// element shows is also in a data- attribute or an id a test can read (the contract
// tests/browser/status_page.mjs follows).
#include "fleet/fleet_view.hpp"

#include <string>

namespace archie::fleet {

inline constexpr int status_page_refresh_seconds = 5;

/// The page for `v`.
std::string render_status_page(const fleet_view& v);
/// What /status answers before the first view is read: a page that reloads in a second.
std::string render_status_placeholder();

}  // namespace archie::fleet
