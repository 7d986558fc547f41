#pragma once
// What a caller read of an object before copying it, handed to the pipe, which sends it
// rather than reading it again.
#include "pipe/part_buffer_pool.hpp"
#include "store/source.hpp"

#include <memory>
#include <vector>

namespace archie::pipe {

/// What a caller already read of an object version: its first part (a small object fetched
/// with one GET that also told its metadata: it is sent, not read again) and, when that GET
/// goes on, the rest of its answer positioned after the first part, with the buffers taken
/// for the parts it carries (in order): those parts come from it rather than from new GETs.
struct read_ahead {
  shared_part first_part;
  std::shared_ptr<store::body_stream> rest;
  std::vector<shared_part> rest_buffers;
  /// Gives the memory and the connection back.
  void reset() {
    first_part.reset();
    rest.reset();
    rest_buffers.clear();
  }
};

}  // namespace archie::pipe
