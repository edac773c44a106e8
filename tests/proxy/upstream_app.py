"""The upstream the proxy tests talk to: a small trio + h11 server, run as
its own process (`python upstream_app.py PORT_FILE`), so the edge under test
meets a real server over real sockets.

Routes (query parameters in brackets):
  /hello                 "hello\n"
  /conn                  the peer port of the upstream connection (pool reuse)
  /headers               JSON of the request line and headers received
  /echo                  streams the request body back (chunked)
  /count                 reads the body, answers its length and sha256
  /big?n=BYTES           streams n bytes (64 KiB chunks, content-length)
  /slow?s=SECONDS        waits, then "slow\n"
  /status?code=N         empty answer with that status
  /trailers              chunked body with a trailer
  /close                 closes the connection without answering
  /garbage               answers bytes that are not HTTP
  /ws                    WebSocket echo (wsproto)
  /sse?n=N&s=SECONDS     N server-sent events, one every SECONDS (chunked)
"""

from __future__ import annotations

import hashlib
import json
import sys
from urllib.parse import parse_qs, urlsplit

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws

CHUNK = b"x" * 65536


async def handle(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=256 * 1024)
    peer = stream.socket.getpeername()
    peer_port = peer[1] if isinstance(peer, tuple) else 0
    try:
        while True:
            event = await next_event(stream, conn)
            if not isinstance(event, h11.Request):
                return
            url = urlsplit(event.target.decode())
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            route = ROUTES.get(url.path, hello)
            keep = await route(stream, conn, event, query, peer_port)
            if keep is False or conn.our_state is h11.MUST_CLOSE:
                return
            # drain any unread body before the next cycle
            while conn.their_state is h11.SEND_BODY:
                if not isinstance(await next_event(stream, conn), h11.Data | h11.EndOfMessage):
                    return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        pass
    finally:
        await stream.aclose()


async def next_event(stream: trio.SocketStream, conn: h11.Connection) -> object:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
            continue
        return event


async def read_body(stream: trio.SocketStream, conn: h11.Connection) -> bytes:
    body = bytearray()
    while True:
        event = await next_event(stream, conn)
        if isinstance(event, h11.Data):
            body += event.data
        else:
            return bytes(body)


async def respond(stream, conn, status=200, body=b"", headers=(), *, head=False):  # type: ignore[no-untyped-def]
    hdrs = [("content-length", str(len(body))), *headers]
    out = conn.send(h11.Response(status_code=status, headers=hdrs))
    if body and not head:
        out += conn.send(h11.Data(data=body))
    out += conn.send(h11.EndOfMessage())
    await stream.send_all(out)


async def hello(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    await respond(
        stream,
        conn,
        body=b"hello\n",
        headers=[("content-type", "text/plain")],
        head=req.method == b"HEAD",
    )


async def conn_port(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    await respond(stream, conn, body=str(port).encode())


async def headers(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    data = {
        "method": req.method.decode(),
        "target": req.target.decode(),
        "headers": [[n.decode(), v.decode()] for n, v in req.headers.raw_items()],
    }
    await respond(
        stream, conn, body=json.dumps(data).encode(), headers=[("content-type", "application/json")]
    )


async def echo(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await stream.send_all(
        conn.send(h11.Response(status_code=200, headers=[("transfer-encoding", "chunked")]))
    )
    while True:
        event = await next_event(stream, conn)
        if isinstance(event, h11.Data):
            await stream.send_all(conn.send(h11.Data(data=event.data)))
        else:
            break
    await stream.send_all(conn.send(h11.EndOfMessage()))


async def count(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    digest = hashlib.sha256()
    size = 0
    while True:
        event = await next_event(stream, conn)
        if isinstance(event, h11.Data):
            digest.update(event.data)
            size += len(event.data)
        else:
            break
    await respond(
        stream, conn, body=json.dumps({"bytes": size, "sha256": digest.hexdigest()}).encode()
    )


async def big(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    n = int(q.get("n", "1048576"))
    await stream.send_all(
        conn.send(h11.Response(status_code=200, headers=[("content-length", str(n))]))
    )
    left = n
    while left:
        piece = CHUNK[: min(left, len(CHUNK))]
        await stream.send_all(conn.send(h11.Data(data=piece)))
        left -= len(piece)
    await stream.send_all(conn.send(h11.EndOfMessage()))


async def slow(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    await trio.sleep(float(q.get("s", "1")))
    await respond(stream, conn, body=b"slow\n")


async def status(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    code = int(q.get("code", "204"))
    hdrs = [] if code in (204, 304) else [("content-length", "0")]
    await stream.send_all(
        conn.send(h11.Response(status_code=code, headers=hdrs)) + conn.send(h11.EndOfMessage())
    )


async def trailers(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    out = conn.send(
        h11.Response(
            status_code=200, headers=[("transfer-encoding", "chunked"), ("trailer", "x-sum")]
        )
    )
    out += conn.send(h11.Data(data=b"part1,")) + conn.send(h11.Data(data=b"part2"))
    out += conn.send(h11.EndOfMessage(headers=[("x-sum", "42")]))
    await stream.send_all(out)


async def sse(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    headers = [("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]
    await stream.send_all(conn.send(h11.Response(status_code=200, headers=headers)))
    for i in range(int(q.get("n", "3"))):
        await stream.send_all(conn.send(h11.Data(data=b"id: %d\ndata: event %d\n\n" % (i, i))))
        await trio.sleep(float(q.get("s", "0.2")))
    await stream.send_all(conn.send(h11.EndOfMessage()))


async def close(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    return False


async def garbage(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await stream.send_all(b"this is not http\r\n\r\n")
    return False


async def websocket(stream, conn, req, q, port):  # type: ignore[no-untyped-def]
    await read_body(stream, conn)
    wsconn = WSConnection(ConnectionType.SERVER)
    # replay the handshake request into wsproto
    raw = f"{req.method.decode()} {req.target.decode()} HTTP/1.1\r\n"
    raw += "".join(f"{n.decode()}: {v.decode()}\r\n" for n, v in req.headers.raw_items()) + "\r\n"
    wsconn.receive_data(raw.encode())
    leftover, _ = conn.trailing_data
    for event in wsconn.events():
        if isinstance(event, ws.Request):
            await stream.send_all(wsconn.send(ws.AcceptConnection()))
    if leftover:
        wsconn.receive_data(bytes(leftover))
    while True:
        for event in wsconn.events():
            if isinstance(event, ws.TextMessage | ws.BytesMessage):
                await stream.send_all(wsconn.send(ws.Message(data=event.data)))
            elif isinstance(event, ws.CloseConnection):
                await stream.send_all(wsconn.send(event.response()))
                return False
            elif isinstance(event, ws.Ping):
                await stream.send_all(wsconn.send(event.response()))
        data = await stream.receive_some(65536)
        if not data:
            return False
        wsconn.receive_data(data)


ROUTES = {
    "/hello": hello,
    "/conn": conn_port,
    "/headers": headers,
    "/echo": echo,
    "/count": count,
    "/big": big,
    "/slow": slow,
    "/status": status,
    "/trailers": trailers,
    "/close": close,
    "/garbage": garbage,
    "/ws": websocket,
    "/sse": sse,
}


async def main(port_file: str, unix_path: str | None) -> None:
    listeners: list[trio.SocketListener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    if unix_path:
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(unix_path)
        sock.listen(128)
        listeners.append(trio.SocketListener(sock))
    with open(port_file, "w") as f:
        f.write(str(port))
    await trio.serve_listeners(handle, listeners)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
