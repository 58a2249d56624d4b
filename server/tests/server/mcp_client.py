"""A second MCP client no one here wrote: the official Python SDK (`pip install mcp`).

Usage: mcp_client.py URL TOKEN OTHER_URL

URL is a session's MCP endpoint and TOKEN a token scoped to it; OTHER_URL is another
session's endpoint, which the token must not reach. It works through the same checks as
the rmcp test, printing one line per check, and exits non-zero on the first failure.

Where the test must act between two calls (watch the terminal, type half a line as a
person), it prints `wait: WHAT` and reads one line from stdin before it goes on.
"""

import asyncio
import sys
import time

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def say(line: str) -> None:
    print(line, flush=True)


async def wait_for_test(what: str) -> None:
    say(f"wait: {what}")
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(f"the test said {line!r} at {what}")


def text_of(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def refused_status(url: str, headers: dict[str, str]) -> int | None:
    """Connects and initializes; the HTTP status that refused it, or None if it was let in."""
    statuses: list[int] = []

    async def record(response) -> None:
        statuses.append(response.status_code)

    http = create_mcp_http_client(headers=headers)
    http.event_hooks["response"].append(record)
    try:
        async with http, streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await asyncio.wait_for(session.initialize(), 30)
    except Exception:  # the SDK's error for a refused initialize; the status says which
        pass
    else:
        return None
    refusals = [s for s in statuses if s >= 400]
    return refusals[0] if refusals else -1


async def wait_for_prompt(session: ClientSession) -> None:
    deadline = time.monotonic() + 30
    while True:
        screen = await session.call_tool("read_screen", {})
        if (screen.structured_content or {}).get("shell") == "prompt":
            return
        assert time.monotonic() < deadline, f"never back at a prompt: {text_of(screen)}"
        await asyncio.sleep(0.05)


async def main(url: str, token: str, other_url: str) -> None:
    bearer = {"Authorization": f"Bearer {token}"}

    # Refusals, as this client meets them.
    status = await refused_status(url, {"Authorization": "Bearer flint_0000"})
    assert status == 401, f"a wrong token got {status}"
    say("wrong token: 401")
    status = await refused_status(url, {**bearer, "Origin": "http://evil.example"})
    assert status == 403, f"a foreign Origin got {status}"
    say("foreign origin: 403")
    status = await refused_status(other_url, bearer)
    assert status == 404, f"another session's endpoint got {status}"
    say("other session: 404")

    http = create_mcp_http_client(headers=bearer)
    async with http, streamable_http_client(url, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            names = sorted(tool.name for tool in tools.tools)
            say("tools: " + " ".join(names))
            for name in ["run_command", "read_screen", "send_keys", "read_file", "write_file",
                         "list_files", "exec", "list_ports"]:
                assert name in names, f"{name} missing from {names}"

            # The shared shell: the test watches it before the command that matters.
            first = await session.call_tool("run_command", {"command": "true"})
            assert not first.is_error, text_of(first)
            say(f"terminal: {(first.structured_content or {})['terminal']}")
            await wait_for_test("watching")
            result = await session.call_tool("run_command", {"command": "echo hi-from-python"})
            assert not result.is_error, text_of(result)
            structured = result.structured_content or {}
            output = structured.get("output", "").strip()
            say(f"run_command: {output} exit {structured.get('exit_code')}")

            # A person mid-line: busy, and nothing typed over it.
            await wait_for_test("person typing")
            busy = await session.call_tool("run_command", {"command": "echo clobber"})
            assert busy.is_error and "busy" in text_of(busy), text_of(busy)
            screen = text_of(await session.call_tool("read_screen", {}))
            assert "clobber" not in screen, screen
            say("busy: " + text_of(busy)[:80])
            await wait_for_test("person done")
            await wait_for_prompt(session)

            wrote = await session.call_tool(
                "write_file", {"path": "py/hello.txt", "content": "from python\n"}
            )
            assert not wrote.is_error, text_of(wrote)
            read_back = await session.call_tool("read_file", {"path": "py/hello.txt"})
            assert text_of(read_back) == "from python\n", text_of(read_back)
            say("read_file: round trip ok")
            bad = await session.call_tool("read_file", {"path": "no/such/file"})
            assert bad.is_error, text_of(bad)
            say("read_file: missing file is a tool error: " + text_of(bad)[:80])

            # A port opened in the shell shows up in list_ports.
            serve = "python3 -m http.server 8766 --bind 127.0.0.1 >/dev/null 2>&1 &"
            started = await session.call_tool("run_command", {"command": serve})
            assert not started.is_error, text_of(started)
            deadline = time.monotonic() + 20
            while "8766" not in text_of(ports := await session.call_tool("list_ports", {})):
                assert time.monotonic() < deadline, f"port 8766 never listed: {text_of(ports)}"
                await asyncio.sleep(0.2)
            say("list_ports: 8766")

            secret = await session.call_tool(
                "run_command", {"command": "export TOKEN=pyth0ns3cr3tvalue; echo set"}
            )
            assert not secret.is_error, text_of(secret)
            say("secret: typed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
