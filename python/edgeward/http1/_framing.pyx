# cython: language_level=3, boundscheck=True, wraparound=True
# The compiled build of edgeward.http1.framing: Cython compiles the very same
# source (written in Cython pure-Python mode); framing.py is its pure-Python twin.
include "framing.py"
