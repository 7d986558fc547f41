// Boost.JSON compiled into the fuzz targets, with their coverage instrumentation and
// sanitizers, instead of Debian's libboost_json.so: the fuzzer then gets feedback from inside
// the JSON parser that the event, GCS and OAuth parsers sit on.
#include <boost/json/src.hpp>
