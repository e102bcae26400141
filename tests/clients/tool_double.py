"""An upstream provider test double that runs a tool loop, for the real-clients suite: a
small threaded HTTP server on 127.0.0.1 (random port), configured in keygate's settings as
an `[[upstreams]]` entry, standing for a remote provider that speaks the Anthropic Messages
API, OpenAI's Chat Completions and OpenAI's Responses API, streamed (SSE) or not, always
with usage.

A test plans a tool call with `plan_tool_call(trigger, tool_name, arguments)`. A request
whose user text contains the trigger, which offers a tool of that name and carries no tool
result yet, is answered with a call of that tool; a request that carries a tool result is
answered with text that quotes the result (`the tool said: ...`), so that a client's final
answer shows the tool really ran, its output went back through keygate, and the model's
answer came back through keygate. Any other request (a client's side calls: titles, topic
checks, the real prompt before the tool is offered) gets a short text answer.

Paths (keygate appends the rest of the client's path to the base URLs of the settings):
- base `/anthropic`: `POST /v1/messages`;
- base `/openai/v1`: `POST /chat/completions` and `POST /responses`.
Anything else is answered 404 in JSON and recorded, so that a test can see what reached it.

Every request is recorded (method, path, headers, body), and every request without the
`expected_credential` (`x-api-key` on the Anthropic path, `Authorization: Bearer`
elsewhere) is answered 401, so that a call keygate forwarded with the client's key fails.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY_PREFIX = "[tool double] "
ANTHROPIC_BASE_PATH = "/anthropic"
OPENAI_BASE_PATH = "/openai/v1"
# The usage the double reports for every answer, so that a test can find it in keygate's
# accounting: distinctive numbers, not ones a client or keygate would make up.
INPUT_TOKENS = 211
OUTPUT_TOKENS = 17
# Between streamed events, so that they leave as separate writes.
PAUSE_BETWEEN_EVENTS_SECONDS = 0.01


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    # Header names lower-cased.
    headers: dict[str, str]
    body: bytes

    def json_body(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class PlannedToolCall:
    trigger: str
    tool_name: str
    arguments: dict


# ---- reading a conversation, per wire --------------------------------------------------


def _text_of(content) -> str:
    """The text of a message's content: a string, or a list of parts with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif "content" in part:
                    texts.append(_text_of(part["content"]))
        return "\n".join(texts)
    return ""


@dataclass(frozen=True)
class Conversation:
    """What the double reads from a request in any wire: the user's texts, the tools
    offered, and the last tool result if there is one."""

    user_text: str
    tool_names: tuple[str, ...]
    tool_result: str | None

    @staticmethod
    def of_anthropic(request: dict) -> "Conversation":
        user_texts, tool_result = [], None
        for message in request.get("messages") or []:
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            blocks = content if isinstance(content, list) else [content]
            for block in blocks:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    tool_result = _text_of(block.get("content"))
                elif isinstance(block, dict):
                    user_texts.append(_text_of([block]))
                elif isinstance(block, str):
                    user_texts.append(block)
        tools = tuple(tool.get("name", "") for tool in request.get("tools") or [] if isinstance(tool, dict))
        return Conversation("\n".join(user_texts), tools, tool_result)

    @staticmethod
    def of_chat_completions(request: dict) -> "Conversation":
        user_texts, tool_result = [], None
        for message in request.get("messages") or []:
            if not isinstance(message, dict):
                continue
            if message.get("role") == "user":
                user_texts.append(_text_of(message.get("content")))
            elif message.get("role") == "tool":
                tool_result = _text_of(message.get("content"))
        tools = tuple(
            (tool.get("function") or {}).get("name", "") for tool in request.get("tools") or [] if isinstance(tool, dict)
        )
        return Conversation("\n".join(user_texts), tools, tool_result)

    @staticmethod
    def of_responses(request: dict) -> "Conversation":
        user_texts, tool_result = [], None
        given = request.get("input")
        items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
        for item in items:
            if not isinstance(item, dict):
                continue
            if item.get("type") in ("function_call_output", "custom_tool_call_output"):
                output = item.get("output")
                tool_result = output if isinstance(output, str) else _text_of(output)
            elif item.get("role") == "user":
                user_texts.append(_text_of(item.get("content")))
        tools = tuple(tool.get("name", "") for tool in request.get("tools") or [] if isinstance(tool, dict))
        return Conversation("\n".join(user_texts), tools, tool_result)


@dataclass(frozen=True)
class Answer:
    """What the double answers: a text, or a call of a tool."""

    text: str | None = None
    tool_call: PlannedToolCall | None = None


