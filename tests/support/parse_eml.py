#!/usr/bin/python3
"""parse_eml.py - read a message back with Python's own MIME parser.

Usage: parse_eml.py FILE. Prints one JSON object: the decoded Subject, From,
To, Message-ID, Date, List-Unsubscribe(-Post), Content-Type, the raw header
names in order, the longest raw line, whether any bare LF or CR occurs, and
the leaf parts (content type, charset, transfer encoding, decoded text). The
email tests compare this with what they sent, so the parser under test is
never the one that checks it.
"""
import email
import email.policy
import json
import sys


def main():
    raw = open(sys.argv[1], "rb").read()
    lines = raw.split(b"\r\n")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append({
            "type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "cte": part.get("Content-Transfer-Encoding"),
            "text": part.get_content().replace("\r\n", "\n"),
        })
    header_end = raw.find(b"\r\n\r\n")
    head = raw[:header_end].decode("ascii", "replace")
    out = {
        "subject": str(msg.get("Subject", "")),
        "from": str(msg.get("From", "")),
        "to": str(msg.get("To", "")),
        "to_addr": msg["To"].addresses[0].addr_spec if msg["To"] else "",
        "to_name": msg["To"].addresses[0].display_name if msg["To"] else "",
        "message_id": str(msg.get("Message-ID", "")),
        "date": str(msg.get("Date", "")),
        "list_unsubscribe": msg.get("List-Unsubscribe"),
        "list_unsubscribe_post": msg.get("List-Unsubscribe-Post"),
        "content_type": msg.get_content_type(),
        "mime_version": msg.get("MIME-Version"),
        "header_names": [k for k in msg.keys()],
        "header_max_line": max(len(l) for l in head.split("\r\n")),
        "max_line": max(len(l) for l in lines),
        "bare_lf": b"\n" in raw.replace(b"\r\n", b""),
        "bare_cr": b"\r" in raw.replace(b"\r\n", b""),
        "eight_bit": any(b > 127 for b in raw),
        "defects": [str(d) for d in msg.defects],
        "parts": parts,
    }
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
