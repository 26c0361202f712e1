#!/usr/bin/env python3
"""A real RFC 3161 timestamp authority on loopback for tests and benchmarks: each POST (a DER
TimeStampReq, application/timestamp-query) is answered by `openssl ts -reply` with the configuration in
the current directory (ca.cnf, section tsa_config). Prints the bound port on its first line.

usage: loopback-tsa.py [PORT]   (0 or nothing: any free port)
"""
import http.server
import os
import subprocess
import sys
import tempfile


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        if length <= 0 or length > 65536:
            self.send_response(400)
            self.end_headers()
            return
        body = self.rfile.read(length)
        with tempfile.TemporaryDirectory() as d:
            query, reply = os.path.join(d, "q.tsq"), os.path.join(d, "r.tsr")
            with open(query, "wb") as f:
                f.write(body)
            done = subprocess.run(
                ["openssl", "ts", "-reply", "-config", "ca.cnf", "-section", "tsa_config", "-queryfile", query, "-out", reply],
                capture_output=True)
            if done.returncode != 0:
                self.send_response(400)
                self.end_headers()
                return
            with open(reply, "rb") as f:
                data = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
