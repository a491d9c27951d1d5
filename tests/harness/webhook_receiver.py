"""A real HTTP receiver for notification tests: records every POST, answers as scripted.

`WebhookReceiver()` serves on 127.0.0.1 (a free port) from a thread (http.server), so an operator
running as a local process reaches it. Per path: `script(path, 503, 503)` answers the next POSTs
with those codes (then 200; `retry_after=N` adds that header to them); `hold(path)` keeps the next POST's answer back until `release(path)`
(the test can kill the operator while a POST waits for its answer).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self):
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self):
        self.posts: list[Received] = []
        self.scripts: dict[str, list[int]] = {}
        self.holds: dict[str, threading.Event] = {}  # path -> gate for its next POST
        self.gates: dict[str, threading.Event] = {}
        self.retry_after: dict[str, int] = {}  # path -> Retry-After seconds sent with its non-2xx answers
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    codes = receiver.scripts.get(self.path) or []
                    status = codes.pop(0) if codes else 200
                    hold = receiver.holds.pop(self.path, None)
                    receiver.posts.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                   body, status))
                if hold is not None:
                    hold.wait(60)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    if status >= 300 and self.path in receiver.retry_after:
                        self.send_header("Retry-After", str(receiver.retry_after[self.path]))
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"try later")
                except OSError:
                    pass  # the sender is gone (killed while it waited)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def script(self, path: str, *codes: int, retry_after: int | None = None) -> None:
        with self.lock:
            self.scripts[path] = list(codes)
            if retry_after is not None:
                self.retry_after[path] = retry_after

    def hold(self, path: str) -> None:
        with self.lock:
            self.holds[path] = self.gates[path] = threading.Event()

    def release(self, path: str) -> None:
        self.gates[path].set()

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [p for p in self.posts if p.path == path]

    def wait_posts(self, path: str, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise TimeoutError(f"{path}: {len(self.at(path))} POSTs within {timeout}s, expected {count}")

    def close(self) -> None:
        for event in list(self.gates.values()):
            event.set()
        self.server.shutdown()
        self.server.server_close()
