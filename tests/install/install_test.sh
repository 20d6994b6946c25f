#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# integration.install: `cmake --install` of the build into a temporary prefix gives a tree that
# works as documented (cmake/slub_install.cmake, slub(7)):
#   - the files: versioned libslub.so with the SONAME libslub.so.MAJOR and its links,
#     libslub.a, the headers with version.h, slub.pc, the CMake package, the tools, slub(7);
#   - the consumer project (consumer/) configured, built and run with find_package(slub)
#     against slub::slub (it must get malloc from the installed libslub.so) and
#     slub::slub_static (no libslub.so needed), and its C++ program against slub.hpp;
#   - the same C program built with `cc $(pkg-config --cflags --libs slub)`, and against
#     libslub.a with the flags of `pkg-config --static`;
#   - slub(7) renders without warnings and names every option build/tools/slub_options prints;
#   - bin/slub_options --version and tools/slub --version print the version.
#
# usage: install_test.sh BUILD_DIR VERSION   (ctest passes build/ and the project's version)
set -euo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
(($# == 2)) || {
  echo "usage: $0 BUILD_DIR VERSION" >&2
  exit 2
}
BUILD=$(cd "$1" && pwd)
VERSION=$2
MAJOR=${VERSION%%.*}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
P=$TMP/prefix

# run LOG CMD...: CMD with its output in $TMP/LOG, shown when it fails.
run() {
  local log=$TMP/$1
  shift
  "$@" >"$log" 2>&1 || {
    cat "$log" >&2
    fail "$* failed"
  }
}

# ---- the installed tree ----------------------------------------------------------------------
run install.log cmake --install "$BUILD" --prefix "$P"
for f in "lib/libslub.so.$VERSION" "lib/libslub.so.$MAJOR" lib/libslub.so lib/libslub.a \
  include/slub/slub.h include/slub/slub.hpp include/slub/stats.h include/slub/version.h \
  lib/pkgconfig/slub.pc lib/cmake/slub/slubConfig.cmake lib/cmake/slub/slubConfigVersion.cmake \
  lib/cmake/slub/slubTargets.cmake bin/slub_options share/man/man7/slub.7; do
  [[ -e $P/$f ]] || fail "cmake --install did not install $f"
done
[[ -L $P/lib/libslub.so && -L $P/lib/libslub.so.$MAJOR ]] ||
  fail "lib/libslub.so and lib/libslub.so.$MAJOR are not links to lib/libslub.so.$VERSION"
[[ $(readlink -f "$P/lib/libslub.so") == "$P/lib/libslub.so.$VERSION" ]] ||
  fail "lib/libslub.so does not lead to lib/libslub.so.$VERSION"
soname=$(readelf -d "$P/lib/libslub.so.$VERSION" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[[ $soname == "libslub.so.$MAJOR" ]] || fail "the SONAME of libslub.so is '$soname', not libslub.so.$MAJOR"
if readelf -d "$P/lib/libslub.so" | grep -q 'NEEDED.*libstdc++'; then
  fail "the installed libslub.so needs libstdc++"
fi
grep -qxF "#define SLUB_VERSION_STRING \"$VERSION\"" "$P/include/slub/version.h" ||
  fail "include/slub/version.h does not define SLUB_VERSION_STRING \"$VERSION\""
[[ $("$P/bin/slub_options" --version) == "slub $VERSION" ]] ||
  fail "bin/slub_options --version printed '$("$P/bin/slub_options" --version)'"
for arg in --version version; do
  [[ $("$HERE/../../tools/slub" "$arg") == "slub $VERSION" ]] || fail "tools/slub $arg does not print slub $VERSION"
done
if [[ -x $BUILD/tools/slabinfo/slabinfo ]]; then  # built when nlohmann-json3-dev is there
  [[ -x $P/bin/slabinfo ]] || fail "bin/slabinfo was not installed"
  run slabinfo.log "$P/bin/slabinfo" --help
fi

# ---- (a) the CMake package -------------------------------------------------------------------
run cmake-configure.log cmake -S "$HERE/consumer" -B "$TMP/cmake" -DCMAKE_PREFIX_PATH="$P" \
  -DSLUB_WANTED_VERSION="$VERSION"
run cmake-build.log cmake --build "$TMP/cmake"
# The version file refuses another major version.
if cmake -S "$HERE/consumer" -B "$TMP/cmake-wrong" -DCMAKE_PREFIX_PATH="$P" \
  -DSLUB_WANTED_VERSION="$((MAJOR + 1)).0.0" >"$TMP/cmake-wrong.log" 2>&1; then
  fail "find_package(slub $((MAJOR + 1)).0.0 EXACT) accepted version $VERSION"
fi

# Runs a consumer, which must print its "ok" line; with `shared`, malloc must be the installed
# libslub.so's.
check_consumer() {
  local prog=$1 kind=$2 out
  out=$("$prog" 2>&1) || fail "$prog failed: $out"
  [[ $out == *": ok, slub $VERSION"* ]] || fail "$prog printed: $out"
  case $kind in
    shared)
      [[ $out == *"malloc from $P/lib/libslub.so.$MAJOR" ]] ||
        fail "$prog did not get malloc from the installed libslub.so: $out"
      readelf -d "$prog" | grep -q "NEEDED.*\[libslub.so.$MAJOR\]" ||
        fail "$prog does not record libslub.so.$MAJOR (the SONAME) as NEEDED"
      ;;
    static)
      if readelf -d "$prog" | grep -q 'NEEDED.*libslub'; then
        fail "$prog, linked with libslub.a, needs libslub.so"
      fi
      ;;
  esac
}
check_consumer "$TMP/cmake/consumer_shared" shared
check_consumer "$TMP/cmake/consumer_static" static
check_consumer "$TMP/cmake/consumer_cxx" static

