#!/usr/bin/python3
"""smtp_server.py - a loopback SMTP server for the email channel tests.

Runs Debian's aiosmtpd on 127.0.0.1 (port 0 = any free port), prints
"PORT <n>" once it listens, and exits when its stdin closes (so it never
outlives the test that started it).

Every accepted message is saved as DIR/NNNN.eml (the exact bytes received)
beside DIR/NNNN.json: {"mail_from", "rcpt_tos", "conn" (one id per TCP
connection), "auth" (the authenticated user or null), "tls"}.

Faults are chosen by the recipient's local part, so one server serves every
case:
  tempfail@...    451 4.3.0 at RCPT TO      reject@...      550 5.1.1 at RCPT TO
  datafail@...    451 4.3.0 after DATA      datareject@...  554 5.6.0 after DATA
  flaky@...       451 4.3.0 at RCPT TO the first time, accepted afterwards

A line on stdin switches every recipient at once (for the fault suite):
  "mode ok" (default), "mode tempfail" (451 at RCPT), "mode reject" (550 at RCPT);
each is answered "ok" on stdout.

Options:
  --port N              listen on port N (default 0: any free port)
  --dir DIR             where to save messages (required)
  --drop-after N        after N messages on a connection, drop it at the next MAIL
  --auth USER:PASS      offer AUTH PLAIN/LOGIN and require it before MAIL
  --tls CERT KEY        offer STARTTLS with this certificate and key
"""
import argparse
import asyncio
import itertools
import json
import logging
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

FAULTS = {
    ("rcpt", "tempfail"): "451 4.3.0 Temporary failure, try again later",
    ("rcpt", "reject"): "550 5.1.1 No such user here",
    ("data", "datafail"): "451 4.3.0 Queue full, try again later",
    ("data", "datareject"): "554 5.6.0 Message content rejected",
}


class Handler:
    """Saves messages and injects the faults named by recipients."""

    def __init__(self, directory, drop_after=0):
        self.dir = directory
        self.seq = itertools.count(1)
        self.conns = {}
        self.drop_after = drop_after
        self.accepted = {}
        self.flaked = set()
        self.mode = "ok"  # "tempfail" / "reject": every recipient, set from stdin

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.drop_after and self.accepted.get(id(session), 0) >= self.drop_after:
            # a relay that vanishes mid-session: no reply, connection reset
            server.transport.abort()
            return "421 4.3.2 gone"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    def conn_id(self, session):
        key = id(session)
        if key not in self.conns:
            self.conns[key] = len(self.conns) + 1
        return self.conns[key]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if self.mode != "ok":
            return FAULTS[("rcpt", self.mode)]
        fault = FAULTS.get(("rcpt", local))
        if fault:
            return fault
        if local == "flaky" and address.lower() not in self.flaked:
            self.flaked.add(address.lower())
            return FAULTS[("rcpt", "tempfail")]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            fault = FAULTS.get(("data", rcpt.split("@", 1)[0].lower()))
            if fault:
                return fault
        n = next(self.seq)
        base = os.path.join(self.dir, "%04d" % n)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(data)
        auth = session.auth_data
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "conn": self.conn_id(session),
            "auth": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "tls": session.ssl is not None,
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        self.accepted[id(session)] = self.accepted.get(id(session), 0) + 1
        return "250 2.0.0 OK queued as %04d" % n


class Authenticator:
    """Accepts exactly one user name and password."""

    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user
              and auth_data.password == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--auth")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--drop-after", type=int, default=0)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    # AUTH without TLS is what the tests want; keep aiosmtpd quiet about it
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    handler = Handler(args.dir, args.drop_after)
    kw = {"decode_data": False, "hostname": "smtp.test"}
    if args.auth:
        user, password = args.auth.split(":", 1)
        kw.update(authenticator=Authenticator(user, password), auth_required=True,
                  auth_require_tls=False)
    if args.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        kw.update(tls_context=ctx, require_starttls=False)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, loop=loop, **kw), "127.0.0.1", args.port,
                           reuse_address=True))
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)

    pending = b""

    def on_stdin():
        nonlocal pending
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            loop.stop()
            return
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            words = line.decode("utf-8", "replace").split()
            if len(words) == 2 and words[0] == "mode" and words[1] in ("ok", "tempfail", "reject"):
                handler.mode = words[1]
                print("ok", flush=True)
            elif words:
                print("error: expected mode ok|tempfail|reject", flush=True)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
