"""The abuse replay of bench/abuse.sh: replays the three high-severity findings of the
security review against a running `keygate serve` and says whether the node held.

The node holds when, in every phase, its resident memory stays under its idle resident
memory + 100 MB and every legitimate request is answered within 1 s; and when the upstream
received no traversal. Exit status 0 only then.

Phases (each its own table in the report):

1. traversal (finding 1, "path traversal to the provider, with the provider's credential"):
   a key scoped to one model sends POSTs whose paths climb out of the gateway's routes
   (`/api/v1/services/%2e%2e/fine-tunes`, raw `../..`, `%2e%2e/%2e%2e/%2e%2e/compatible-mode/v1/batches`
   and about thirty other spellings: encoded and double-encoded dots and slashes,
   backslashes, NUL, `;` path parameters, fragments, query strings carrying `../`), through
   the three protocol prefixes, on raw sockets so that no client library normalises the path,
   each with a body naming the allowed model. The upstream double (bench/abuse_upstream.py)
   records every request target it receives. Pass: it received none outside the route the
   request was made for (the check decodes the received path once, takes `\\` for `/`,
   ignores `;` parameters and resolves dot segments before comparing).
2. unauthenticated-bodies (finding 2, "unauthenticated memory exhaustion"): first, one
   request without credentials declaring a 15 MiB body to the key import route
   (`POST /keygate/v1/keys/import`) and one to another management route, sending only the
   headers: keygate should answer (401) before any of the body is sent; any 4xx within
   2 s passes, silence fails the phase. Then 100 connections
   without credentials, each declaring `Content-Length: 15728640` to the import route (and a
   few to other management routes), send most of the body slowly without finishing, hold,
   and close.
3. idle-connections (finding 3): 1,100 connections that send nothing, held open (the node
   runs with a 1,024 open-file limit, like the one in the finding).
4. slow-headers (finding 3): 1,000 connections each sending a 350 KB request head slowly,
   never finishing it (no blank line).
5. idle-keepalive (finding 3): connections that make one good request with keep-alive and
   then stay idle; the report says whether the node closed them within the wait (the
   finding saw them open after 150 s).

Throughout, a separate monitor process (this file, `monitor` mode) sends a legitimate
request every 200 ms on a fresh connection (`GET /healthz` and an authenticated model call
with the good key, each its own connection) and records each latency, and reads `VmRSS`
from `/proc/<pid>/status` of the keygate process every 100 ms (and its open files every
500 ms). Idle resident memory is measured before the first phase. Each phase ends with a
settle period after its connections are closed (memory that stays resident shows there);
probes and samples are counted in the phase in whose window they started.

Standard library only. Run by bench/abuse.sh, which starts keygate and the upstream double
and passes the addresses, the keygate process id and (in ABUSE_API_KEY) the key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from abuse_upstream import ANTHROPIC_BASE_PATH, NATIVE_BASE_PATH, OPENAI_BASE_PATH, SPELLING_HEADER  # noqa: E402

API_KEY_VARIABLE = "ABUSE_API_KEY"
MEGABYTE = 1_000_000
MEBIBYTE = 1024 * 1024
IMPORT_ROUTE = "/keygate/v1/keys/import"
# Other management routes behind the same authentication layer (1 MiB body limit).
OTHER_MANAGEMENT_ROUTES = ["/modelstudio/apikeys", "/keygate/v1/users"]
PHASE_NAMES = ["traversal", "unauthenticated-bodies", "idle-connections", "slow-headers", "idle-keepalive"]

# ---- settings: full mode (the numbers) and --quick (a CI smoke run) ----------------

FULL_MODE = {
    "body_connections": 100,
    "body_other_route_connections": 6,
    "body_declared_bytes": 15 * MEBIBYTE,
    "body_sent_bytes": 15 * MEBIBYTE - 64 * 1024,
    "body_send_seconds": 20.0,
    "body_hold_seconds": 15.0,
    "idle_connections": 1100,
    "idle_hold_seconds": 30.0,
    "header_connections": 1000,
    "header_bytes": 350_000,
    "header_send_seconds": 30.0,
    "header_hold_seconds": 15.0,
    "keepalive_connections": 100,
    "keepalive_wait_seconds": 150.0,
    "settle_seconds": 5.0,
    "idle_seconds": 3.0,
}
QUICK_MODE = {
    "body_connections": 20,
    "body_other_route_connections": 2,
    "body_declared_bytes": 15 * MEBIBYTE,
    "body_sent_bytes": 15 * MEBIBYTE - 64 * 1024,
    "body_send_seconds": 2.0,
    "body_hold_seconds": 1.0,
    "idle_connections": 1100,
    "idle_hold_seconds": 4.0,
    "header_connections": 400,
    "header_bytes": 350_000,
    "header_send_seconds": 3.0,
    "header_hold_seconds": 1.0,
    "keepalive_connections": 20,
    "keepalive_wait_seconds": 10.0,
    "settle_seconds": 1.5,
    "idle_seconds": 2.0,
}


def now() -> float:
    """CLOCK_MONOTONIC: the same clock in the driver, the monitor and the upstream double."""
    return time.monotonic()


def log(message: str) -> None:
    print(f"abuse.py: {message}", file=sys.stderr, flush=True)


# ==== raw HTTP over asyncio streams =========================================================


def status_of_response_head(head: bytes) -> int | None:
    """The status code of `HTTP/1.1 401 Unauthorized...`, or None."""
    first_line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(first_line) >= 2 and first_line[0].startswith(b"HTTP/") and first_line[1].isdigit():
        return int(first_line[1])
    return None


async def read_one_response(reader: asyncio.StreamReader) -> tuple[int | None, bytes]:
    """Reads one response (Content-Length, chunked, or until the connection closes): the
    status and the body."""
    head = await reader.readuntil(b"\r\n\r\n")
    content_length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            content_length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are expected
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    elif content_length is not None:
        body = await reader.readexactly(content_length)
    else:
        body = await reader.read()
    return status_of_response_head(head), body


async def exchange_on_fresh_connection(host: str, port: int, request: bytes) -> tuple[int | None, bytes]:
    """Sends `request` (which says `Connection: close`) on a new connection; the answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await read_one_response(reader)
    finally:
        writer.transport.abort()


