# SPDX-License-Identifier: MIT
# The version of weft, from project()'s VERSION, and what follows from it.
#
# WEFT_SOVERSION, the shared library's ABI number (its soname is
# libweft.so.${WEFT_SOVERSION}): MAJOR from 1.0 on; before 1.0, while
# any minor release may break the ABI, MAJOR.MINOR (libweft.so.0.2). A
# patch release keeps the soname. README.md, "Versioning", is the policy.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(WEFT_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(WEFT_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

# Fails the configuration unless the header's WEFT_VERSION_MAJOR, _MINOR,
# _PATCH and WEFT_VERSION say PROJECT_VERSION.
function(weft_check_header_version header)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${header})
  file(STRINGS ${header} lines REGEX "^#define WEFT_VERSION(_[A-Z]+)? ")
  set(found "")
  foreach(line ${lines})
    if(line MATCHES "^#define WEFT_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)$")
      set(${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
    elseif(line MATCHES "^#define WEFT_VERSION \"([^\"]*)\"$")
      set(found ${CMAKE_MATCH_1})
    endif()
  endforeach()
  set(parts "${MAJOR}.${MINOR}.${PATCH}")
  if(NOT parts STREQUAL PROJECT_VERSION OR NOT found STREQUAL PROJECT_VERSION)
    message(FATAL_ERROR "${header} says version ${parts} (WEFT_VERSION "
      "\"${found}\"), project() says ${PROJECT_VERSION}: make them agree")
  endif()
endfunction()
