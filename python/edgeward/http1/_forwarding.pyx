# cython: language_level=3, boundscheck=True, wraparound=True
# The compiled build of edgeward.http1.forwarding: Cython compiles the very same
# source (written in Cython pure-Python mode); forwarding.py is its pure-Python twin.
include "forwarding.py"
