# cython: language_level=3
# The compiled build of edgeward.http1.event_classes: Cython compiles the very
# same source (written in Cython pure-Python mode); event_classes.py is its twin.
include "event_classes.py"