def http_request(method: str, target: str, host_header: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """The bytes of one HTTP/1.1 request, target as given (nothing encoded or normalised).
    A Content-Length is added for the body unless `headers` declare one (a declared length
    the sender never completes is the point of some phases)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    declares_its_length = any(name.lower() == "content-length" for name in headers)
    if not declares_its_length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def model_call_body(protocol: str, model: str, text: str) -> bytes:
    if protocol == "native":
        document = {"model": model, "input": {"prompt": text}}
    elif protocol == "openai":
        document = {"model": model, "messages": [{"role": "user", "content": text}]}
    else:
        document = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
    return json.dumps(document).encode()


# ==== the monitor process: probes and resident memory =======================================


async def run_monitor(arguments: argparse.Namespace) -> None:
    """Every probe_interval: one `GET /healthz` and one model call, each on a fresh
    connection; every rss_interval: VmRSS of the keygate process. One JSON line per event.
    Stops on SIGTERM after the probes in flight have finished or timed out."""
    api_key = os.environ[API_KEY_VARIABLE]
    output = open(arguments.output, "a", encoding="utf-8")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    host_header = f"{arguments.host}:{arguments.port}"
    healthz_request = http_request("GET", "/healthz", host_header, {"Connection": "close"})
    model_request = http_request(
        "POST", "/compatible-mode/v1/chat/completions", host_header,
        {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Connection": "close", "X-Abuse-Probe": "1"},
        model_call_body("openai", arguments.model, "probe"),
    )

    def write(event: dict) -> None:
        output.write(json.dumps(event) + "\n")

    async def probe(kind: str, request: bytes) -> None:
        started = now()
        event = {"event": "probe", "kind": kind, "started": started}
        try:
            status, _ = await asyncio.wait_for(exchange_on_fresh_connection(arguments.host, arguments.port, request), arguments.probe_timeout)
            event.update(latency=now() - started, status=status, error=None if status == 200 else f"status {status}")
        except asyncio.TimeoutError:
            event.update(latency=now() - started, status=None, error=f"no answer within {arguments.probe_timeout:g} s")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            event.update(latency=now() - started, status=None, error=f"{type(error).__name__}: {error}"[:120])
        write(event)

    async def sample_resident_memory() -> None:
        sample_number = 0
        while not stopping.is_set():
            event = {"event": "rss", "at": now()}
            try:
                with open(f"/proc/{arguments.pid}/status", encoding="ascii") as status_file:
                    for line in status_file:
                        if line.startswith("VmRSS:"):
                            event["rss_bytes"] = int(line.split()[1]) * 1024
                if sample_number % 5 == 0:
                    event["open_files"] = len(os.listdir(f"/proc/{arguments.pid}/fd"))
            except OSError:
                event["gone"] = True
            write(event)
            sample_number += 1
            try:
                await asyncio.wait_for(stopping.wait(), arguments.rss_interval)
            except asyncio.TimeoutError:
                pass

    sampler = asyncio.create_task(sample_resident_memory())
    probes_in_flight: set[asyncio.Task] = set()
    next_probe_at = now()
    while not stopping.is_set():
        for kind, request in (("healthz", healthz_request), ("model", model_request)):
            task = asyncio.create_task(probe(kind, request))
            probes_in_flight.add(task)
            task.add_done_callback(probes_in_flight.discard)
        next_probe_at += arguments.probe_interval
        try:
            await asyncio.wait_for(stopping.wait(), max(0.0, next_probe_at - now()))
        except asyncio.TimeoutError:
            pass
    # A probe still waiting is a probe the node has not answered: let it time out and count.
    if probes_in_flight:
        await asyncio.wait(probes_in_flight)
    await sampler
    output.close()


# ==== attack connections ====================================================================


@dataclass
class AttackConnection:
    """One connection of a phase: when it opened, whether and when the server closed it,
    and the first line of whatever the server answered."""

    opened_at: float | None = None
    connect_error: str | None = None
    closed_by_server_at: float | None = None
    close_kind: str | None = None  # "eof" or "reset"
    response_line: str | None = None
    bytes_sent: int = 0
    exchange_status: int | None = None  # the keep-alive phase's good request


async def watch_for_server_close(reader: asyncio.StreamReader, connection: AttackConnection) -> None:
    """Reads until the server closes; keeps the first response line."""
    received = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                connection.close_kind = "eof"
                break
            if connection.response_line is None:
                received += data
                if b"\r\n" in received or len(received) > 200:
                    connection.response_line = received.split(b"\r\n", 1)[0][:80].decode("latin-1")
    except (ConnectionResetError, BrokenPipeError, OSError):
        connection.close_kind = "reset"
    connection.closed_by_server_at = now()


async def hold_connection(host: str, port: int, connection: AttackConnection, stop: asyncio.Event,
                          send=None, exchange=None, connect_timeout: float = 10.0) -> None:
    """Opens a connection, runs `exchange` (a first request and answer) if given, then runs
    `send` (the slow sender) alongside a reader that notices the server closing, until `stop`
    is set or the server closes. Then closes it at once (no lingering send buffer)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout)
    except (OSError, asyncio.TimeoutError) as error:
        connection.connect_error = type(error).__name__
        return
    connection.opened_at = now()
    try:
        if exchange is not None:
            try:
                await exchange(reader, writer, connection)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                connection.closed_by_server_at = now()
                connection.close_kind = "during the first request"
                return
        watcher = asyncio.create_task(watch_for_server_close(reader, connection))
        sender = asyncio.create_task(send(writer, connection, stop)) if send is not None else None
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (watcher, sender, stopper):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(*(task for task in (watcher, sender, stopper) if task is not None), return_exceptions=True)
    finally:
        writer.transport.abort()


