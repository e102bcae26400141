"""The model provider double of bench/abuse.sh: a threaded HTTP server on 127.0.0.1 that
answers 200 to ANY method and path, and records every request it receives (one JSON object
a line, flushed at once) so that the abuse replay can tell exactly which paths keygate sent
upstream, and with which credential.

It is laid out like the real provider: keygate's settings file points
`dashscope_base_url` at `<double>/api/v1`, `openai_base_url` at
`<double>/compatible-mode/v1` and `anthropic_base_url` at `<double>/apps/anthropic`, so a
traversal reaches the same paths it would reach on the provider (`/api/v1/fine-tunes`,
`/compatible-mode/v1/batches`, `/api/admin/...`). Answering 200 everywhere plays a provider
that does have those endpoints: the replay sees what the attacker would get back.

Each record holds:
- `target`: the request target exactly as it came on the request line (path and query,
  nothing decoded or normalised);
- `method`, `monotonic` (time.monotonic() on arrival, comparable with the driver's clock);
- `spelling`: the `X-Abuse-Spelling` header the driver put on each traversal attempt (keygate
  forwards ordinary headers), or the marker found in the body, else null;
- `provider_credential`: whether the request carried the provider's own key
  (`Authorization: Bearer <it>` or `x-api-key: <it>`), which the provider would honour.

Run by bench/abuse.sh:
    python3 bench/abuse_upstream.py --port-file PATH --record-file PATH
with the provider's key in the environment variable ABUSE_UPSTREAM_KEY.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The base paths keygate is configured with (abuse.sh writes them into its settings file).
NATIVE_BASE_PATH = "/api/v1"
OPENAI_BASE_PATH = "/compatible-mode/v1"
ANTHROPIC_BASE_PATH = "/apps/anthropic"
# The header and the body marker that name a traversal attempt.
SPELLING_HEADER = "x-abuse-spelling"
SPELLING_BODY_MARKER = re.compile(rb"abuse-spelling-(\d+)")
PROVIDER_KEY_VARIABLE = "ABUSE_UPSTREAM_KEY"


class RecordingRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "RecordingUpstreamServer"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def answer_any_request(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        # The request line as sent: `METHOD TARGET HTTP/1.1`. http.server's `self.path` is the
        # same target except that it folds a leading `//`, so read it from the line itself.
        request_line_parts = self.requestline.split(" ")
        target = request_line_parts[1] if len(request_line_parts) >= 3 else self.path
        spelling = self.headers.get(SPELLING_HEADER)
        if spelling is None:
            found = SPELLING_BODY_MARKER.search(body)
            spelling = found.group(1).decode() if found else None
        provider_key = self.server.provider_key
        authorization = self.headers.get("authorization") or ""
        record = {
            "monotonic": arrived,
            "method": self.command,
            "target": target,
            "spelling": spelling,
            "provider_credential": bool(provider_key)
            and (authorization == f"Bearer {provider_key}" or self.headers.get("x-api-key") == provider_key),
        }
        self.server.write_record(record)
        payload = json.dumps({
            "id": "chatcmpl-abuse-double",
            "object": "chat.completion",
            "model": "abuse-double",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "[abuse double] ok"}, "finish_reason": "stop"}],
            "output": {"text": "[abuse double] ok"},
            "content": [{"type": "text", "text": "[abuse double] ok"}],
            "path_received": target,
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = answer_any_request


class RecordingUpstreamServer(ThreadingHTTPServer):
    daemon_threads = True
    # keygate keeps a pool of connections; the probes and the traversal phase are few.
    request_queue_size = 128

    def __init__(self, record_path: str, provider_key: str):
        super().__init__(("127.0.0.1", 0), RecordingRequestHandler)
        self.provider_key = provider_key
        self.record_file = open(record_path, "a", encoding="utf-8")
        self.record_lock = threading.Lock()

    def write_record(self, record: dict) -> None:
        with self.record_lock:
            self.record_file.write(json.dumps(record) + "\n")
            self.record_file.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", required=True, help="written with the bound port once listening")
    parser.add_argument("--record-file", required=True, help="every request received, one JSON object a line")
    arguments = parser.parse_args()
    server = RecordingUpstreamServer(arguments.record_file, os.environ.get(PROVIDER_KEY_VARIABLE, ""))
    temporary_port_file = arguments.port_file + ".tmp"
    with open(temporary_port_file, "w", encoding="utf-8") as port_file:
        port_file.write(str(server.server_address[1]))
    os.replace(temporary_port_file, arguments.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
