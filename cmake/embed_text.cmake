# feed_embed_text(<out_var> <symbol> <file>): generates a C++ source defining
# `const std::string_view feed::http::<symbol>` with the file's contents, so
# the binary serves it without needing the file at run time.
function(feed_embed_text out_var symbol file)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cc")
  file(READ ${file} text)
  file(GENERATE OUTPUT ${out} CONTENT
       "// Generated from ${file}.\n#include <string_view>\nnamespace feed::http {\nextern const std::string_view ${symbol};\nconst std::string_view ${symbol} = R\"__text__(${text})__text__\";\n}\n")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
