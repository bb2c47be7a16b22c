#!/usr/bin/python3
# A small HTTP proxy in front of a plain-HTTP registry that sabotages blob downloads, for the
# pull fault tests: it cuts the connection or stalls after some bytes, or serves wrong bytes.
# Test tool only: listens on 127.0.0.1 (or --bind), forwards to one upstream, logs one line per request.
#
# Usage: fault_proxy.py --upstream HOST:PORT --mode kill|stall|corrupt [--after BYTES]
#                       [--times N] [--min-size BYTES] --port-file FILE --log FILE [--bind ADDR]
#   kill     close the connection after --after body bytes (the first --times blob responses)
#   stall    stop sending after --after bytes and hold the connection open for 120 s
#   corrupt  flip one byte in the middle of every blob body (length unchanged): a digest mismatch
#   busy     answer the first --times blob requests with 503 (then 429) and Retry-After: 1
#   none     forward faithfully (a plain-HTTP registry on a non-loopback address)
# Only blob responses (GET /v2/.../blobs/...) with a body of at least --min-size bytes are
# sabotaged, so configs pass. The chosen port is written to --port-file.
import argparse
import http.client
import http.server
import socketserver
import sys
import threading
import time

args = None
lock = threading.Lock()
sabotaged = 0


def log(line):
    with lock:
        with open(args.log, "a") as f:
            f.write(line + "\n")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self.forward(head=True)

    def do_GET(self):
        self.forward(head=False)

    def forward(self, head):
        global sabotaged
        if args.mode == "busy" and "/blobs/" in self.path and not head:
            with lock:
                busy = sabotaged < args.times
                status = 503 if sabotaged % 2 == 0 else 429
                if busy:
                    sabotaged += 1
            if busy:
                log("%s %s range=%s status=%d len=0 action=busy" % (self.command, self.path,
                    self.headers.get("Range", "-"), status))
                body = b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}'
                self.send_response(status)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        host, port = args.upstream.split(":")
        up = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        up.request(self.command, self.path, headers=headers)
        r = up.getresponse()
        body_len = int(r.getheader("Content-Length") or 0)
        is_blob = "/blobs/" in self.path and not head and r.status in (200, 206)
        act = None
        with lock:
            if args.mode != "none" and is_blob and body_len >= args.min_size and (
                    args.mode == "corrupt" or sabotaged < args.times):
                sabotaged += 1
                act = args.mode
        log("%s %s range=%s status=%d len=%d action=%s" % (self.command, self.path,
            self.headers.get("Range", "-"), r.status, body_len, act or "-"))
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding"):
                self.send_header(k, v)
        if act in ("kill", "stall"):
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            up.close()
            return
        sent = 0
        flipped = False
        while True:
            chunk = r.read(65536)
            if not chunk:
                break
            if act in ("kill", "stall") and sent + len(chunk) > args.after:
                chunk = chunk[: max(0, args.after - sent)]
                if chunk:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                if act == "stall":
                    time.sleep(120)
                self.close_connection = True
                up.close()
                return
            if act == "corrupt" and not flipped and sent + len(chunk) > body_len // 2:
                # One byte in the middle: the layer still decompresses (or not), only the
                # digest tells.
                at = max(0, body_len // 2 - sent)
                chunk = chunk[:at] + bytes([chunk[at] ^ 0x01]) + chunk[at + 1:]
                flipped = True
            self.wfile.write(chunk)
            sent += len(chunk)
        up.close()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--mode", choices=["kill", "stall", "corrupt", "busy", "none"], required=True)
    p.add_argument("--after", type=int, default=1 << 20)
    p.add_argument("--times", type=int, default=1)
    p.add_argument("--min-size", type=int, default=4096)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (tests of non-loopback hosts)")
    args = p.parse_args()
    srv = Server((args.bind, 0), Proxy)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
