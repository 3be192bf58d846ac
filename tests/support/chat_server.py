"""A real HTTP server on 127.0.0.1 speaking OpenAI's chat-completions protocol, for backend tests.

It records every request (headers and JSON body) and answers from a script: a list
of (status, reply text, extra headers) entries consumed in order, the last repeated.
A request for ``n`` > 1 answers gets the first ``n`` of ``choices`` when they are set.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, str, dict]] = [(200, "ok [1]", {})]
        self.delay = 0.0
        self.choices: list[str] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, text, headers = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                time.sleep(server.delay)
                if status != 200:
                    self._send(status, {"error": {"message": "busy"}}, headers)
                elif body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for word in text.split(" "):
                        chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                else:
                    texts = (server.choices or [text])[: body.get("n", 1)]
                    choices = [
                        {"index": i, "message": {"role": "assistant", "content": reply}}
                        for i, reply in enumerate(texts)
                    ]
                    self._send(200, {"choices": choices}, {})

            def _send(self, status: int, payload: dict, headers: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
