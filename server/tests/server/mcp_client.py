"""A second MCP client no one here wrote: the official Python SDK (`pip install mcp`).

Usage: mcp_client.py URL TOKEN. Prints one line per check; exits non-zero on failure.
"""

import asyncio
import sys

from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result):
    return "".join(getattr(block, "text", "") for block in result.content)


async def main(url: str, token: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, streamable_http_client(url, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            names = sorted(tool.name for tool in tools.tools)
            print("tools:", " ".join(names))
            assert "run_command" in names and "write_file" in names, names

            result = await session.call_tool("run_command", {"command": "echo hi-from-python"})
            assert not result.is_error, text_of(result)
            structured = result.structured_content or {}
            output = structured.get("output", "").strip()
            print(f"run_command: {output} exit {structured.get('exit_code')}")

            wrote = await session.call_tool(
                "write_file", {"path": "py/hello.txt", "content": "from python\n"}
            )
            assert not wrote.is_error, text_of(wrote)
            read_back = await session.call_tool("read_file", {"path": "py/hello.txt"})
            assert text_of(read_back) == "from python\n", text_of(read_back)
            print("read_file: round trip ok")

            bad = await session.call_tool("read_file", {"path": "no/such/file"})
            assert bad.is_error, text_of(bad)
            print("read_file: missing file is a tool error:", text_of(bad)[:80])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