def split_into_pieces(text: str, n_pieces: int = 3) -> list[str]:
    """Non-empty pieces that concatenate back to text."""
    n_pieces = max(1, min(n_pieces, len(text)))
    size = -(-len(text) // n_pieces)
    return [text[start:start + size] for start in range(0, len(text), size)] or [""]


def tool_result_reply(tool_result: str) -> str:
    """The double's answer once a tool has run (tests look for the tool's output in it)."""
    return f"{REPLY_PREFIX}the tool said: {tool_result.strip()[:2000]}"


# ---- the server ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_DoubleHttpServer"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _record(self) -> RecordedRequest:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        recorded = RecordedRequest(self.command, self.path, headers, body)
        self.server.double.add_record(recorded)
        return recorded

    def _send_json(self, status: int, document) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_events(self, events: list[str]) -> None:
        """Server-sent events, each its own chunk of a chunked answer."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for index, event in enumerate(events):
            if index > 0:
                time.sleep(PAUSE_BETWEEN_EVENTS_SECONDS)
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _has_credential(self, recorded: RecordedRequest) -> bool:
        expected = self.server.double.expected_credential
        if recorded.path.startswith(ANTHROPIC_BASE_PATH + "/"):
            return recorded.headers.get("x-api-key") == expected
        return recorded.headers.get("authorization") == f"Bearer {expected}"

    def do_GET(self):  # noqa: N802 - http.server's name
        recorded = self._record()
        self._send_json(404, {"error": {"message": f"the tool double serves no GET {recorded.path}", "type": "not_found_error"}})

    def do_POST(self):  # noqa: N802 - http.server's name
        recorded = self._record()
        if not self._has_credential(recorded):
            self._send_json(401, {"type": "error", "error": {
                "type": "authentication_error", "message": "the tool double did not receive the upstream credential"}})
            return
        request = recorded.json_body()
        path = recorded.path.split("?", 1)[0]
        routes = {
            ANTHROPIC_BASE_PATH + "/v1/messages": (Conversation.of_anthropic, self._anthropic),
            OPENAI_BASE_PATH + "/chat/completions": (Conversation.of_chat_completions, self._chat_completions),
            OPENAI_BASE_PATH + "/responses": (Conversation.of_responses, self._responses),
        }
        if path not in routes:
            self._send_json(404, {"error": {"message": f"the tool double serves no POST {path}", "type": "not_found_error"}})
            return
        if not isinstance(request, dict):
            self._send_json(400, {"error": {"message": "the tool double wants a JSON object", "type": "invalid_request_error"}})
            return
        read_conversation, answer_in_wire = routes[path]
        answer = self.server.double.answer_for(read_conversation(request))
        answer_in_wire(request, answer)

    # ---- Anthropic Messages -------------------------------------------------------------

    def _anthropic(self, request: dict, answer: Answer) -> None:
        model = request.get("model", "")
        message_id = "msg_tooldouble_" + uuid.uuid4().hex[:16]
        if answer.tool_call is not None:
            tool_use_id = "toolu_" + uuid.uuid4().hex[:20]
            block = {"type": "tool_use", "id": tool_use_id, "name": answer.tool_call.tool_name, "input": answer.tool_call.arguments}
            stop_reason = "tool_use"
        else:
            block = {"type": "text", "text": answer.text}
            stop_reason = "end_turn"
        usage = {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not request.get("stream"):
            self._send_json(200, {"id": message_id, "type": "message", "role": "assistant", "model": model,
                                  "content": [block], "stop_reason": stop_reason, "stop_sequence": None, "usage": usage})
            return

        def event(name: str, data: dict) -> str:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

        events = [event("message_start", {"message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]
        if answer.tool_call is not None:
            events.append(event("content_block_start", {"index": 0, "content_block": {**block, "input": {}}}))
            for piece in split_into_pieces(json.dumps(answer.tool_call.arguments)):
                events.append(event("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}))
        else:
            events.append(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
            for piece in split_into_pieces(answer.text):
                events.append(event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}))
        events.append(event("content_block_stop", {"index": 0}))
        events.append(event("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                              "usage": {"output_tokens": OUTPUT_TOKENS}}))
        events.append(event("message_stop", {}))
        self._send_events(events)

    # ---- OpenAI Chat Completions --------------------------------------------------------

    def _chat_completions(self, request: dict, answer: Answer) -> None:
        model = request.get("model", "")
        completion_id = "chatcmpl-tooldouble-" + uuid.uuid4().hex[:16]
        created = int(time.time())
        usage = {"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS, "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}
        call_id = "call_" + uuid.uuid4().hex[:20]
        finish_reason = "tool_calls" if answer.tool_call is not None else "stop"
        if not request.get("stream"):
            if answer.tool_call is not None:
                message = {"role": "assistant", "content": None, "tool_calls": [{
                    "id": call_id, "type": "function",
                    "function": {"name": answer.tool_call.tool_name, "arguments": json.dumps(answer.tool_call.arguments)}}]}
            else:
                message = {"role": "assistant", "content": answer.text}
            self._send_json(200, {"id": completion_id, "object": "chat.completion", "created": created, "model": model,
                                  "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}], "usage": usage})
            return

        def chunk(choices: list, **more) -> str:
            document = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": choices, **more}
            return f"data: {json.dumps(document)}\n\n"

        events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
        if answer.tool_call is not None:
            arguments = split_into_pieces(json.dumps(answer.tool_call.arguments))
            first = {"index": 0, "id": call_id, "type": "function",
                     "function": {"name": answer.tool_call.tool_name, "arguments": arguments[0]}}
            events.append(chunk([{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}]))
            for piece in arguments[1:]:
                events.append(chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
                                      "finish_reason": None}]))
        else:
            for piece in split_into_pieces(answer.text):
                events.append(chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
        events.append(chunk([{"index": 0, "delta": {}, "finish_reason": finish_reason}]))
        # Like a provider: the usage chunk for a client that asked for it (keygate always asks).
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append(chunk([], usage=usage))
        events.append("data: [DONE]\n\n")
        self._send_events(events)

    # ---- OpenAI Responses ---------------------------------------------------------------

    def _responses(self, request: dict, answer: Answer) -> None:
        model = request.get("model", "")
        response_id = "resp_tooldouble_" + uuid.uuid4().hex[:16]
        created = int(time.time())
        usage = {"input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}
        if answer.tool_call is not None:
            item = {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:16], "call_id": "call_" + uuid.uuid4().hex[:20],
                    "name": answer.tool_call.tool_name, "arguments": json.dumps(answer.tool_call.arguments), "status": "completed"}
        else:
            item = {"type": "message", "id": "msg_" + uuid.uuid4().hex[:16], "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": answer.text, "annotations": []}]}

        def response(status: str, output: list, with_usage: bool) -> dict:
            return {"id": response_id, "object": "response", "created_at": created, "status": status, "model": model,
                    "output": output, "usage": usage if with_usage else None, "error": None, "incomplete_details": None}

        if not request.get("stream"):
            self._send_json(200, response("completed", [item], True))
            return

        sequence = iter(range(1_000_000))

        def event(name: str, data: dict) -> str:
            return f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': next(sequence), **data})}\n\n"

        events = [event("response.created", {"response": response("in_progress", [], False)}),
                  event("response.in_progress", {"response": response("in_progress", [], False)})]
        if answer.tool_call is not None:
            events.append(event("response.output_item.added", {"output_index": 0, "item": {**item, "arguments": "", "status": "in_progress"}}))
            for piece in split_into_pieces(item["arguments"]):
                events.append(event("response.function_call_arguments.delta", {"item_id": item["id"], "output_index": 0, "delta": piece}))
            events.append(event("response.function_call_arguments.done", {"item_id": item["id"], "output_index": 0, "arguments": item["arguments"]}))
        else:
            events.append(event("response.output_item.added", {"output_index": 0, "item": {**item, "content": [], "status": "in_progress"}}))
            part = {"type": "output_text", "text": "", "annotations": []}
            events.append(event("response.content_part.added", {"item_id": item["id"], "output_index": 0, "content_index": 0, "part": part}))
            for piece in split_into_pieces(answer.text):
                events.append(event("response.output_text.delta", {"item_id": item["id"], "output_index": 0, "content_index": 0, "delta": piece}))
            events.append(event("response.output_text.done", {"item_id": item["id"], "output_index": 0, "content_index": 0, "text": answer.text}))
            events.append(event("response.content_part.done", {"item_id": item["id"], "output_index": 0, "content_index": 0,
                                                               "part": {**part, "text": answer.text}}))
        events.append(event("response.output_item.done", {"output_index": 0, "item": item}))
        events.append(event("response.completed", {"response": response("completed", [item], True)}))
        self._send_events(events)


class _DoubleHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, double: "ToolDouble"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.double = double


class ToolDouble:
    """Start with `start()`; plan tool calls with `plan_tool_call`; read what reached it with
    `records()`."""

    def __init__(self, expected_credential: str):
        self.expected_credential = expected_credential
        self._records: list[RecordedRequest] = []
        self._planned: list[PlannedToolCall] = []
        self._lock = threading.Lock()
        self._server: _DoubleHttpServer | None = None

    def start(self) -> None:
        self._server = _DoubleHttpServer(self)
        threading.Thread(target=self._server.serve_forever, name="tool-double", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the double is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def plan_tool_call(self, trigger: str, tool_name: str, arguments: dict) -> None:
        """Requests whose user text contains `trigger` and that offer `tool_name` are answered
        with a call of it, until a tool result comes back."""
        with self._lock:
            self._planned.append(PlannedToolCall(trigger, tool_name, arguments))

    def answer_for(self, conversation: Conversation) -> Answer:
        if conversation.tool_result is not None:
            return Answer(text=tool_result_reply(conversation.tool_result))
        with self._lock:
            planned = [plan for plan in self._planned if plan.trigger in conversation.user_text]
        for plan in planned:
            if plan.tool_name in conversation.tool_names:
                return Answer(tool_call=plan)
        if planned:
            offered = ", ".join(conversation.tool_names) or "none"
            return Answer(text=f"{REPLY_PREFIX}no tool {planned[0].tool_name} among those offered ({offered})")
        return Answer(text=f"{REPLY_PREFIX}ok")

    def add_record(self, recorded: RecordedRequest) -> None:
        with self._lock:
            self._records.append(recorded)

    def records(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def records_containing(self, marker: str) -> list[RecordedRequest]:
        return [recorded for recorded in self.records() if marker.encode() in recorded.body]
