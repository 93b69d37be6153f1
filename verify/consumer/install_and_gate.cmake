# cmake -DBUILD_DIR=... -DWORK_DIR=... -DEXAMPLE_SOURCE_DIR=... -DBUILD_TYPE=... -DCTEST_COMMAND=... -P install_and_gate.cmake
#
# examples/gate_your_kernel against an installed pedestrian, as another project's CI would run it:
# installs the build into a fresh prefix; configures and builds the example against that prefix only;
# runs its CTest tests (the correct plugin passes every check, the deliberately wrong ones are caught
# by name, the hanging one is killed at its TIMEOUT, the in-process kernel and the gradcheck of the
# user layer pass); checks the JUnit files of JUNIT and the CTest TIMEOUT of TIMEOUT; then benchmarks the
# correct plugin with the installed bench, converts and summarizes with report, checks that its
# variant is in the report, and gates the run against itself with report compare (exit 0).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/out)
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  set(run_output "${out}${err}" PARENT_SCOPE)
endfunction()
function(require_match file regex)
  file(READ ${file} text)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${file} does not match '${regex}':\n${text}")
  endif()
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
set(out ${WORK_DIR}/out)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --config ${BUILD_TYPE})
# The installed targets carry nothing of this build: no precompiled header (ped_verify's is for its
# own build only) and no path into the build tree.
file(GLOB targets_files ${prefix}/lib*/cmake/pedestrian/pedestrianTargets*.cmake)
foreach(targets_file IN LISTS targets_files)
  file(READ ${targets_file} targets)
  if(targets MATCHES "PRECOMPILE_HEADERS")
    message(FATAL_ERROR "${targets_file} hands a precompiled header to projects using the package")
  endif()
  string(FIND "${targets}" "${BUILD_DIR}" build_path)
  if(NOT build_path EQUAL -1)
    message(FATAL_ERROR "${targets_file} refers to the build tree ${BUILD_DIR}")
  endif()
endforeach()
if(NOT targets_files)
  message(FATAL_ERROR "no pedestrianTargets*.cmake installed under ${prefix}")
