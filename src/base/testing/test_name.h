// A GoogleTest parameter name from a case's readable name: GoogleTest allows
// only letters, digits and underscores there.
#pragma once

#include <cctype>
#include <string>

namespace feed::test_support {

inline std::string test_name(std::string name) {
  for (auto& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

}  // namespace feed::test_support
