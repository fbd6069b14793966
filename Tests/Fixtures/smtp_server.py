#!/usr/bin/env python3
"""A real SMTP server for the tests, built on aiosmtpd.

Listens on 127.0.0.1 (an ephemeral port unless --port is given), prints "READY <port>"
once it accepts connections, and stores each message it accepts as <n>.eml in --out, with
<n>.json beside it (envelope sender, recipients, whether the session was authenticated and
encrypted). --behavior makes it misbehave in the ways a test needs. It runs until it is
terminated.
"""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--mechanisms", default="PLAIN,LOGIN", help="AUTH mechanisms to offer")
    parser.add_argument(
        "--behavior",
        choices=["normal", "reject-rcpt", "drop-in-data", "hang"],
        default="normal",
    )
    parser.add_argument("--out", required=True)
    return parser.parse_args()


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.behavior == "reject-rcpt":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.behavior == "drop-in-data":
            server.transport.close()
            return "451 dropped"
        self.count += 1
        base = os.path.join(self.args.out, str(self.count))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "authenticated": bool(session.authenticated),
                    "encrypted": server.transport.get_extra_info("sslcontext") is not None,
                },
                f,
            )
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


def make_authenticator(args):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == args.user.encode() and auth_data.password == args.password.encode()
        return AuthResult(success=ok, handled=False)

    return authenticate


async def hang(reader, writer):
    # Accepts and never says a word.
    await asyncio.sleep(3600)


async def main():
    args = parse_args()
    loop = asyncio.get_running_loop()
    # The parent may have SIGTERM blocked; make sure terminating this process works.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    loop.add_signal_handler(signal.SIGTERM, lambda: os._exit(0))
    context = None
    if args.mode in ("starttls", "tls"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    if args.behavior == "hang":
        server = await asyncio.start_server(hang, "127.0.0.1", args.port)
    else:
        handler = Handler(args)
        offered = set(m.strip().upper() for m in args.mechanisms.split(",") if m.strip())
        excluded = [m for m in ("PLAIN", "LOGIN") if m not in offered]

        def factory():
            options = dict(
                hostname="smtp.test",
                auth_require_tls=False,
                auth_exclude_mechanism=excluded,
            )
            if args.user:
                options["authenticator"] = make_authenticator(args)
                options["auth_required"] = True
            if args.mode == "starttls":
                options["tls_context"] = context
                options["require_starttls"] = True
            return SMTP(handler, **options)

        server = await loop.create_server(
            factory, "127.0.0.1", args.port, ssl=context if args.mode == "tls" else None
        )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
