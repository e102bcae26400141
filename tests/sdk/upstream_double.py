"""An upstream model provider test double for the gateway tests: a small threaded HTTP server
on 127.0.0.1 (random port) that speaks the three protocols keygate forwards, and records the
method, path, headers and body of every request it receives, so that tests can check what
keygate sent upstream (its own credential, never the client's key).

Paths it answers (keygate appends "the rest of the path" to each configured base URL):
- OpenAI-compatible, base `/openai/v1`: `POST /chat/completions` (JSON, or SSE in several
  `data:` chunks ending with `data: [DONE]` when `"stream": true`), `POST /embeddings`, and
  the Responses API: `POST /responses` (JSON, or its named SSE events with usage in
  `response.completed`), `GET` and `DELETE /responses/{id}`, `GET /responses/{id}/input_items`
  (the double remembers what it made).
- DashScope native, base `/dashscope/api/v1`: `POST /services/aigc/text-generation/generation`
  (JSON, or SSE in DashScope's own format `id:N\\nevent:result\\n:HTTP_STATUS/200\\ndata:{json}`
  when `X-DashScope-SSE: enable` or `Accept: text/event-stream`, honouring
  `parameters.incremental_output` and `parameters.result_format`), `POST
  /services/embeddings/text-embedding/text-embedding`, `POST /apps/{app_id}/completion`, and
  asynchronous image tasks: `POST /services/aigc/text2image/image-synthesis` with
  `X-DashScope-Async: enable` answers a PENDING task, `GET /tasks/{task_id}` its success.
- Anthropic-compatible, base `/anthropic`: `POST /v1/messages` (JSON, or the Anthropic SSE
  event sequence when `"stream": true`) and `POST /v1/messages/count_tokens` (the words of
  the messages plus `COUNT_TOKENS_OFFSET`, so a test can tell its count from the demo's).
- Anything under `/plain/` (used behind nginx): a JSON echo of the path.

Every reply text starts with `[upstream double]` so that a test can tell it from the demo
upstream's `[keygate demo]`. Given an `expected_credential`, the double answers 401 to any
request that does not carry it (`x-api-key` on the Anthropic path, `Authorization: Bearer`
elsewhere), so that a call keygate forwarded with the wrong credential fails in the SDK too;
the tests also assert on the recorded headers (`assert_forwarded_with_upstream_credential_only`),
which gives the better failure message and checks that the client's key is absent.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY_PREFIX = "[upstream double] "
OPENAI_BASE_PATH = "/openai/v1"
DASHSCOPE_BASE_PATH = "/dashscope/api/v1"
ANTHROPIC_BASE_PATH = "/anthropic"
PLAIN_BASE_PATH = "/plain"
# Pause between streamed chunks, so that the chunks leave as separate writes and a test can
# tell a pass-through stream from a buffered one.
PAUSE_BETWEEN_STREAMED_CHUNKS_SECONDS = 0.05
# The pause before the last chunk when a request asks for a slow stream
# (`X-Test-Slow-Stream: 1`): long enough to measure, short enough for a test suite.
SLOW_STREAM_PAUSE_BEFORE_LAST_CHUNK_SECONDS = 1.5
# Added to the double's token counts: no demo count is this large for a short request.
COUNT_TOKENS_OFFSET = 1000


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    # Header names lower-cased; a name sent twice keeps every value, joined by ", ".
    headers: dict[str, str]
    body: bytes

    def json_body(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def mentions(self, marker: str) -> bool:
        return marker.encode() in self.body or marker in self.path


def _text_of_content(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _last_user_text(messages) -> str:
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of_content(message.get("content"))
    return ""


def reply_text_for(heard: str) -> str:
    """The double's whole reply to a user text (tests rebuild it to compare)."""
    return f"{REPLY_PREFIX}heard: {heard}"