# ---- (b) pkg-config --------------------------------------------------------------------------
export PKG_CONFIG_PATH=$P/lib/pkgconfig
[[ $(pkg-config --modversion slub) == "$VERSION" ]] || fail "pkg-config --modversion slub is not $VERSION"
cc=${CC:-cc}
# shellcheck disable=SC2046 # the flags are words
run pc-shared.log "$cc" -O2 -Wall -DCONSUMER_SHARED=1 "$HERE/consumer/consumer.c" -o "$TMP/pc_shared" \
  $(pkg-config --cflags --libs slub) -Wl,-rpath,"$P/lib" -ldl
check_consumer "$TMP/pc_shared" shared
libdir=$(pkg-config --variable=libdir slub)
static_libs=$(pkg-config --static --libs slub)
[[ $static_libs == *-lpthread* && $static_libs == *-ldl* ]] ||
  fail "pkg-config --static --libs slub lacks -lpthread -ldl: $static_libs"
# shellcheck disable=SC2046,SC2086
run pc-static.log "$cc" -O2 -Wall "$HERE/consumer/consumer.c" -o "$TMP/pc_static" \
  $(pkg-config --cflags slub) ${static_libs/-lslub/$libdir/libslub.a}
check_consumer "$TMP/pc_static" static

# ---- slub(7) ---------------------------------------------------------------------------------
page=$P/share/man/man7/slub.7
command -v man >/dev/null || fail "man is not installed (Debian: man-db; tools/slub deps installs it)"
MANWIDTH=80 man -l "$page" >"$TMP/man.txt" 2>"$TMP/man.err" || fail "man -l $page failed: $(cat "$TMP/man.err")"
[[ ! -s $TMP/man.err ]] || fail "man -l $page printed: $(cat "$TMP/man.err")"
sed -i 's/.\x08//g' "$TMP/man.txt"  # overstrikes (bold, underline), if any
if command -v groff >/dev/null; then
  groff -man -Tutf8 -ww -z "$page" 2>"$TMP/groff.err" || true
  [[ ! -s $TMP/groff.err ]] || fail "groff warns about slub(7): $(cat "$TMP/groff.err")"
fi
for section in NAME SYNOPSIS DESCRIPTION USAGE ENVIRONMENT DEBUGGING FILES "SEE ALSO"; do
  grep -qx "$section" "$TMP/man.txt" || fail "slub(7) has no $section section"
done
grep -q "slub $VERSION" "$TMP/man.txt" || fail "slub(7) does not name version $VERSION"
mapfile -t names < <("$BUILD/tools/slub_options" | awk 'NR > 1 { print $1 }')
((${#names[@]} > 10)) || fail "build/tools/slub_options listed only ${#names[@]} options"
for name in "${names[@]}"; do
  grep -qE "^ +$name\$" "$TMP/man.txt" || fail "slub(7) has no paragraph for $name"
done
echo "ok: installed to a temporary prefix; consumers built with the CMake package and pkg-config ran; slub(7) lists ${#names[@]} options"
