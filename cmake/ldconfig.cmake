# SPDX-License-Identifier: MIT
# Runs at the end of `cmake --install` (`make install`): how will programs
# linked with -lweft find libweft.so.0 at run time?
#  - A directory the dynamic loader's cache covers (/usr/local/lib, from
#    /etc/ld.so.conf) finds a new library only once ldconfig has rebuilt
#    the cache: as root, we run it; otherwise we say so.
#  - Any other prefix is never searched: we say how to point programs at
#    it (an rpath, which the README recommends, or LD_LIBRARY_PATH).
# Nothing for a staged install (DESTDIR: a package runs ldconfig itself)
# or where there is no ldconfig (not glibc).
if(NOT "$ENV{DESTDIR}" STREQUAL "")
  return()
endif()
find_program(WEFT_LDCONFIG ldconfig PATHS /sbin /usr/sbin)
if(NOT WEFT_LDCONFIG)
  return()
endif()

get_filename_component(libdir "${CMAKE_INSTALL_PREFIX}/${WEFT_INSTALL_LIBDIR}"
  REALPATH)
# "-v -N -X": list the directories ldconfig scans (its configuration and
# the built-in ones), changing nothing. Lines "/dir: (from ...)".
execute_process(COMMAND ${WEFT_LDCONFIG} -v -N -X
  OUTPUT_VARIABLE scanned ERROR_QUIET)
string(REGEX MATCHALL "(^|\n)/[^:\n]*:" dirs "${scanned}")
set(searched FALSE)
foreach(dir ${dirs})
  string(REGEX REPLACE "^\n?(.*):$" "\\1" dir "${dir}")
  get_filename_component(dir "${dir}" REALPATH)
  if(dir STREQUAL libdir)
    set(searched TRUE)
  endif()
endforeach()

if(NOT searched)
  message(STATUS "weft: the dynamic loader does not search ${libdir}: "
    "link programs with -Wl,-rpath,${libdir} (or run them with "
    "LD_LIBRARY_PATH=${libdir}), or list it in /etc/ld.so.conf.d/ and run "
    "ldconfig")
  return()
endif()
execute_process(COMMAND id -u OUTPUT_VARIABLE uid
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(uid STREQUAL "0")
  execute_process(COMMAND ${WEFT_LDCONFIG} RESULT_VARIABLE rc)
  if(rc EQUAL 0)
    message(STATUS "weft: ran ldconfig: programs find libweft.so in ${libdir}")
  else()
    message(WARNING "weft: ldconfig failed (${rc}): run it as root, or "
      "programs will not find libweft.so in ${libdir}")
  endif()
else()
  message(STATUS "weft: run ldconfig as root (sudo ldconfig), or programs "
    "will not find libweft.so in ${libdir} until it runs")
endif()
