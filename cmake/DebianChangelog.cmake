# Writes the package's changelog, in the format of debian/changelog (dpkg and lintian read it
# from /usr/share/doc/with-gpu/changelog.gz), from the release notes in NEWS.md. Script mode:
#
#   cmake -D NEWS=NEWS.md -D OUTPUT=changelog -D PACKAGE=with-gpu -D MAINTAINER="NAME" \
#         -P cmake/DebianChangelog.cmake
#
# Each "## VERSION (DATE)" heading of NEWS.md starts an entry. DATE is YYYY-MM-DD, or
# "not yet released": then the entry is for distribution UNRELEASED and dated when it is
# built (SOURCE_DATE_EPOCH, if set, gives that time). The "- " items and the plain paragraphs
# under a heading become "  * " items, refilled to 80 columns, without Markdown backquotes.
# Text before the first heading is not copied.
#
# The maintainer has no e-mail address yet, so the trailer lines name MAINTAINER alone,
# where Debian's format wants "NAME <ADDRESS>" (docs/install.md, "Lintian").
cmake_minimum_required(VERSION 3.25)

foreach(variable NEWS OUTPUT PACKAGE MAINTAINER)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "DebianChangelog.cmake: -D ${variable}=... is missing")
  endif()
endforeach()

file(READ "${NEWS}" news)
# One list element per line: ';', '[' and ']' mean something to CMake lists, so they travel
# as control characters and are put back on output.
string(ASCII 1 semicolon)
string(ASCII 2 open_bracket)
string(ASCII 3 close_bracket)
string(REPLACE ";" "${semicolon}" news "${news}")
string(REPLACE "[" "${open_bracket}" news "${news}")
string(REPLACE "]" "${close_bracket}" news "${news}")
string(REPLACE "`" "" news "${news}")
string(REPLACE "\n" ";" lines "${news}")

set(months Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)
set(weekdays Sun Mon Tue Wed Thu Fri Sat)

# "Www, DD Mmm YYYY 00:00:00 +0000" for YYYY-MM-DD (weekday by Sakamoto's method).
function(debian_date iso out)
  if(NOT iso MATCHES "^([0-9][0-9][0-9][0-9])-([0-9][0-9])-([0-9][0-9])$")
    message(FATAL_ERROR "${NEWS}: \"${iso}\" is not a date YYYY-MM-DD or \"not yet released\"")
  endif()
  math(EXPR year "${CMAKE_MATCH_1}")
  math(EXPR month "${CMAKE_MATCH_2}")
  math(EXPR day "${CMAKE_MATCH_3}")
  set(offsets 0 3 2 5 0 3 5 1 4 6 2 4)
  math(EXPR index "${month} - 1")
  list(GET offsets ${index} offset)
  set(y ${year})
  if(month LESS 3)
    math(EXPR y "${y} - 1")
  endif()
  math(EXPR weekday "(${y} + ${y} / 4 - ${y} / 100 + ${y} / 400 + ${offset} + ${day}) % 7")
  list(GET weekdays ${weekday} weekday_name)
  list(GET months ${index} month_name)
  set(${out} "${weekday_name}, ${CMAKE_MATCH_3} ${month_name} ${year} 00:00:00 +0000" PARENT_SCOPE)
endfunction()

set(changelog "")
set(entry_open FALSE)
set(item "")
set(trailer "")

# Appends the item collected so far as "  * ...", refilled to 80 columns.
macro(flush_item)
  if(NOT item STREQUAL "")
    string(REGEX REPLACE " +" ";" words "${item}")
    set(item_line "  *")
    set(item_line_has_words FALSE)
    foreach(word IN LISTS words)
      if(word STREQUAL "")
        continue()
      endif()
      string(LENGTH "${item_line} ${word}" length)
      if(length GREATER 80 AND item_line_has_words)
        string(APPEND changelog "${item_line}\n")
        set(item_line "   ")
      endif()
      string(APPEND item_line " ${word}")
      set(item_line_has_words TRUE)
    endforeach()
    string(APPEND changelog "${item_line}\n")
    set(item "")
  endif()
endmacro()

macro(close_entry)
  flush_item()
  if(entry_open)
    string(APPEND changelog "\n -- ${MAINTAINER}  ${trailer}\n")
  endif()
endmacro()

foreach(line IN LISTS lines)
  if(line MATCHES "^## +([^ ]+) +\\((.*)\\) *$")
    close_entry()
    set(version "${CMAKE_MATCH_1}")
    set(when "${CMAKE_MATCH_2}")
    if(when STREQUAL "not yet released")
      set(distribution UNRELEASED)
      string(TIMESTAMP trailer "%a, %d %b %Y %H:%M:%S +0000" UTC)
    else()
      set(distribution unstable)
      debian_date("${when}" trailer)
    endif()
    if(entry_open)
      string(APPEND changelog "\n")
    endif()
    string(APPEND changelog "${PACKAGE} (${version}) ${distribution}; urgency=medium\n\n")
    set(entry_open TRUE)
  elseif(line MATCHES "^#")
    if(entry_open)
      message(FATAL_ERROR "${NEWS}: only \"## VERSION (DATE)\" headings are understood: ${line}")
    endif()
  elseif(NOT entry_open)
    # the introduction before the first version
  elseif(line MATCHES "^ *$")
    flush_item()
  elseif(line MATCHES "^- +(.*)$")
    set(first_words "${CMAKE_MATCH_1}")
    flush_item()
    set(item "${first_words}")
  else()
    string(STRIP "${line}" text)
    string(APPEND item " ${text}")
  endif()
endforeach()
close_entry()

if(changelog STREQUAL "")
  message(FATAL_ERROR "${NEWS} has no \"## VERSION (DATE)\" heading")
endif()
string(REPLACE "${semicolon}" ";" changelog "${changelog}")
string(REPLACE "${open_bracket}" "[" changelog "${changelog}")
string(REPLACE "${close_bracket}" "]" changelog "${changelog}")
file(WRITE "${OUTPUT}" "${changelog}")