endif()
# Only the prefix: no package registry, nothing of this build tree.
run(${CMAKE_COMMAND} -S ${EXAMPLE_SOURCE_DIR} -B ${build} -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
run(${CMAKE_COMMAND} --build ${build} -j2)
file(READ ${build}/CMakeCache.txt cache)
if(NOT cache MATCHES "pedestrian_DIR:PATH=${prefix}/")
  message(FATAL_ERROR "the example did not find pedestrian in ${prefix}")
endif()

# Every test of the example must pass: the checks of the correct kernels, and the wrong ones caught.
run(${CTEST_COMMAND} --test-dir ${build} -j2 --output-on-failure)
set(ctest_output "${run_output}")
foreach(test attention_checks_simple attention_checks_no_rowsum_term attention_checks_causal_off_by_one
             attention_checks_ignores_strides attention_checks_hangs MyAttention.sdpa_float_libtorch_causal
             MyAttention.sdpa_double_finite_difference_bigbird MyAttention.sdpa_large_scores_double_naive_causal
             MyLayer.GradcheckPasses MyLayer.GradcheckCatchesAWrongBackward)
  if(NOT ctest_output MATCHES " ${test} [.]+ +Passed")
    message(FATAL_ERROR "test ${test} of the example did not run and pass:\n${ctest_output}")
  endif()
endforeach()
set(csv ${build}/attention_checks_simple.csv)
require_match(${csv} "\nsdpa,simple,double,[^\n]*,finite_difference,dq,[^,]*,[^,]*,[^,]*,[^,]*,true,")
require_match(${csv} "\nsdpa_large_scores,simple\\[strided\\],float,[^\n]*,libtorch,dk,[^,]*,[^,]*,[^,]*,[^,]*,true,")
file(READ ${csv} text)
if(text MATCHES ",false,")
  message(FATAL_ERROR "${csv} holds a failed check")
endif()

# JUNIT: the correct kernel's JUnit file is well-formed, one test case per CSV row, none failed; the
# deliberately wrong kernel's holds a <failure> whose message names dq.
find_program(XMLLINT xmllint)
if(NOT XMLLINT)
  message(FATAL_ERROR "xmllint not found (Debian package libxml2-utils, scripts/install-deps.sh)")
endif()
function(xpath file expression)
  run(${XMLLINT} --xpath "${expression}" ${file})
  string(STRIP "${run_output}" value)
  set(xpath_value "${value}" PARENT_SCOPE)
endfunction()
set(junit ${build}/attention_checks_simple.xml)
if(NOT EXISTS ${junit})
  message(FATAL_ERROR "JUNIT ${junit} was not written")
endif()
run(${XMLLINT} --noout ${junit})
file(STRINGS ${csv} csv_lines)
list(LENGTH csv_lines csv_rows)
math(EXPR csv_rows "${csv_rows} - 1")
xpath(${junit} "count(//testcase)")
if(NOT xpath_value EQUAL csv_rows)
  message(FATAL_ERROR "${junit}: ${xpath_value} test cases, ${csv_rows} CSV rows")
endif()
xpath(${junit} "concat(/testsuites/@failures, ' ', /testsuites/@errors, ' ', count(//failure | //error))")
if(NOT xpath_value STREQUAL "0 0 0")
  message(FATAL_ERROR "${junit}: failures, errors and their elements are '${xpath_value}', expected none")
endif()
set(junit ${build}/attention_checks_no_rowsum_term.xml)
run(${XMLLINT} --noout ${junit})
xpath(${junit} "count(//testcase[@classname='verify.sdpa.no_rowsum_term']/failure[starts-with(@message, 'dq: norm_rel_err ')])")
if(NOT xpath_value GREATER 0)
  message(FATAL_ERROR "${junit} has no <failure> of no_rowsum_term whose message names dq")
endif()

# TIMEOUT: verify gets --plugin-timeout, and the CTest test's own TIMEOUT lies above it.
run(${CTEST_COMMAND} --test-dir ${build} -R "^attention_checks_hangs$" --show-only=json-v1)
string(JSON hangs_test GET "${run_output}" tests 0)
string(JSON argument_count LENGTH "${hangs_test}" command)
set(hangs_plugin_timeout "")
math(EXPR last_argument "${argument_count} - 2")
foreach(i RANGE ${last_argument})
  string(JSON argument GET "${hangs_test}" command ${i})
  if(argument STREQUAL "--plugin-timeout")
    math(EXPR next "${i} + 1")
    string(JSON hangs_plugin_timeout GET "${hangs_test}" command ${next})
  endif()
endforeach()
if(NOT hangs_plugin_timeout STREQUAL "1")
  message(FATAL_ERROR "attention_checks_hangs does not pass --plugin-timeout 1:\n${hangs_test}")
endif()
string(JSON hangs_property_count LENGTH "${hangs_test}" properties)
set(hangs_ctest_timeout "")
math(EXPR last_property "${hangs_property_count} - 1")
foreach(i RANGE ${last_property})
  string(JSON name GET "${hangs_test}" properties ${i} name)
  if(name STREQUAL "TIMEOUT")
    string(JSON hangs_ctest_timeout GET "${hangs_test}" properties ${i} value)
  endif()
endforeach()
if(NOT hangs_ctest_timeout EQUAL 1201)
  message(FATAL_ERROR "attention_checks_hangs has CTest TIMEOUT '${hangs_ctest_timeout}', expected 1 + 1200")
endif()

# Benchmarks of the correct plugin next to flash (one tiny size, nine repetitions), then the report.
set(plugin ${build}/libsimple_attention.so)
run(${prefix}/bin/bench --plugin ${plugin} --variants simple,flash --passes forward,backward --masks causal
    --seq-lens 64 --head-dims 8 --heads 2 --repetitions 9 --iterations 1 --layers off --gemm off
    --benchmark_format=json --benchmark_out=${out}/bench.json --benchmark_out_format=json)
run(${prefix}/bin/report convert --json ${out}/bench.json --out ${out}/bench.csv)
require_match(${out}/bench.csv "\nsimple,backward,float,1,2,64,8,causal,")
run(${prefix}/bin/report summarize --bench ${out}/bench.csv --verify ${csv} --out ${out}/report)
require_match(${out}/report/summary.md "\n\\| simple \\| 64 \\|")
# The performance gate: the run against itself as the stored baseline shows no regression.
run(${prefix}/bin/report compare ${out}/bench.csv ${out}/bench.csv)
message(STATUS "example built against ${prefix}: its gate passed the correct kernels, caught the wrong ones; "
               "simple benchmarked, summarized and compared")
