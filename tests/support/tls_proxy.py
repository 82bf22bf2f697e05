#!/usr/bin/python3
"""tls_proxy.py - a TLS-terminating TCP relay for the transport tests.

Listens on 127.0.0.1 (any free port) with the certificate and key given,
prints "PORT <n>" once it listens, and relays every decrypted connection to
an upstream plain-TCP address (the carrier simulator). Exits when its stdin
closes, so it never outlives the test that started it.

Usage: tls_proxy.py CERT KEY UPSTREAM_HOST UPSTREAM_PORT
"""
import asyncio
import os
import ssl
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main():
    cert, key, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection(host, port)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, uw), pipe(ur, cw))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(sys.stdin.fileno(),
                    lambda: os.read(sys.stdin.fileno(), 4096) or done.done() or done.set_result(0))
    await done
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
