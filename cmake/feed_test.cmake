# feed_add_test(<module> SOURCES ... LIBS ...): one GoogleTest binary per
# module, registered with CTest under the module's label, so that
# `ctest -L <module>` runs just that part.
function(feed_add_test module)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  set(target ${module}_test)
  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${target} PROPERTIES LABELS ${module} DISCOVERY_TIMEOUT 30)
endfunction()
