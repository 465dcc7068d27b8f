# Turns the migration files into a generated C++ source so that the binary
# carries its own schema and needs no files beside it at run time.
function(feed_embed_migrations out_var dialect dir)
  # Only the .up.sql files run; the .down.sql ones are for golang-migrate.
  file(GLOB files CONFIGURE_DEPENDS "${dir}/*.up.sql")
  list(SORT files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/migrations_${dialect}.cc")
  set(body "// Generated from ${dir}; edit the .sql files instead.\n#include \"store/migration.h\"\n\nnamespace feed::schema {\n\nconst std::vector<migration_file>& ${dialect}_migration_files() {\n  static const std::vector<migration_file> files = {\n")
  foreach(f ${files})
    get_filename_component(name ${f} NAME)
    file(READ ${f} sql)
    string(APPEND body "    {\"${name}\", R\"__sql__(${sql})__sql__\"},\n")
  endforeach()
  string(APPEND body "  };\n  return files;\n}\n\n}  // namespace feed::schema\n")
  file(GENERATE OUTPUT ${out} CONTENT "${body}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${files})
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
