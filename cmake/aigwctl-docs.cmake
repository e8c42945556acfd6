# cmake/aigwctl-docs.cmake: aigwctl's man page and shell completions are generated from its
# command table (`aigwctl __gen man|bash|zsh|fish`, aigwctl/gen.c) and committed.
#
#   cmake --build BUILD --target aigwctl-docs   rewrite the committed copies in the source tree
#   ctest -R cli.docs_drift                      fail (with a diff) when a committed copy differs
#
# include()d from CMakeLists.txt. The same file is the script both run (cmake -P) with
# -DAIGWCTL=<binary> -DSRC=<source dir> -DMODE=write|check [-DOUT=<dir for check>].

set(AIGWCTL_DOC_FILES man/aigwctl.1 completions/aigwctl.bash completions/aigwctl.zsh
                      completions/aigwctl.fish)
set(AIGWCTL_DOC_KINDS man bash zsh fish)

if(CMAKE_SCRIPT_MODE_FILE)
  # A clean environment: no user context may change the output (it does not, but a malformed
  # contexts file would make aigwctl refuse to start).
  set(ENV{XDG_CONFIG_HOME} "${OUT}/aigwctl-docs-noconfig")
  set(ENV{HOME} "${OUT}/aigwctl-docs-noconfig")
  unset(ENV{AIGW_CONTEXT})
  unset(ENV{AIGW_ADMIN_URL})
  unset(ENV{AIGW_PROXY_URL})
  set(drift "")
  foreach(kind file IN ZIP_LISTS AIGWCTL_DOC_KINDS AIGWCTL_DOC_FILES)
    set(gen "${OUT}/aigwctl-docs/${file}")
    get_filename_component(gendir "${gen}" DIRECTORY)
    file(MAKE_DIRECTORY "${gendir}")
    execute_process(COMMAND "${AIGWCTL}" __gen ${kind} OUTPUT_FILE "${gen}"
                    ERROR_VARIABLE err RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0 OR NOT err STREQUAL "")
      message(FATAL_ERROR "aigwctl __gen ${kind} failed (${rc}): ${err}")
    endif()
    if(MODE STREQUAL "write")
      file(COPY_FILE "${gen}" "${SRC}/${file}" ONLY_IF_DIFFERENT)
      message(STATUS "${file}: generated")
    else()
      execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${SRC}/${file}" "${gen}"
                      RESULT_VARIABLE same)
      if(NOT same EQUAL 0)
        list(APPEND drift "${file}")
        find_program(DIFF diff)
        if(DIFF)
          execute_process(COMMAND ${DIFF} -u "${SRC}/${file}" "${gen}")
        endif()
      endif()
    endif()
  endforeach()
  if(drift)
    message(FATAL_ERROR "these committed files differ from what aigwctl's command table "
                        "generates: ${drift}\nRun: cmake --build <build dir> --target aigwctl-docs")
  endif()
else()
  add_custom_target(aigwctl-docs
    COMMAND ${CMAKE_COMMAND} -DAIGWCTL=$<TARGET_FILE:aigwctl> -DSRC=${CMAKE_SOURCE_DIR}
            -DOUT=${CMAKE_BINARY_DIR} -DMODE=write -P ${CMAKE_CURRENT_LIST_FILE}
    DEPENDS aigwctl
    COMMENT "Generating aigwctl's man page and completions into the source tree"
    VERBATIM)
  if(AIGW_TESTS AND NOT AIGW_FUZZ)
    add_test(NAME cli.docs_drift
             COMMAND ${CMAKE_COMMAND} -DAIGWCTL=$<TARGET_FILE:aigwctl> -DSRC=${CMAKE_SOURCE_DIR}
                     -DOUT=${CMAKE_BINARY_DIR} -DMODE=check -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(cli.docs_drift PROPERTIES TIMEOUT 120)
  endif()
endif()
