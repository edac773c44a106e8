"""The official ngrok Python SDK as an agent, for the interop tests.

    python sdk_agent.py '{"server_addr": ..., "root_cas": ..., "authtoken": ...,
                          "domain": ..., "upstream": ...}'

Prints one JSON line: {"url", "id"} once the endpoint is bound, or
{"error": [...]} when connecting or binding fails; then runs until stdin
closes.
"""

import asyncio
import json
import sys

import ngrok


async def main() -> None:
    options = json.loads(sys.argv[1])
    try:
        session = await (
            ngrok.SessionBuilder()
            .authtoken(options["authtoken"])
            .server_addr(options["server_addr"])
            .root_cas(options["root_cas"])
            .metadata("edgeward interop test")
            .connect()
        )
        listener = await (
            session.http_endpoint()
            .domain(options["domain"])
            .listen_and_forward(options["upstream"])
        )
    except Exception as exc:
        print(json.dumps({"error": [str(arg) for arg in exc.args]}), flush=True)
        return
    print(json.dumps({"url": listener.url(), "id": listener.id()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


asyncio.run(main())
