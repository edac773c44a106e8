"""Sans-IO HTTP/1.1: two interchangeable codecs behind one interface.

`events` holds the events both codecs produce and consume; `codec` the
interface. The codecs: `h11codec` (the reference, on h11) and the fast path
(httptools' llhttp parser with a Cython message layer and its pure-Python
twin). Nothing here touches a socket or trio.
"""
