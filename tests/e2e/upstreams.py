"""Upstream servers for the proxy tests, each on its own thread on a free 127.0.0.1 port.

Echo answers every request with a JSON description of what it received (method, path as
sent on the request line, headers in order, body) and counts requests and connections.
Behaviour per request is chosen by the path:
  /sleep/<ms>/...        wait before answering
  /status/<code>/...     answer with that status
  /sse/<n>/<gap_ms>      text/event-stream, n events, gap_ms apart, chunked
  /chunked/...           the JSON answer in chunked encoding
  /close-mid-body        Content-Length 1000, 10 bytes, then close
  /garbage               bytes that are not HTTP
  /close-before          close the connection without answering
  /http10                an HTTP/1.0 close-delimited answer
  /ws (with Upgrade: websocket)  101 with Sec-WebSocket-Accept, then echoes raw bytes
"""
import base64
import hashlib
import json
import socket
import socketserver
import ssl
import threading
import time


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server.owner
        with srv.lock:
            srv.connections += 1
        sock = self.request
        sock.settimeout(30)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    chunk = sock.recv(65536)
                except (OSError, socket.timeout):
                    return
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = []
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.append([name, value.strip()])
            hmap = {k.lower(): v for k, v in headers}
            body = b""
            if "content-length" in hmap:
                n = int(hmap["content-length"])
                while len(buf) < n:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:n], buf[n:]
            with srv.lock:
                srv.requests.append({"method": method, "target": target, "headers": headers,
                                     "body": body})
            if not self.respond(sock, method, target, version, headers, body):
                return

    def respond(self, sock, method, target, version, headers, body):
        path = target.split("?", 1)[0]
        parts = path.strip("/").split("/")
        keys = ("sleep", "status", "sse", "chunked", "close-mid-body", "garbage",
                "close-before", "http10", "ws")
        for i, p in enumerate(parts):
            if p in keys:
                parts = parts[i:]
                break
        status = 200
        if parts[0] == "sleep" and len(parts) > 1:
            time.sleep(int(parts[1]) / 1000.0)
        if parts[0] == "status" and len(parts) > 1:
            status = int(parts[1])
        if parts[0] == "close-before":
            return False
        hmap = {k.lower(): v for k, v in headers}
        if parts[0] == "ws" and hmap.get("upgrade", "").lower() == "websocket":
            acc = base64.b64encode(hashlib.sha1(
                (hmap.get("sec-websocket-key", "") +
                 "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc)
                         .encode())
            sock.settimeout(10)
            while True:
                try:
                    d = sock.recv(65536)
                except (OSError, socket.timeout):
                    return False
                if not d:
                    return False
                sock.sendall(b"echo:" + d)
        if parts[0] == "garbage":
            sock.sendall(b"this is not http at all\r\n\r\n")
            return False
        if parts[0] == "close-mid-body":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
            time.sleep(0.1)
            return False
        if parts[0] == "sse":
            n, gap = int(parts[1]), int(parts[2])
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(n):
                ev = ("data: {\"token\": %d, \"t\": %.6f}\n\n" % (i, time.time())).encode()
                sock.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
                if i + 1 < n:
                    time.sleep(gap / 1000.0)
            sock.sendall(b"0\r\n\r\n")
            return True
        payload = json.dumps({"method": method, "target": target, "headers": headers,
                              "body": body.decode("latin-1")}).encode()
        if parts[0] == "http10":
            sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + payload)
            return False
        reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found",
                  500: "Internal Server Error"}.get(status, "Whatever")
        head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-Upstream: echo\r\n" % (
            status, reason)
        if status in (204, 304):
            sock.sendall(head.encode() + b"\r\n")
            return True
        if parts[0] == "chunked":
            mid = len(payload) // 2
            out = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n"
            for piece in (payload[:mid], payload[mid:]):
                out += b"%x\r\n%s\r\n" % (len(piece), piece)
            sock.sendall(out + b"0\r\n\r\n")
            return True
        head += "Content-Length: %d\r\n\r\n" % len(payload)
        if method == "HEAD":
            sock.sendall(head.encode())
        else:
            sock.sendall(head.encode() + payload)
        return True


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, owner, tls_ctx, port=0):
        self.owner = owner
        self.tls_ctx = tls_ctx
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls_ctx:
            sock = self.tls_ctx.wrap_socket(sock, server_side=True)
        return sock, addr

    def handle_error(self, request, client_address):
        pass


class Upstream:
    def __init__(self, tls_ctx=None, port=0):
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self._srv = _Server(self, tls_ctx, port)
        self.port = self._srv.server_address[1]
        self._t = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.1},
                                   daemon=True)
        self._t.start()

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.connections = 0

    def close(self):
        self._srv.shutdown()
        self._srv.server_close()
