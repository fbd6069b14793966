#!/usr/bin/env python3
"""A TCP proxy for the tests that can cut a node off without closing anything.

Listens on 127.0.0.1 (an ephemeral port), prints "READY <port>", and forwards every
connection to --target-port on 127.0.0.1. SIGUSR1 stalls it: no byte is forwarded in
either direction, on open connections and new ones, but nothing is closed (what a network
partition looks like to both ends). SIGHUP stalls only what the newest open connection
receives (a connection that still sends but hears nothing back). SIGUSR2 resumes all
forwarding. Once a signal has taken effect (nothing is forwarded against it from then on),
it prints "HANDLED <n>", n counting the signals handled, for the test to wait on: the
signal itself is taken whenever the event loop gets to it. It runs until terminated.
"""
import argparse
import asyncio
import signal
import sys


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-port", type=int, required=True)
    args = parser.parse_args()
    flowing = asyncio.Event()
    flowing.set()
    # Per open connection, in the order opened: whether what it receives flows.
    replies = []

    async def pump(reader, writer, gates):
        try:
            while True:
                for gate in gates:
                    await gate.wait()
                data = await reader.read(65536)
                if not data:
                    break
                # Read before the stall, held until the partition ends.
                for gate in gates:
                    await gate.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", args.target_port)
        except OSError:
            client_writer.close()
            return
        received = asyncio.Event()
        received.set()
        replies.append(received)
        try:
            await asyncio.gather(
                pump(client_reader, server_writer, [flowing]),
                pump(server_reader, client_writer, [flowing, received]),
            )
        finally:
            replies.remove(received)

    def deafen_newest():
        if replies:
            replies[-1].clear()

    def resume():
        flowing.set()
        for received in replies:
            received.set()

    handled = 0

    def acknowledged(action):
        def handler():
            nonlocal handled
            action()
            handled += 1
            print(f"HANDLED {handled}", flush=True)

        return handler

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, acknowledged(flowing.clear))
    loop.add_signal_handler(signal.SIGUSR2, acknowledged(resume))
    loop.add_signal_handler(signal.SIGHUP, acknowledged(deafen_newest))
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
