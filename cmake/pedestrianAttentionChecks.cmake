# pedestrian_add_attention_checks(): CTest tests that gate an attention plugin with the installed
# `verify --plugin` (see pedestrian's README, "Gate your own kernel in CI"). Included by
# pedestrianConfig.cmake, which sets PEDESTRIAN_VERIFY_EXECUTABLE.
#
#   pedestrian_add_attention_checks(TARGET <plugin module target>
#       [NAME <variant>]                      the name the plugin registers (default: the target's name);
#                                             selects its variants, NAME and NAME[strided]
#       [TEST_NAME <name>]                    default: attention_checks_<NAME>
#       [LAYOUTS contiguous strided]          --plugin-layouts (default: contiguous strided)
#       [OPS sdpa sdpa_large_scores]          --ops (default: both)
#       [CSV <file>]                          --out (default: <TEST_NAME>.csv in the current binary dir)
#       [JUNIT <file>]                        --junit FILE
#       [TIMEOUT <seconds>]                   --plugin-timeout: each check of the plugin may run this
#                                             long (whole seconds, 1 to 86400; default verify's, 300)
#                                             before it is killed and reported as a failed row; the
#                                             test's CTest TIMEOUT becomes <seconds> + 1200, room for
#                                             one check to reach the limit and for the rest of the run
#       [EXPECT_FAILURE <regex>...]           a deliberately wrong plugin: the test passes only when
#                                             verify exits 1 (a check failed, not a usage error or a
#                                             crash) and its output matches every regex, e.g. the
#                                             quantity that must be named ("dq ")
#       [LABELS <label>...]
#       [EXTRA_ARGS <verify argument>...])    e.g. --masks causal --shape N=9,B=2,Dh=3 --seeds 1
include_guard(GLOBAL)

set(PEDESTRIAN_EXPECT_FAILURE_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/pedestrianExpectFailure.cmake")

function(pedestrian_add_attention_checks)
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "TARGET;NAME;TEST_NAME;CSV;JUNIT;TIMEOUT" "LAYOUTS;OPS;EXPECT_FAILURE;LABELS;EXTRA_ARGS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "pedestrian_add_attention_checks: unknown arguments '${arg_UNPARSED_ARGUMENTS}'")
  endif()
  if(NOT arg_TARGET)
    message(FATAL_ERROR "pedestrian_add_attention_checks: TARGET <plugin module target> is required")
  endif()
  if(NOT TARGET ${arg_TARGET})
    message(FATAL_ERROR "pedestrian_add_attention_checks: TARGET '${arg_TARGET}' is not a target of this project")
  endif()
  if(NOT PEDESTRIAN_VERIFY_EXECUTABLE)
    message(FATAL_ERROR "pedestrian_add_attention_checks: PEDESTRIAN_VERIFY_EXECUTABLE is not set (find_package(pedestrian) sets it)")
  endif()
  if(DEFINED arg_TIMEOUT AND NOT arg_TIMEOUT MATCHES "^[1-9][0-9]*$")
    message(FATAL_ERROR "pedestrian_add_attention_checks: TIMEOUT '${arg_TIMEOUT}' is not a whole number of seconds in [1, 86400]")
  endif()
  if(DEFINED arg_TIMEOUT AND arg_TIMEOUT GREATER 86400)
    message(FATAL_ERROR "pedestrian_add_attention_checks: TIMEOUT '${arg_TIMEOUT}' is not a whole number of seconds in [1, 86400]")
  endif()
  if(NOT arg_NAME)
    set(arg_NAME ${arg_TARGET})
  endif()
  if(NOT arg_TEST_NAME)
    set(arg_TEST_NAME attention_checks_${arg_NAME})
  endif()
  if(NOT DEFINED arg_LAYOUTS)
    set(arg_LAYOUTS contiguous strided)
  endif()
  if(NOT DEFINED arg_OPS)
    set(arg_OPS sdpa sdpa_large_scores)
  endif()
  if(NOT arg_CSV)
    set(arg_CSV ${CMAKE_CURRENT_BINARY_DIR}/${arg_TEST_NAME}.csv)
  endif()
  set(variants)
  foreach(layout IN LISTS arg_LAYOUTS)
    if(layout STREQUAL "contiguous")
      list(APPEND variants ${arg_NAME})
    elseif(layout STREQUAL "strided")
      list(APPEND variants "${arg_NAME}[strided]")
    else()
      message(FATAL_ERROR "pedestrian_add_attention_checks: LAYOUTS '${layout}' is not contiguous or strided")
    endif()
  endforeach()
  list(JOIN arg_LAYOUTS "," layouts)
  list(JOIN arg_OPS "," ops)
  list(JOIN variants "," variants)
  set(command ${PEDESTRIAN_VERIFY_EXECUTABLE} --plugin $<TARGET_FILE:${arg_TARGET}> --plugin-layouts ${layouts}
              --ops ${ops} --variants ${variants} --quiet --out ${arg_CSV})
  if(arg_JUNIT)
    list(APPEND command --junit ${arg_JUNIT})
  endif()
  if(DEFINED arg_TIMEOUT)
    list(APPEND command --plugin-timeout ${arg_TIMEOUT})
  endif()
  list(APPEND command ${arg_EXTRA_ARGS})
  if(arg_EXPECT_FAILURE)
    # The regexes travel as one argument, separated by a character that no regex here needs.
    string(ASCII 31 separator)
    list(JOIN arg_EXPECT_FAILURE "${separator}" regexes)
    add_test(NAME ${arg_TEST_NAME}
             COMMAND ${CMAKE_COMMAND} "-DEXPECT_REGEXES=${regexes}" -P ${PEDESTRIAN_EXPECT_FAILURE_SCRIPT} -- ${command})
  else()
    add_test(NAME ${arg_TEST_NAME} COMMAND ${command})
  endif()
  if(arg_LABELS)
    set_tests_properties(${arg_TEST_NAME} PROPERTIES LABELS "${arg_LABELS}")
  endif()
  if(DEFINED arg_TIMEOUT)
    # Above verify's own limit, so that a check that hangs is reported by verify (a failed row naming
    # the case) instead of CTest ending the whole test; 1200 s more for the rest of the run: the
    # default selection of a correct kernel (9216 rows) takes about 40 s on two cores.
    math(EXPR ctest_timeout "${arg_TIMEOUT} + 1200")
    set_tests_properties(${arg_TEST_NAME} PROPERTIES TIMEOUT ${ctest_timeout})
  endif()
endfunction()
