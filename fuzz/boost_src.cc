// Boost.JSON and Boost.URL built into each fuzzer, so that their parsers are
// instrumented for coverage like the project's code: Debian's shared
// libraries are not, and a fuzzer blind inside the JSON or URL parser barely
// gets past it. These definitions take precedence over the shared ones.
#include <boost/json/src.hpp>
#include <boost/url/src.hpp>
