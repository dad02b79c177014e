#!/usr/bin/env python3
"""qmp.py SOCKET COMMAND [ARGUMENTS-JSON]: one QMP command, print its 'return'.

A test helper for lab suites (stdlib only). Retries the connect for up to
90 s because QEMU creates the socket after it starts, slowly under nested TCG.
"""

import json
import socket
import sys
import time


def connect(path, wait=90.0):
    deadline = time.monotonic() + wait
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    s = connect(argv[1])
    s.settimeout(120)
    f = s.makefile("rwb")
    greeting = json.loads(f.readline())
    if "QMP" not in greeting:
        print("qmp.py: no QMP greeting: %r" % greeting, file=sys.stderr)
        return 1
    cmds = [{"execute": "qmp_capabilities", "id": 1},
            {"execute": argv[2], "id": 2}]
    if len(argv) == 4:
        cmds[1]["arguments"] = json.loads(argv[3])
    for cmd in cmds:
        f.write(json.dumps(cmd).encode() + b"\r\n")
        f.flush()
        while True:
            msg = json.loads(f.readline())
            if msg.get("id") == cmd["id"]:
                break
        if "error" in msg:
            print("qmp.py: %s: %s" % (cmd["execute"], msg["error"].get("desc")),
                  file=sys.stderr)
            return 1
    print(json.dumps(msg["return"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
