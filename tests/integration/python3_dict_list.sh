#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# python3 running a dict/list/string-heavy script (python3_dict_list.py): the printed counts and
# checksums must be identical with and without the preload library.
# usage: python3_dict_list.sh PATH/TO/libslub.so
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=/usr/bin/python3
need "$PY"
check_preload
cd "$TMP"
run_pair python "$PY" "$HERE/python3_dict_list.py"
compare_outputs python