async def open_and_hold(count: int, host: str, port: int, stop: asyncio.Event, reconnect: bool,
                        send=None, exchange=None) -> tuple[list[AttackConnection], list[asyncio.Task]]:
    """Starts `count` connections, 100 at a time (a burst of SYNs bigger than the listen
    backlog would only measure the kernel), and returns their records and tasks. With
    `reconnect`, a connection the server closes is opened again until `stop`."""
    records: list[AttackConnection] = []
    tasks: list[asyncio.Task] = []

    async def one_slot() -> None:
        while True:
            connection = AttackConnection()
            records.append(connection)
            await hold_connection(host, port, connection, stop, send=send, exchange=exchange)
            if not reconnect or stop.is_set():
                return
            await asyncio.sleep(0.05)

    for first in range(0, count, 100):
        batch = [asyncio.create_task(one_slot()) for _ in range(min(100, count - first))]
        tasks += batch
        await asyncio.sleep(0.1)
    return records, tasks


async def close_all(stop: asyncio.Event, tasks: list[asyncio.Task]) -> None:
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def slow_sender(head: bytes, payload_bytes: int, seconds: float, chunk_bytes: int):
    """A sender that writes `head` at once, then `payload_bytes` of filler in chunks spread
    evenly over `seconds`, and then nothing (never finishing the request)."""
    filler = b"a" * chunk_bytes

    async def send(writer: asyncio.StreamWriter, connection: AttackConnection, stop: asyncio.Event) -> None:
        try:
            writer.write(head)
            await writer.drain()
            connection.bytes_sent += len(head)
            chunks = max(1, -(-payload_bytes // chunk_bytes))
            pause = seconds / chunks
            remaining = payload_bytes
            while remaining > 0 and not stop.is_set():
                piece = filler[: min(chunk_bytes, remaining)]
                writer.write(piece)
                await writer.drain()
                connection.bytes_sent += len(piece)
                remaining -= len(piece)
                await asyncio.sleep(pause)
        except (ConnectionResetError, BrokenPipeError, OSError):
            pass

    return send


# ==== the phases ============================================================================


@dataclass
class PhaseResult:
    name: str
    replays: str
    started: float
    attack_ended: float = 0.0
    ended: float = 0.0
    connections: list[AttackConnection] = field(default_factory=list)
    # Lines printed under the phase's table, and checks that fail the verdict.
    notes: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)


@dataclass
class TraversalAttempt:
    number: int
    protocol: str
    spelling: str
    target: str
    expected_prefixes: tuple[str, ...]
    status: int | None = None
    answer: str = ""
    received: list[dict] = field(default_factory=list)
    escaped: list[str] = field(default_factory=list)


# The spellings of a path that climbs out of its route. Path spellings are appended to the
# route's directory (`/api/v1/services/`, `/compatible-mode/v1/chat/completions/`,
# `/apps/anthropic/v1/messages/`); query spellings to the endpoint itself.
PATH_SPELLINGS = [
    ("percent-encoded dots (the issue's first example)", "%2e%2e/fine-tunes"),
    ("raw ../.. (the issue's second)", "../../admin/keys"),
    ("three encoded levels to another product (the issue's third)", "%2e%2e/%2e%2e/%2e%2e/compatible-mode/v1/batches"),
    ("upper-case %2E%2E", "%2E%2E/fine-tunes"),
    ("half-encoded .%2e", ".%2e/fine-tunes"),
    ("half-encoded %2e.", "%2e./fine-tunes"),
    ("raw dots, encoded slash %2f", "aigc/..%2f..%2ffine-tunes"),
    ("all encoded %2e%2e%2f", "%2e%2e%2f%2e%2e%2ffine-tunes"),
    ("encoded backslash %5c", "..%5c..%5cfine-tunes"),
    ("raw backslash", "..\\..\\fine-tunes"),
    ("NUL after the dots %00", "..%00/fine-tunes"),
    ("double-encoded %252e", "%252e%252e/fine-tunes"),
    ("double-encoded dots and slash %252f", "%252e%252e%252ffine-tunes"),
    ("mixed spellings in one path", "aigc/%2e%2e/.%2E/fine-tunes"),
    ("trailing .. with no slash", ".."),
    ("trailing encoded %2e%2e", "aigc/%2e%2e/%2e%2e"),
    ("trailing dots after a name", "fine-tunes/../.."),
    ("three dots", ".../fine-tunes"),
    ("dots then an encoded space", "..%20/fine-tunes"),
    ("path parameter ..;/", "..;/fine-tunes"),
    ("path parameter hiding dots", "aigc;x=%2e%2e/../fine-tunes"),
    ("./../", "./../fine-tunes"),
    ("doubled slashes", "aigc//..//..//fine-tunes"),
    ("overlong UTF-8 dots %c0%ae", "%c0%ae%c0%ae/fine-tunes"),
    ("IIS-style %u002e", "%u002e%u002e/fine-tunes"),
    ("fragment on the request line", "aigc#/../../fine-tunes"),
    ("encoded question mark then dots", "aigc%3f/../../fine-tunes"),
]
QUERY_SPELLINGS = [
    ("query carrying ../", "?x=../../../fine-tunes"),
    ("query starting with /../", "?/../../../fine-tunes"),
    ("query carrying encoded %2e%2e%2f", "?x=%2e%2e%2f%2e%2e%2ffine-tunes"),
    ("query with a raw backslash and #", "?x=..\\..\\fine-tunes#/../x"),
]
# Per protocol: the route's directory for path spellings, the endpoint for query spellings,
# and where a forwarded request may land on the upstream (decoded and resolved).
PROTOCOL_ROUTES = {
    "native": ("/api/v1/services/", "/api/v1/services/aigc/text-generation/generation", (f"{NATIVE_BASE_PATH}/services/",)),
    "openai": ("/compatible-mode/v1/chat/completions/", "/compatible-mode/v1/chat/completions",
               (f"{OPENAI_BASE_PATH}/chat/completions", f"{OPENAI_BASE_PATH}/embeddings")),
    "anthropic": ("/apps/anthropic/v1/messages/", "/apps/anthropic/v1/messages", (f"{ANTHROPIC_BASE_PATH}/v1/messages",)),
}
# Every path a legitimate call may reach on the upstream: anything else it receives, from
# any request of the run, is a traversal.
EVERY_EXPECTED_PREFIX = tuple(prefix for _, _, prefixes in PROTOCOL_ROUTES.values() for prefix in prefixes) + (f"{NATIVE_BASE_PATH}/apps/",)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, segment by segment; a segment's `;parameters` and anything
    from a NUL on are ignored when deciding whether it is `.` or `..` (servers that split
    them off would)."""
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        bare = segment.split(";", 1)[0].split("\x00", 1)[0]
        last = index == len(segments) - 1
        if bare == ".":
            if last:
                output.append("")
            continue
        if bare == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
            continue
        output.append(segment)
    resolved = "/".join(output)
    return resolved if resolved.startswith("/") else "/" + resolved


def readings_of_received_target(target: str) -> dict[str, str]:
    """How a provider could read a received target: as it is, and decoded once (with `\\` as
    `/`, as WHATWG URL parsers and many servers do), dot segments resolved in both."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    decoded = urllib.parse.unquote(path, encoding="latin-1").replace("\\", "/")
    return {"as received": remove_dot_segments(path.replace("\\", "/")), "decoded once": remove_dot_segments(decoded)}


def escapes(target: str, expected_prefixes: tuple[str, ...]) -> list[str]:
    """The readings of `target` that land outside every expected prefix (an exact endpoint
    or a directory ending in `/`)."""
    outside = []
    for reading, resolved in readings_of_received_target(target).items():
        inside = any(resolved == prefix or (prefix.endswith("/") and resolved.startswith(prefix)) for prefix in expected_prefixes)
        if not inside:
            outside.append(f"{reading}: {resolved}")
    return outside


QUERY_CHARACTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%")


def characters_not_allowed_in_a_query(target: str) -> set[str]:
    """Characters of the target's query that RFC 3986 does not allow there unencoded (a query
    passed on raw, not re-encoded). Reported, not failed: they cannot move the path."""
    if "?" not in target:
        return set()
    return {character for character in target.split("?", 1)[1] if character not in QUERY_CHARACTERS}


def read_upstream_records(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as records:
            return [json.loads(line) for line in records if line.strip()]
    except FileNotFoundError:
        return []


async def phase_traversal(settings: argparse.Namespace, result: PhaseResult) -> None:
    api_key = os.environ[API_KEY_VARIABLE]
    host_header = f"{settings.host}:{settings.port}"
    attempts: list[TraversalAttempt] = []
    number = 0
    for protocol, (route_directory, endpoint, expected) in PROTOCOL_ROUTES.items():
        for spelling, suffix in PATH_SPELLINGS:
            number += 1
            attempts.append(TraversalAttempt(number, protocol, spelling, route_directory + suffix, expected))
        for spelling, query in QUERY_SPELLINGS:
            number += 1
            attempts.append(TraversalAttempt(number, protocol, spelling, endpoint + query, expected))
    native_expected = PROTOCOL_ROUTES["native"][2]
    for spelling, target in [
        ("absolute-form request target", f"http://{host_header}/api/v1/services/%2e%2e/fine-tunes"),
        ("absolute-form with raw dots", f"http://{host_header}/api/v1/services/../../admin/keys"),
        ("application id %2e%2e", "/api/v1/apps/%2e%2e/completion"),
        ("application id with encoded slash", "/api/v1/apps/x%2f..%2f..%2ffine-tunes/completion"),
    ]:
        number += 1
        attempts.append(TraversalAttempt(number, "native", spelling, target, native_expected + (f"{NATIVE_BASE_PATH}/apps/",)))

    for attempt in attempts:
        marker = f"abuse-spelling-{attempt.number}"
        request = http_request(
            "POST", attempt.target, host_header,
            {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Connection": "close",
             SPELLING_HEADER: str(attempt.number)},
            model_call_body(attempt.protocol, settings.model, marker),
        )
        try:
            attempt.status, body = await asyncio.wait_for(exchange_on_fresh_connection(settings.host, settings.port, request), 10)
            if attempt.status is None or attempt.status >= 300:
                attempt.answer = summarise_answer(body)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            attempt.answer = f"no answer ({type(error).__name__})"
    result.attack_ended = now()
    await asyncio.sleep(1.0)  # the double records before it answers; this is only slack

    records = read_upstream_records(settings.upstream_records)
    by_number = {str(attempt.number): attempt for attempt in attempts}
    for record in records:
        attempt = by_number.get(record.get("spelling") or "")
        if attempt is not None:
            attempt.received.append(record)
            attempt.escaped += escapes(record["target"], attempt.expected_prefixes)
    stray = [record for record in records if record.get("spelling") not in by_number and escapes(record["target"], EVERY_EXPECTED_PREFIX)]

    lines = [f"{'#':>3} {'protocol':<9} {'spelling':<52} {'keygate':>7}  upstream received"]
    for attempt in attempts:
        if attempt.received:
            received = "; ".join(
                f"{record['method']} {record['target']}" + (" WITH the provider's key" if record.get("provider_credential") else "")
                for record in attempt.received
            )
            verdict = "ESCAPED (" + "; ".join(attempt.escaped) + ")" if attempt.escaped else "inside the route"
            raw_in_query = sorted({character for record in attempt.received for character in characters_not_allowed_in_a_query(record["target"])})
            if raw_in_query:
                verdict += f"; its query kept characters a URI query may not hold: {' '.join(repr(character) for character in raw_in_query)}"
            received = f"{received}  -> {verdict}"
        else:
            received = "nothing"
        status = str(attempt.status) if attempt.status is not None else "-"
        lines.append(f"{attempt.number:>3} {attempt.protocol:<9} {attempt.spelling[:52]:<52} {status:>7}  {received}")
        lines.append(f"{'':>3} {'':<9} sent: {attempt.target}" + (f"   keygate said: {attempt.answer}" if attempt.answer else ""))
    escaped = [attempt for attempt in attempts if attempt.escaped]
    forwarded = [attempt for attempt in attempts if attempt.received]
    with open(os.path.join(settings.results_dir, "traversal.txt"), "w", encoding="utf-8") as report:
        report.write("\n".join(lines) + "\n")
    result.notes.append(f"{len(attempts)} attempts ({len(PATH_SPELLINGS) + len(QUERY_SPELLINGS)} spellings x 3 protocol prefixes, and 4 more); "
                        f"forwarded upstream: {len(forwarded)}; outside the route: {len(escaped)}; "
                        f"with the provider's key: {sum(1 for attempt in escaped if any(r.get('provider_credential') for r in attempt.received))}")
    not_forwarded: dict[str, int] = {}
    for attempt in attempts:
        if not attempt.received:
            status = str(attempt.status) if attempt.status is not None else "no answer"
            not_forwarded[status] = not_forwarded.get(status, 0) + 1
    result.notes.append("not forwarded, by keygate's answer: " + ", ".join(f"{status}: {count}" for status, count in sorted(not_forwarded.items())))
    result.notes.append("the attempts that reached the upstream (every attempt is in traversal.txt):")
    for index in range(1, len(lines), 2):
        if attempts[(index - 1) // 2].received:
            result.notes += ["  " + lines[index], "  " + lines[index + 1]]
    if escaped:
        result.failed_checks.append(f"the upstream received {len(escaped)} traversal(s) outside the route")
    if stray:
        result.failed_checks.append(f"the upstream received {len(stray)} other request(s) outside every route: "
                                    + ", ".join(record["target"] for record in stray[:5]))


def summarise_answer(body: bytes) -> str:
    """The error code of keygate's answer, when it is a JSON error; else nothing."""
    try:
        document = json.loads(body)
    except ValueError:
        return body[:60].decode("latin-1").strip() if body and not body.startswith(b"{") else ""
    if isinstance(document, dict):
        for name in ("code", "type"):
            if isinstance(document.get(name), str) and document[name] not in ("message", "chat.completion"):
                return document[name]
        error = document.get("error")
        if isinstance(error, dict):
            return str(error.get("code") or error.get("type") or "")
    return ""


async def answer_to_headers_only(settings: argparse.Namespace, route: str) -> str:
    """Sends only the headers of an unauthenticated 15 MiB POST and waits for an answer.
    Returns a line for the report; a 4xx before any body byte is what the fix should do."""
    host_header = f"{settings.host}:{settings.port}"
    head = http_request("POST", route, host_header, {"Content-Type": "text/plain", "Content-Length": str(settings.body_declared_bytes)})
    reader, writer = await asyncio.open_connection(settings.host, settings.port)
    started = now()
    try:
        writer.write(head)
        await writer.drain()
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\r\n"), settings.early_answer_seconds)
        except asyncio.TimeoutError:
            return f"no answer {settings.early_answer_seconds:g} s after the headers (keygate is waiting for the body)"
        except (OSError, asyncio.IncompleteReadError) as error:
            return f"closed without an answer after {now() - started:.2f} s ({type(error).__name__})"
        status = status_of_response_head(line)
        return f"answered {status} after {now() - started:.3f} s, before any body byte" if status else f"answered {line!r}"
    finally:
        writer.transport.abort()


async def phase_unauthenticated_bodies(settings: argparse.Namespace, result: PhaseResult) -> None:
    early_answers = {}
    for route in (IMPORT_ROUTE, OTHER_MANAGEMENT_ROUTES[0]):
        early_answers[route] = await answer_to_headers_only(settings, route)
        result.notes.append(f"headers only, no credentials, Content-Length {settings.body_declared_bytes} to {route}: {early_answers[route]}")
    if not early_answers[IMPORT_ROUTE].startswith("answered 4"):
        result.failed_checks.append(f"no 4xx to the headers alone on {IMPORT_ROUTE} within {settings.early_answer_seconds:g} s")

    host_header = f"{settings.host}:{settings.port}"
    stop = asyncio.Event()
    tasks: list[asyncio.Task] = []
    routes = [IMPORT_ROUTE] * settings.body_connections + [
        OTHER_MANAGEMENT_ROUTES[index % len(OTHER_MANAGEMENT_ROUTES)] for index in range(settings.body_other_route_connections)
    ]
    per_route: dict[str, list[AttackConnection]] = {}
    for route in dict.fromkeys(routes):
        head = http_request("POST", route, host_header, {"Content-Type": "text/csv" if route == IMPORT_ROUTE else "application/x-www-form-urlencoded",
                                                           "Content-Length": str(settings.body_declared_bytes)})
        sender = slow_sender(head, settings.body_sent_bytes, settings.body_send_seconds, 64 * 1024)
        records, route_tasks = await open_and_hold(routes.count(route), settings.host, settings.port, stop, settings.reconnect, send=sender)
        per_route[route] = records
        tasks += route_tasks
    log(f"unauthenticated-bodies: {len(routes)} connections sending {settings.body_sent_bytes} of {settings.body_declared_bytes} declared bytes "
        f"over {settings.body_send_seconds:g} s, then holding {settings.body_hold_seconds:g} s")
    await asyncio.sleep(settings.body_send_seconds + settings.body_hold_seconds)
    await close_all(stop, tasks)
    result.attack_ended = now()
    for route, records in per_route.items():
        result.connections += records
        sent = sum(record.bytes_sent for record in records)
        result.notes.append(f"{route}: {len(records)} connection(s), {sent / MEGABYTE:.0f} MB sent in all; {describe_closes(records)}")


async def phase_idle_connections(settings: argparse.Namespace, result: PhaseResult) -> None:
    stop = asyncio.Event()
    records, tasks = await open_and_hold(settings.idle_connections, settings.host, settings.port, stop, settings.reconnect)
    log(f"idle-connections: {settings.idle_connections} connections sending nothing, held {settings.idle_hold_seconds:g} s")
    await asyncio.sleep(settings.idle_hold_seconds)
    await close_all(stop, tasks)
    result.attack_ended = now()
    result.connections = records
    result.notes.append(describe_closes(records))


def slow_request_head(total_bytes: int) -> bytes:
    """A request head of `total_bytes` in header lines of about 8 KB, without the blank
    line that would end it."""
    head = b"GET /healthz HTTP/1.1\r\nHost: abuse\r\n"
    line_number = 0
    while len(head) < total_bytes:
        name = f"X-Abuse-Padding-{line_number}: ".encode()
        value_length = min(8000, max(1, total_bytes - len(head) - len(name) - 2))
        head += name + b"b" * value_length + b"\r\n"
        line_number += 1
    return head


async def phase_slow_headers(settings: argparse.Namespace, result: PhaseResult) -> None:
    head = slow_request_head(settings.header_bytes)

    def sender_of_head():
        filler_chunk = 16 * 1024
        chunks = max(1, -(-len(head) // filler_chunk))
        pause = settings.header_send_seconds / chunks

        async def send(writer: asyncio.StreamWriter, connection: AttackConnection, stop: asyncio.Event) -> None:
            try:
                for start in range(0, len(head), filler_chunk):
                    if stop.is_set():
                        return
                    writer.write(head[start:start + filler_chunk])
                    await writer.drain()
                    connection.bytes_sent += min(filler_chunk, len(head) - start)
                    await asyncio.sleep(pause)
            except (ConnectionResetError, BrokenPipeError, OSError):
                pass

        return send

    stop = asyncio.Event()
    records, tasks = await open_and_hold(settings.header_connections, settings.host, settings.port, stop, settings.reconnect, send=sender_of_head())
    log(f"slow-headers: {settings.header_connections} connections each sending a {len(head)}-byte unfinished head "
        f"over {settings.header_send_seconds:g} s, then holding {settings.header_hold_seconds:g} s")
    await asyncio.sleep(settings.header_send_seconds + settings.header_hold_seconds)
    await close_all(stop, tasks)
    result.attack_ended = now()
    result.connections = records
    sent = sum(record.bytes_sent for record in records)
    result.notes.append(f"{sent / MEGABYTE:.0f} MB of request heads sent in all; " + describe_closes(records))


async def phase_idle_keepalive(settings: argparse.Namespace, result: PhaseResult) -> None:
    host_header = f"{settings.host}:{settings.port}"
    good_request = http_request("GET", "/healthz", host_header, {})

    async def one_good_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: AttackConnection) -> None:
        writer.write(good_request)
        await writer.drain()
        connection.exchange_status, _ = await asyncio.wait_for(read_one_response(reader), 10)

    stop = asyncio.Event()
    records, tasks = await open_and_hold(settings.keepalive_connections, settings.host, settings.port, stop, False, exchange=one_good_request)
    log(f"idle-keepalive: {settings.keepalive_connections} connections made one good request each; waiting {settings.keepalive_wait_seconds:g} s")
    await asyncio.sleep(settings.keepalive_wait_seconds)
    still_open = [record for record in records if record.opened_at is not None and record.closed_by_server_at is None]
    await close_all(stop, tasks)
    result.attack_ended = now()
    result.connections = records
    answered = sum(1 for record in records if record.exchange_status == 200)
    result.notes.append(f"good requests answered 200: {answered} of {len(records)}; {describe_closes(records)}")
    result.notes.append(f"still open {settings.keepalive_wait_seconds:g} s after their request: {len(still_open)} of {len(records)}")
    if still_open:
        result.failed_checks.append(f"{len(still_open)} idle keep-alive connections still open after {settings.keepalive_wait_seconds:g} s")


def describe_closes(records: list[AttackConnection]) -> str:
    """Connections opened, not opened, and closed by the server (how many, when, how)."""
    opened = [record for record in records if record.opened_at is not None]
    failed = [record for record in records if record.opened_at is None]
    closed = [record for record in opened if record.closed_by_server_at is not None]
    text = f"opened {len(opened)}"
    if failed:
        kinds = {}
        for record in failed:
            kinds[record.connect_error] = kinds.get(record.connect_error, 0) + 1
        text += f", could not connect {len(failed)} ({', '.join(f'{kind} {count}' for kind, count in kinds.items())})"
    text += f"; closed by the server: {len(closed)}"
    if closed:
        after_open = sorted(record.closed_by_server_at - record.opened_at for record in closed)
        text += (f" (after {after_open[0]:.1f} / {statistics.median(after_open):.1f} / {after_open[-1]:.1f} s, "
                 f"min / median / max from their opening")
        answers: dict[str, int] = {}
        for record in closed:
            answer = record.response_line or f"no answer ({record.close_kind})"
            answers[answer] = answers.get(answer, 0) + 1
        text += "; " + ", ".join(f"{answer}: {count}" for answer, count in sorted(answers.items(), key=lambda item: -item[1])) + ")"
    return text


PHASES = {
    "traversal": ("finding 1: path traversal to the provider", phase_traversal),
    "unauthenticated-bodies": ("finding 2: unauthenticated memory exhaustion", phase_unauthenticated_bodies),
    "idle-connections": ("finding 3: connections that send nothing", phase_idle_connections),
    "slow-headers": ("finding 3: unfinished request heads sent slowly", phase_slow_headers),
    "idle-keepalive": ("finding 3: idle keep-alive connections", phase_idle_keepalive),
}


# ==== the report ============================================================================


def read_monitor_events(path: str) -> tuple[list[dict], list[dict]]:
    samples, probes = [], []
    with open(path, encoding="utf-8") as events:
        for line in events:
            event = json.loads(line)
            (samples if event["event"] == "rss" else probes).append(event)
    return samples, probes


@dataclass
class WindowFigures:
    max_rss_above_idle: float | None
    max_rss_above_start: float | None
    rss_above_idle_at_end: float | None
    max_open_files: int | None
    probes: int
    failures: list[dict]
    slow: int
    max_latency: dict[str, float]
    process_gone: bool


def figures_in_window(samples: list[dict], probes: list[dict], start: float, end: float, idle_rss: float, latency_limit: float) -> WindowFigures:
    window_samples = [sample for sample in samples if start <= sample["at"] < end]
    rss = [sample["rss_bytes"] for sample in window_samples if "rss_bytes" in sample]
    before = [sample["rss_bytes"] for sample in samples if sample["at"] < start and "rss_bytes" in sample]
    rss_at_start = before[-1] if before else (rss[0] if rss else None)
    open_files = [sample["open_files"] for sample in window_samples if "open_files" in sample]
    window_probes = [probe for probe in probes if start <= probe["started"] < end]
    failures = [probe for probe in window_probes if probe["error"]]
    slow = sum(1 for probe in window_probes if not probe["error"] and probe["latency"] > latency_limit)
    max_latency = {}
    for kind in ("healthz", "model"):
        latencies = [probe["latency"] for probe in window_probes if probe["kind"] == kind]
        if latencies:
            max_latency[kind] = max(latencies)
    return WindowFigures(
        max_rss_above_idle=(max(rss) - idle_rss) if rss else None,
        max_rss_above_start=(max(rss) - rss_at_start) if rss and rss_at_start is not None else None,
        rss_above_idle_at_end=(rss[-1] - idle_rss) if rss else None,
        max_open_files=max(open_files) if open_files else None,
        probes=len(window_probes),
        failures=failures,
        slow=slow,
        max_latency=max_latency,
        process_gone=any(sample.get("gone") for sample in window_samples),
    )


def megabytes(value: float | None) -> str:
    return "-" if value is None else f"{value / MEGABYTE:+.0f} MB"


def seconds(value: float | None) -> str:
    return "-" if value is None else (f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s")


def server_open_file_limit(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    return " ".join(line.split()[3:5]) + " (soft, hard)"
    except OSError:
        pass
    return "unknown"


def raise_own_open_file_limit() -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]} (was {soft})"


async def first_legitimate_calls_work(settings: argparse.Namespace) -> str | None:
    """One `GET /healthz` and one model call with the good key must answer 200 before the
    replay starts (else the probes would measure a broken setup, not the abuse)."""
    host_header = f"{settings.host}:{settings.port}"
    calls = {
        "GET /healthz": http_request("GET", "/healthz", host_header, {"Connection": "close"}),
        "the model call": http_request(
            "POST", "/compatible-mode/v1/chat/completions", host_header,
            {"Authorization": f"Bearer {os.environ[API_KEY_VARIABLE]}", "Content-Type": "application/json", "Connection": "close"},
            model_call_body("openai", settings.model, "before the replay"),
        ),
    }
    for what, request in calls.items():
        try:
            status, body = await asyncio.wait_for(exchange_on_fresh_connection(settings.host, settings.port, request), 10)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            return f"{what}: {type(error).__name__}"
        if status != 200:
            return f"{what} answered {status}: {body[:200]!r}"
    return None


def start_monitor(settings: argparse.Namespace, monitor_path: str) -> subprocess.Popen:
    """The probe and the resident-memory sampler, in a process of their own so that the
    attack's event loop cannot delay them."""
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "monitor", "--pid", str(settings.pid), "--host", settings.host, "--port", str(settings.port),
         "--model", settings.model, "--output", monitor_path, "--probe-interval", str(settings.probe_interval),
         "--probe-timeout", str(settings.probe_timeout), "--rss-interval", str(settings.rss_interval)],
    )


def stop_monitor(settings: argparse.Namespace, monitor: subprocess.Popen) -> None:
    """SIGTERM: the monitor stops probing and waits for the probes in flight to end."""
    monitor.send_signal(signal.SIGTERM)
    try:
        monitor.wait(timeout=settings.probe_timeout + 10)
    except subprocess.TimeoutExpired:
        monitor.kill()
        monitor.wait()


async def run_phases(settings: argparse.Namespace) -> list[PhaseResult]:
    """Each phase in turn, each followed by its settle period."""
    results: list[PhaseResult] = []
    for name in settings.phases:
        replays, run_phase = PHASES[name]
        result = PhaseResult(name, replays, started=now())
        log(f"phase {name} ({replays})")
        await run_phase(settings, result)
        if not result.attack_ended:
            result.attack_ended = now()
        await asyncio.sleep(settings.settle_seconds)
        result.ended = now()
        results.append(result)
    return results


def report_phase(settings: argparse.Namespace, result: PhaseResult, figures: WindowFigures) -> tuple[bool, str, list[str]]:
    """Whether the node held in this phase, its row of the table, and its details."""
    problems = list(result.failed_checks)
    if figures.max_rss_above_idle is not None and figures.max_rss_above_idle >= settings.rss_limit_mb * MEGABYTE:
        problems.append(f"resident memory reached idle {megabytes(figures.max_rss_above_idle)}")
    if figures.failures:
        problems.append(f"{len(figures.failures)} probe(s) failed")
    if figures.slow:
        problems.append(f"{figures.slow} probe(s) answered after more than {settings.latency_limit:g} s")
    if figures.process_gone:
        problems.append("the keygate process was gone")
    held = not problems
    opened = [record for record in result.connections if record.opened_at is not None]
    closed = [record for record in opened if record.closed_by_server_at is not None]
    closed_text = "-"
    if result.connections:
        closed_text = f"{len(closed)} of {len(opened)}"
        if closed:
            after = sorted(record.closed_by_server_at - record.opened_at for record in closed)
            closed_text += f" (after {after[0]:.1f} to {after[-1]:.1f} s)"
    open_files = figures.max_open_files if figures.max_open_files is not None else "-"
    row = (f"| {result.name} | {result.replays} | {result.ended - result.started:.0f} s "
           f"| {megabytes(figures.max_rss_above_idle)} | {megabytes(figures.max_rss_above_start)} | {megabytes(figures.rss_above_idle_at_end)} "
           f"| {seconds(figures.max_latency.get('healthz'))} / {seconds(figures.max_latency.get('model'))} "
           f"| {figures.probes} | {len(figures.failures)} | {figures.slow} | {open_files} | {closed_text} | {'held' if held else 'FAILED'} |")
    details = [f"== {result.name}: {result.replays} =="] + result.notes
    failure_kinds: dict[str, int] = {}
    for probe in figures.failures:
        kind = f"{probe['kind']}: {probe['error']}"
        failure_kinds[kind] = failure_kinds.get(kind, 0) + 1
    if failure_kinds:
        details.append("probe failures: " + "; ".join(f"{kind} x{count}" for kind, count in failure_kinds.items()))
    details.append("verdict: " + ("held" if held else "FAILED: " + "; ".join(problems)))
    return held, row, details + [""]


async def run_driver(settings: argparse.Namespace) -> int:
    os.makedirs(settings.results_dir, exist_ok=True)
    monitor_path = os.path.join(settings.results_dir, "monitor.jsonl")
    if os.path.exists(monitor_path):
        os.remove(monitor_path)
    header = [
        f"mode: {'quick' if settings.quick else 'full'}; phases: {', '.join(settings.phases)}",
        f"keygate: pid {settings.pid} at http://{settings.host}:{settings.port}; its open-file limit (Max open files): {server_open_file_limit(settings.pid)}",
        f"driver's open-file limit raised to {raise_own_open_file_limit()}",
        f"limits: resident memory under idle + {settings.rss_limit_mb:g} MB, every probe answered within {settings.latency_limit:g} s "
        f"(a probe is abandoned after {settings.probe_timeout:g} s and counts as a failure)",
    ]
    for line in header:
        log(line)
    problem = await first_legitimate_calls_work(settings)
    if problem:
        log(f"the node does not answer legitimate calls before any abuse: {problem}")
        return 2

    monitor = start_monitor(settings, monitor_path)
    try:
        idle_started = now()
        log(f"measuring idle resident memory for {settings.idle_seconds:g} s")
        await asyncio.sleep(settings.idle_seconds)
        idle_ended = now()
        results = await run_phases(settings)
    finally:
        stop_monitor(settings, monitor)

    with open(os.path.join(settings.results_dir, "phases.json"), "w", encoding="utf-8") as windows:
        # The windows on the monitor's clock (time.monotonic()), to read monitor.jsonl again.
        json.dump({"idle": [idle_started, idle_ended], "phases": [
            {"name": result.name, "started": result.started, "attack_ended": result.attack_ended, "ended": result.ended} for result in results
        ]}, windows, indent=1)
    samples, probes = read_monitor_events(monitor_path)
    idle_rss_values = [sample["rss_bytes"] for sample in samples if idle_started <= sample["at"] < idle_ended and "rss_bytes" in sample]
    if not idle_rss_values:
        log("no resident-memory sample in the idle window: is the pid right?")
        return 2
    idle_rss = statistics.median(idle_rss_values)
    idle = figures_in_window(samples, probes, idle_started, idle_ended, idle_rss, settings.latency_limit)
    report = header + [
        f"idle resident memory: {idle_rss / MEGABYTE:.1f} MB (median of {len(idle_rss_values)} samples over {settings.idle_seconds:g} s); "
        f"idle probes: {idle.probes}, failures {len(idle.failures)}, "
        f"max latency healthz {seconds(idle.max_latency.get('healthz'))}, model {seconds(idle.max_latency.get('model'))}",
        "",
        "| phase | replays | length | max RSS above idle | max RSS above the phase's start | RSS above idle after close "
        "| max probe latency (healthz / model) | probes | probe failures | probes over the limit | server open files, max "
        "| connections the server closed | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    every_phase_held = True
    details: list[str] = []
    if idle.failures or idle.slow:
        every_phase_held = False
        details += ["== before the replay ==", f"verdict: FAILED: {len(idle.failures)} probe(s) failed and "
                    f"{idle.slow} were slower than {settings.latency_limit:g} s before any abuse (a busy machine?)", ""]
    for result in results:
        held, row, phase_details = report_phase(settings, result, figures_in_window(samples, probes, result.started, result.ended, idle_rss, settings.latency_limit))
        every_phase_held &= held
        report.append(row)
        details += phase_details
    report += [""] + details
    report.append("VERDICT: " + ("every phase held" if every_phase_held else "the node did NOT hold (see the FAILED phases)"))
    text = "\n".join(report)
    print(text)
    with open(os.path.join(settings.results_dir, "summary.txt"), "w", encoding="utf-8") as summary:
        summary.write(text + "\n")
    return 0 if every_phase_held else 1


def parse_driver_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="abuse.py", description="Replays the three high findings against a running keygate (see the docstring at the top).",
        epilog="The good key comes from the environment variable ABUSE_API_KEY. Durations in seconds.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="the keygate serve process whose memory is sampled")
    parser.add_argument("--model", required=True, help="the one model the key may call (served by the upstream double)")
    parser.add_argument("--upstream-records", required=True, help="the upstream double's record file")
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--quick", action="store_true", help="a CI smoke run: fewer connections, shorter holds")
    parser.add_argument("--phases", default=",".join(PHASE_NAMES), help=f"comma-separated, in order (default: all: {','.join(PHASE_NAMES)})")
    parser.add_argument("--reconnect", action="store_true", help="reopen attack connections the server closes (a stricter attacker)")
    parser.add_argument("--rss-limit-mb", type=float, default=100.0)
    parser.add_argument("--latency-limit", type=float, default=1.0)
    parser.add_argument("--probe-interval", type=float, default=0.2)
    parser.add_argument("--probe-timeout", type=float, default=5.0)
    parser.add_argument("--rss-interval", type=float, default=0.1)
    parser.add_argument("--early-answer-seconds", type=float, default=2.0, help="how long the headers-only request waits for its 401")
    for name, full_value in FULL_MODE.items():
        kind = float if isinstance(full_value, float) else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                            help=f"full: {full_value}, quick: {QUICK_MODE[name]}")
    settings = parser.parse_args(argv)
    defaults = QUICK_MODE if settings.quick else FULL_MODE
    for name, value in defaults.items():
        if getattr(settings, name) is None:
            setattr(settings, name, value)
    settings.phases = [phase.strip() for phase in settings.phases.split(",") if phase.strip()]
    unknown = [phase for phase in settings.phases if phase not in PHASES]
    if unknown:
        parser.error(f"unknown phase(s) {unknown}; the phases are {PHASE_NAMES}")
    return settings


def parse_monitor_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="abuse.py monitor")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--probe-interval", type=float, required=True)
    parser.add_argument("--probe-timeout", type=float, required=True)
    parser.add_argument("--rss-interval", type=float, required=True)
    return parser.parse_args(argv)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "monitor":
        asyncio.run(run_monitor(parse_monitor_arguments(sys.argv[2:])))
        return 0
    return asyncio.run(run_driver(parse_driver_arguments(sys.argv[1:])))


if __name__ == "__main__":
    sys.exit(main())