def split_into_chunks(text: str, n_chunks: int = 4) -> list[str]:
    """Splits a reply into n non-empty pieces that concatenate back to it."""
    n_chunks = max(1, min(n_chunks, len(text)))
    size = -(-len(text) // n_chunks)
    return [text[start:start + size] for start in range(0, len(text), size)]


def _embedding_of(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(byte / 255.0, 6) for byte in digest[:4]]


class _DoubleRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_DoubleHttpServer"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    # ---- plumbing ----------------------------------------------------------------------

    def _record(self) -> RecordedRequest:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        recorded = RecordedRequest(self.command, self.path, headers, body)
        self.server.double.add_record(recorded)
        return recorded

    def _send_json(self, status: int, document) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-upstream-double", "1")
        self.end_headers()
        self.wfile.write(payload)

    def _send_event_stream(self, events: list[str], slow: bool) -> None:
        """Writes SSE events as separate chunks of a chunked response, flushing each."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-upstream-double", "1")
        self.end_headers()
        for index, event in enumerate(events):
            if index > 0:
                is_last = index == len(events) - 1
                time.sleep(SLOW_STREAM_PAUSE_BEFORE_LAST_CHUNK_SECONDS if slow and is_last else PAUSE_BETWEEN_STREAMED_CHUNKS_SECONDS)
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _refused_for_a_wrong_credential(self, recorded: RecordedRequest) -> bool:
        """Answers 401 (and returns True) when the request lacks the expected credential."""
        expected = self.server.double.expected_credential
        if expected is None:
            return False
        if recorded.path.startswith(ANTHROPIC_BASE_PATH + "/"):
            presented_ok = recorded.headers.get("x-api-key") == expected
        else:
            presented_ok = recorded.headers.get("authorization") == f"Bearer {expected}"
        if presented_ok:
            return False
        self._send_json(401, {
            "type": "error", "code": "InvalidApiKey", "request_id": str(uuid.uuid4()),
            "error": {"type": "authentication_error", "code": "invalid_api_key",
                      "message": "the upstream double did not receive the upstream credential"},
            "message": "the upstream double did not receive the upstream credential",
        })
        return True

    def do_GET(self):  # noqa: N802 - http.server's name
        recorded = self._record()
        if self._refused_for_a_wrong_credential(recorded):
            return
        path = recorded.path.split("?", 1)[0]
        if path.startswith(OPENAI_BASE_PATH + "/responses/"):
            self._named_response(path, deleting=False)
            return
        if path.startswith(DASHSCOPE_BASE_PATH + "/tasks/"):
            task_id = path[len(DASHSCOPE_BASE_PATH + "/tasks/"):]
            task = self.server.double.tasks.get(task_id)
            if task is None:
                self._send_json(200, {"request_id": str(uuid.uuid4()), "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
            else:
                self._send_json(200, {"request_id": str(uuid.uuid4()), "output": task, "usage": {"image_count": 1}})
            return
        self._send_json(200, {"object": "upstream-double", "method": "GET", "path": recorded.path})

    def do_DELETE(self):  # noqa: N802 - http.server's name
        recorded = self._record()
        if self._refused_for_a_wrong_credential(recorded):
            return
        self._named_response(recorded.path.split("?", 1)[0], deleting=True)

    def _named_response(self, path: str, deleting: bool) -> None:
        rest = path[len(OPENAI_BASE_PATH + "/responses/"):].split("/")
        made = self.server.double.responses.get(rest[0])
        if made is None:
            self._send_json(404, {"error": {"message": f"no response {rest[0]}", "type": "invalid_request_error", "code": "not_found"}})
        elif deleting:
            del self.server.double.responses[rest[0]]
            self._send_json(200, {"id": rest[0], "object": "response", "deleted": True})
        elif rest[1:] == ["input_items"]:
            items = made["input_items"]
            self._send_json(200, {"object": "list", "data": items, "has_more": False,
                                  "first_id": items[0]["id"] if items else None, "last_id": items[-1]["id"] if items else None})
        else:
            self._send_json(200, made["response"])

    def do_POST(self):  # noqa: N802 - http.server's name
        recorded = self._record()
        if self._refused_for_a_wrong_credential(recorded):
            return
        request = recorded.json_body()
        path = recorded.path.split("?", 1)[0]
        slow = recorded.headers.get("x-test-slow-stream") == "1"
        if path.startswith(PLAIN_BASE_PATH + "/"):
            self._send_json(200, {"object": "upstream-double", "method": "POST", "path": recorded.path})
        elif not isinstance(request, dict):
            self._send_json(400, {"error": {"message": "the double wants a JSON object", "type": "invalid_request_error"}})
        elif path == OPENAI_BASE_PATH + "/chat/completions":
            self._openai_chat(request, slow)
        elif path == OPENAI_BASE_PATH + "/embeddings":
            self._openai_embeddings(request)
        elif path == OPENAI_BASE_PATH + "/responses":
            self._openai_responses(request, slow)
        elif path == DASHSCOPE_BASE_PATH + "/services/aigc/text-generation/generation":
            self._dashscope_generation(request, recorded, slow, application=False)
        elif path == DASHSCOPE_BASE_PATH + "/services/aigc/text2image/image-synthesis":
            if recorded.headers.get("x-dashscope-async") != "enable":
                self._send_json(400, {"code": "InvalidParameter", "message": "the double serves image synthesis as a task only"})
                return
            task_id = str(uuid.uuid4())
            prompt = (request.get("input") or {}).get("prompt", "")
            self.server.double.tasks[task_id] = {"task_id": task_id, "task_status": "SUCCEEDED",
                                                 "results": [{"url": "https://upstream-double.invalid/image.png", "orig_prompt": prompt}]}
            self._send_json(200, {"request_id": str(uuid.uuid4()), "output": {"task_id": task_id, "task_status": "PENDING"}})
        elif path == DASHSCOPE_BASE_PATH + "/services/embeddings/text-embedding/text-embedding":
            self._dashscope_embedding(request)
        elif path.startswith(DASHSCOPE_BASE_PATH + "/apps/") and path.endswith("/completion"):
            self._dashscope_generation(request, recorded, slow, application=True)
        elif path == ANTHROPIC_BASE_PATH + "/v1/messages/count_tokens":
            words = sum(len(_text_of_content(message.get("content")).split()) for message in request.get("messages") or [])
            self._send_json(200, {"input_tokens": COUNT_TOKENS_OFFSET + words})
        elif path == ANTHROPIC_BASE_PATH + "/v1/messages":
            self._anthropic_messages(request, slow)
        else:
            self._send_json(404, {"error": {"message": f"the double has no {path}", "type": "not_found"}})

    # ---- OpenAI ------------------------------------------------------------------------

    def _openai_chat(self, request: dict, slow: bool) -> None:
        model = request.get("model", "")
        reply = reply_text_for(_last_user_text(request.get("messages")))
        completion_id = "chatcmpl-double-" + uuid.uuid4().hex[:12]
        created = int(time.time())
        if request.get("stream"):
            events = []
            for index, piece in enumerate(split_into_chunks(reply)):
                delta = {"content": piece}
                if index == 0:
                    delta["role"] = "assistant"
                chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                events.append(f"data: {json.dumps(chunk)}\n\n")
            last = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            events.append(f"data: {json.dumps(last)}\n\n")
            events.append("data: [DONE]\n\n")
            self._send_event_stream(events, slow)
            return
        self._send_json(200, {
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        })

    def _openai_embeddings(self, request: dict) -> None:
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        self._send_json(200, {
            "object": "list", "model": request.get("model", ""),
            "data": [{"object": "embedding", "index": index, "embedding": _embedding_of(str(text))} for index, text in enumerate(texts)],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        })

    # ---- DashScope native ----------------------------------------------------------------

    def _dashscope_generation(self, request: dict, recorded: RecordedRequest, slow: bool, application: bool) -> None:
        given = request.get("input") or {}
        heard = given.get("prompt") or _last_user_text(given.get("messages"))
        reply = reply_text_for(heard)
        parameters = request.get("parameters") or {}
        as_message = parameters.get("result_format") == "message" and not application
        incremental = bool(parameters.get("incremental_output"))
        request_id = str(uuid.uuid4())
        usage = {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}

        def output_for(text: str, finish_reason: str) -> dict:
            if as_message:
                return {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}]}
            return {"text": text, "finish_reason": finish_reason}

        wants_stream = (
            recorded.headers.get("x-dashscope-sse", "").lower() == "enable"
            or "text/event-stream" in recorded.headers.get("accept", "")
        )
        if wants_stream:
            pieces = split_into_chunks(reply)
            events = []
            so_far = ""
            for index, piece in enumerate(pieces):
                so_far += piece
                finish_reason = "stop" if index == len(pieces) - 1 else "null"
                data = {"output": output_for(piece if incremental else so_far, finish_reason), "usage": usage, "request_id": request_id}
                events.append(f"id:{index + 1}\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(data)}\n\n")
            self._send_event_stream(events, slow)
            return
        self._send_json(200, {"output": output_for(reply, "stop"), "usage": usage, "request_id": request_id})

    def _dashscope_embedding(self, request: dict) -> None:
        texts = (request.get("input") or {}).get("texts") or []
        texts = [texts] if isinstance(texts, str) else list(texts)
        self._send_json(200, {
            "output": {"embeddings": [{"text_index": index, "embedding": _embedding_of(str(text))} for index, text in enumerate(texts)]},
            "usage": {"total_tokens": len(texts)},
            "request_id": str(uuid.uuid4()),
        })

    # ---- OpenAI Responses ----------------------------------------------------------------

    def _openai_responses(self, request: dict, slow: bool) -> None:
        raw_input = request.get("input")
        items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw_input}]}] \
            if isinstance(raw_input, str) else list(raw_input or [])
        for item in items:
            item.setdefault("id", "msg_in_" + uuid.uuid4().hex[:8])
        heard = _last_user_text([item for item in items if item.get("role")])
        reply = reply_text_for(heard)
        response_id, message_id = "resp_double_" + uuid.uuid4().hex[:12], "msg_double_" + uuid.uuid4().hex[:12]
        usage = {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 1},
                 "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 8}

        def response(status: str, output: list, with_usage: bool) -> dict:
            return {"id": response_id, "object": "response", "created_at": int(time.time()), "status": status,
                    "model": request.get("model", ""), "output": output, "usage": usage if with_usage else None,
                    "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
                    "previous_response_id": request.get("previous_response_id")}

        message = {"type": "message", "id": message_id, "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": reply, "annotations": []}]}
        completed = response("completed", [message], True)
        self.server.double.responses[response_id] = {"response": completed, "input_items": items}
        if not request.get("stream"):
            self._send_json(200, completed)
            return
        events = [("response.created", {"response": response("in_progress", [], False)}),
                  ("response.output_item.added", {"output_index": 0, "item": {**message, "status": "in_progress", "content": []}}),
                  ("response.content_part.added", {"item_id": message_id, "output_index": 0, "content_index": 0,
                                                   "part": {"type": "output_text", "text": "", "annotations": []}})]
        for piece in split_into_chunks(reply):
            events.append(("response.output_text.delta", {"item_id": message_id, "output_index": 0, "content_index": 0,
                                                          "delta": piece, "logprobs": []}))
        events += [("response.output_text.done", {"item_id": message_id, "output_index": 0, "content_index": 0, "text": reply, "logprobs": []}),
                   ("response.output_item.done", {"output_index": 0, "item": message}),
                   ("response.completed", {"response": completed})]
        self._send_event_stream([f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': index, **data})}\n\n"
                                 for index, (name, data) in enumerate(events)], slow)

    # ---- Anthropic -----------------------------------------------------------------------

    def _anthropic_messages(self, request: dict, slow: bool) -> None:
        model = request.get("model", "")
        reply = reply_text_for(_last_user_text(request.get("messages")))
        message_id = "msg_double_" + uuid.uuid4().hex[:12]
        if request.get("stream"):
            def event(name: str, data: dict) -> str:
                return f"event: {name}\ndata: {json.dumps(data)}\n\n"

            events = [
                event("message_start", {"type": "message_start", "message": {
                    "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 0}}}),
                event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ]
            for piece in split_into_chunks(reply):
                events.append(event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}))
            events.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            events.append(event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}}))
            events.append(event("message_stop", {"type": "message_stop"}))
            self._send_event_stream(events, slow)
            return
        self._send_json(200, {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": reply}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 5},
        })


class _DoubleHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, double: "UpstreamDouble"):
        super().__init__(("127.0.0.1", 0), _DoubleRequestHandler)
        self.double = double


class UpstreamDouble:
    """Start with `start()`; `records_mentioning(marker)` returns the requests whose body
    (or path) contains a marker the test put into its own request."""

    def __init__(self, expected_credential: str | None = None):
        self.expected_credential = expected_credential
        # Responses API objects and DashScope tasks the double made, by id.
        self.responses: dict[str, dict] = {}
        self.tasks: dict[str, dict] = {}
        self._records: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: _DoubleHttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = _DoubleHttpServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="upstream-double", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the double is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_record(self, recorded: RecordedRequest) -> None:
        with self._lock:
            self._records.append(recorded)

    def all_records(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def records_mentioning(self, marker: str) -> list[RecordedRequest]:
        return [recorded for recorded in self.all_records() if recorded.mentions(marker)]


def assert_forwarded_with_upstream_credential_only(forwarded: list[RecordedRequest], upstream_secret: str,
                                                   client_key: str, protocol: str) -> None:
    """Exactly one request reached the double for this call; it carried keygate's upstream
    credential (`Authorization: Bearer` for the OpenAI and DashScope protocols, `x-api-key`
    for Anthropic) and no header held the client's key, whole or its body after the prefix.
    Failure messages never print a secret."""
    assert len(forwarded) == 1, f"expected one forwarded request, the double saw {len(forwarded)}"
    headers = forwarded[0].headers
    if protocol == "anthropic":
        assert headers.get("x-api-key") == upstream_secret, "x-api-key is not the upstream credential"
        assert "authorization" not in headers, "an Authorization header reached an x-api-key upstream"
    else:
        assert headers.get("authorization") == f"Bearer {upstream_secret}", "Authorization is not the upstream credential"
        assert "x-api-key" not in headers, "an x-api-key header reached a bearer upstream"
    key_body = client_key.split("-")[-1]
    leaking = sorted(name for name, value in headers.items() if client_key in value or key_body in value)
    assert not leaking, f"the client's key reached the upstream in headers {leaking}"
    assert client_key.encode() not in forwarded[0].body, "the client's key reached the upstream in the body"
