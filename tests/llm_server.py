"""A tiny OpenAI-compatible chat server on loopback for the companion's tests.

``mode`` picks how it answers: good, slow, 500-then-ok, 429-then-ok, 500, 400, garbage, wrong-shape,
empty-content, huge, huge-undeclared, redirect. It records every request body and its headers.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = "오늘 발표 정말 수고 많았어!"


class LLMServer:
    def __init__(self) -> None:
        self.mode = "good"
        self.slow_s = 1.5
        self.reply = REPLY
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def do_POST(self) -> None:
                server.calls += 1
                length = int(self.headers.get("Content-Length", "0"))
                server.requests.append(json.loads(self.rfile.read(length)))
                server.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                good = json.dumps({"choices": [{"message": {"role": "assistant", "content": server.reply}}]}).encode()
                mode = server.mode
                if mode == "good":
                    self._send(200, good)
                elif mode == "slow":
                    time.sleep(server.slow_s)
                    self._send(200, good)
                elif mode == "500-then-ok":
                    self._send(500 if server.calls == 1 else 200, b"{}" if server.calls == 1 else good)
                elif mode == "429-then-ok":
                    self._send(429 if server.calls == 1 else 200, b"{}" if server.calls == 1 else good)
                elif mode == "500":
                    self._send(500, b'{"error": "boom"}')
                elif mode == "400":
                    self._send(400, b'{"error": "bad model"}')
                elif mode == "garbage":
                    self._send(200, b"<html>not json at all")
                elif mode == "wrong-shape":
                    self._send(200, json.dumps({"choices": [{"text": "hi"}]}).encode())
                elif mode == "empty-content":
                    self._send(200, json.dumps({"choices": [{"message": {"content": "  "}}]}).encode())
                elif mode == "huge":  # declared in Content-Length
                    self._send(200, b" " * 2_000_000)
                elif mode == "huge-undeclared":  # no Content-Length: the reply ends when the connection closes
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        for _ in range(40):
                            self.wfile.write(b" " * 50_000)
                elif mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
