"""A tiny local OpenAI-compatible server for tests: fails the first requests, then answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    """Answers /v1/chat/completions; the first ``fail`` requests get ``fail_status`` (or a dropped connection)."""

    def __init__(self, fail: int = 2, fail_status: int = 503, n_per_response: int | None = None):
        self.fail, self.fail_status, self.n_per_response = fail, fail_status, n_per_response
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if len(server.requests) <= server.fail:
                    if server.fail_status == 0:  # drop the connection
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self.send_response(server.fail_status)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                n = body.get("n", 1) if server.n_per_response is None else min(server.n_per_response, body.get("n", 1))
                user = body["messages"][-1]["content"]
                choices = [{"index": i, "message": {"role": "assistant", "content": f"  profile {i} of {user[:6]} "}}
                           for i in range(n)]
                payload = json.dumps({"choices": choices}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
