"""`python -m tests.faults.tcp_relay LISTEN_PORT UPSTREAM_PORT`: relays TCP connections on 127.0.0.1.

The failover tests put it on the replication link (the replica's `replicaof` points here). Stopping it (SIGSTOP)
holds the replication stream back, so the replica lags; killing it then drops what it held."""

from __future__ import annotations

import asyncio
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _relay(upstream: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer), return_exceptions=True)


async def main(listen: int, upstream: int) -> None:
    server = await asyncio.start_server(lambda r, w: _relay(upstream, r, w), "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
