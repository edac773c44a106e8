# cython: language_level=3, boundscheck=True, wraparound=True
# The compiled build of edgeward.http1.fast: Cython compiles the very same
# source (written in Cython pure-Python mode); fast.py is its pure-Python twin.
# Bounds checks stay on: this parses untrusted bytes.
from libc.string cimport memchr  # the compiled build's _find (heads: from LF to LF)
include "fast.py"
