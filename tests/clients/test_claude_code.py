"""Claude Code (`claude -p`, npm `@anthropic-ai/claude-code`) against keygate's
Anthropic-compatible gateway (`ANTHROPIC_BASE_URL=<keygate>/apps/anthropic`), with a key
made through keygate's API: a prompt answered by the demo upstream, as text and as
stream-json; a tool loop through the tool double (its Read tool reads a file the test wrote,
the result goes back through keygate, and the double's answer quotes it); and a disabled key,
which must end the run with keygate's message within 10 s of keygate's refusal.

Claude Code runs with a temporary HOME and config dir, no telemetry, no error reporting, no
auto-update and no non-essential traffic, and every model it may pick (main, small/fast,
haiku, sonnet, opus) set to the model under test, so that every call it makes goes to
keygate. (Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, Claude Code 2.1 also sends
`HEAD /apps/anthropic/api/hello` before its first call, which keygate answers 404; the run
goes on all the same.)
"""

from __future__ import annotations

import json
import secrets

import pytest

from clients_harness import (
    CLIENT_RUN_TIMEOUT_SECONDS,
    DEMO_CHAT_MODEL,
    DISABLED_KEY_SECONDS_AFTER_REFUSAL,
    DOUBLE_MODEL,
    base_environment,
    run_client,
)
from tool_double import INPUT_TOKENS, OUTPUT_TOKENS, REPLY_PREFIX

DEMO_REPLY_MARKER = "[keygate demo]"
# keygate's 401 message for a disabled key (docs/CONTRACT.md, "Data-plane errors").
DISABLED_KEY_MESSAGE = "The API key is disabled."


def claude_environment(home, keygate, key: str, model: str, credential_variable: str = "ANTHROPIC_AUTH_TOKEN") -> dict:
    environment = base_environment(home)
    environment.update({
        "ANTHROPIC_BASE_URL": keygate.base_url() + "/apps/anthropic",
        credential_variable: key,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "DISABLE_COST_WARNINGS": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    })
    return environment


@pytest.fixture
def claude_home(tmp_path):
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    return home


def test_claude_code_prints_the_demo_answer_as_text(claude_code, keygate, api_key, claude_home, project, record_run):
    _key_id, key = api_key
    run = record_run(run_client(
        (*claude_code.command, "-p", "Say hello to keygate.", "--model", DEMO_CHAT_MODEL),
        claude_environment(claude_home, keygate, key, DEMO_CHAT_MODEL), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.returncode == 0, run.describe()
    assert DEMO_REPLY_MARKER in run.stdout, run.describe()
    assert any(line.path == "/apps/anthropic/v1/messages" and line.status == 200 for line in run.access_lines), run.describe()


def stream_json_events(run) -> list[dict]:
    events = []
    for line in run.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def test_claude_code_streams_json_from_the_demo(claude_code, keygate, api_key, claude_home, project, record_run):
    _key_id, key = api_key
    run = record_run(run_client(
        (*claude_code.command, "-p", "Say hello to keygate.", "--model", DEMO_CHAT_MODEL,
         "--output-format", "stream-json", "--verbose"),
        claude_environment(claude_home, keygate, key, DEMO_CHAT_MODEL), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.returncode == 0, run.describe()
    events = stream_json_events(run)
    result = [event for event in events if event.get("type") == "result"]
    assert result and result[-1].get("subtype") == "success" and not result[-1].get("is_error"), run.describe()
    assert DEMO_REPLY_MARKER in result[-1].get("result", ""), run.describe()
    assert result[-1]["usage"]["output_tokens"] > 0, result[-1]


@pytest.mark.parametrize("output_format", ["text", "stream-json"])
def test_claude_code_runs_a_tool_loop_through_keygate(claude_code, keygate, api_key, tool_double, claude_home, project,
                                                       record_run, output_format):
    key_id, key = api_key
    tool_output = "tool-output-" + secrets.token_hex(8)
    notes = project / "notes.txt"
    notes.write_text(f"The secret word is {tool_output}.\n", encoding="utf-8")
    trigger = "tool-loop-" + secrets.token_hex(6)
    tool_double.plan_tool_call(trigger, "Read", {"file_path": str(notes)})

    format_arguments = ("--output-format", "stream-json", "--verbose") if output_format == "stream-json" else ()
    run = record_run(run_client(
        (*claude_code.command, "-p", f"Read notes.txt and tell me the secret word. ({trigger})", "--model", DOUBLE_MODEL,
         "--allowedTools", "Read", "--max-turns", "4", *format_arguments),
        claude_environment(claude_home, keygate, key, DOUBLE_MODEL), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.returncode == 0, run.describe()
    if output_format == "stream-json":
        events = stream_json_events(run)
        tool_uses = [block for event in events if event.get("type") == "assistant"
                     for block in event["message"].get("content", []) if block.get("type") == "tool_use"]
        assert [tool_use["name"] for tool_use in tool_uses] == ["Read"], run.describe()
        result = [event for event in events if event.get("type") == "result"][-1]
        assert result.get("subtype") == "success" and not result.get("is_error"), run.describe()
        final_text = result["result"]
        # Both turns' usage, as the double streamed it (message_start and message_delta).
        assert result["usage"]["output_tokens"] >= 2 * OUTPUT_TOKENS, result["usage"]
    else:
        final_text = run.stdout
    assert REPLY_PREFIX + "the tool said:" in final_text and tool_output in final_text, run.describe()

    # The double saw the turn that asked for the tool and the turn that carried its output.
    turns = tool_double.records_containing(trigger)
    assert any(tool_output.encode() in recorded.body for recorded in turns), "the tool result never reached the double"
    # Streamed through keygate, which read the double's usage from the stream.
    calls = [call for call in run.model_calls if call.key_id == key_id and call.model == DOUBLE_MODEL]
    assert len(calls) >= 2, run.describe()
    assert all(call.protocol == "anthropic" and call.status == 200 for call in calls), calls
    assert all((call.input_tokens, call.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS) for call in calls), calls


@pytest.mark.parametrize("credential_variable", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_claude_code_shows_keygate_message_for_a_disabled_key(claude_code, keygate, api_key, claude_home, project,
                                                             record_run, credential_variable):
    key_id, key = api_key
    keygate.disable_api_key(key_id)
    run = record_run(run_client(
        (*claude_code.command, "-p", "Say hello to keygate.", "--model", DEMO_CHAT_MODEL),
        claude_environment(claude_home, keygate, key, DEMO_CHAT_MODEL, credential_variable), project, keygate,
        CLIENT_RUN_TIMEOUT_SECONDS, seconds_after_first_answer=DISABLED_KEY_SECONDS_AFTER_REFUSAL,
    ))
    assert not run.timed_out, "Claude Code was still running 10 s after keygate refused its key\n" + run.describe()
    assert run.returncode != 0, run.describe()
    assert DISABLED_KEY_MESSAGE in run.output, run.describe()
    # One attempt: the anthropic SDK inside Claude Code reads keygate's `x-should-retry: false`
    # (without it, Claude Code retried this 401 ten times over three minutes: issue 14).
    refusals = [line for line in run.access_lines if line.status == 401]
    assert len(refusals) == 1, run.describe()
