"""Qwen Code (`qwen -p`, npm `@qwen-code/qwen-code`) with OpenAI auth against keygate's
OpenAI-compatible gateway (`OPENAI_BASE_URL=<keygate>/compatible-mode/v1`, `OPENAI_API_KEY`,
`OPENAI_MODEL`), with a key made through keygate's API: a prompt answered by the demo
upstream, as text and as stream-json; a tool loop through the tool double (its read_file
tool reads a file the test wrote, the result goes back through keygate, and the double's
answer quotes it); and a disabled key, which must end the run with keygate's message within
10 s of keygate's refusal.

Qwen Code runs with a temporary HOME whose `~/.qwen/settings.json` selects OpenAI auth and
turns off usage statistics, telemetry and update checks.
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
DISABLED_KEY_MESSAGE = "The API key is disabled."

QWEN_SETTINGS = {
    "security": {"auth": {"selectedType": "openai"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "disableAutoUpdate": True, "disableUpdateNag": True},
}


@pytest.fixture
def qwen_home(tmp_path):
    home = tmp_path / "home"
    (home / ".qwen").mkdir(parents=True)
    (home / ".qwen" / "settings.json").write_text(json.dumps(QWEN_SETTINGS), encoding="utf-8")
    return home


def qwen_environment(home, keygate, key: str, model: str) -> dict:
    environment = base_environment(home)
    environment.update({
        "OPENAI_BASE_URL": keygate.base_url() + "/compatible-mode/v1",
        "OPENAI_API_KEY": key,
        "OPENAI_MODEL": model,
        "QWEN_TELEMETRY_ENABLED": "false",
        "QWEN_CODE_DISABLE_PRECONNECT": "1",
        # One Node process instead of two: by default the CLI starts itself again with a
        # larger heap, which costs seconds on a small machine.
        "QWEN_CODE_NO_RELAUNCH": "1",
    })
    return environment


def qwen_argv(qwen_code, prompt: str, model: str, *more: str) -> tuple[str, ...]:
    return (*qwen_code.command, "-p", prompt, "--model", model, "--auth-type", "openai", *more)


def test_qwen_code_prints_the_demo_answer_as_text(qwen_code, keygate, api_key, qwen_home, project, record_run):
    _key_id, key = api_key
    run = record_run(run_client(
        qwen_argv(qwen_code, "Say hello to keygate.", DEMO_CHAT_MODEL),
        qwen_environment(qwen_home, keygate, key, DEMO_CHAT_MODEL), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.returncode == 0, run.describe()
    assert DEMO_REPLY_MARKER in run.stdout, run.describe()
    assert any(line.path == "/compatible-mode/v1/chat/completions" and line.status == 200 for line in run.access_lines), run.describe()


def stream_json_events(run) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip().startswith("{")]


def test_qwen_code_streams_json_from_the_demo(qwen_code, keygate, api_key, qwen_home, project, record_run):
    _key_id, key = api_key
    run = record_run(run_client(
        qwen_argv(qwen_code, "Say hello to keygate.", DEMO_CHAT_MODEL, "--output-format", "stream-json"),
        qwen_environment(qwen_home, keygate, key, DEMO_CHAT_MODEL), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.returncode == 0, run.describe()
    result = [event for event in stream_json_events(run) if event.get("type") == "result"]
    assert result and not result[-1].get("is_error"), run.describe()
    assert DEMO_REPLY_MARKER in result[-1].get("result", ""), run.describe()


@pytest.mark.parametrize("output_format", ["text", "stream-json"])
def test_qwen_code_runs_a_tool_loop_through_keygate(qwen_code, keygate, api_key, tool_double, qwen_home, project,
                                                     record_run, output_format):
    key_id, key = api_key
    tool_output = "tool-output-" + secrets.token_hex(8)
    notes = project / "notes.txt"
    notes.write_text(f"The secret word is {tool_output}.\n", encoding="utf-8")
    trigger = "tool-loop-" + secrets.token_hex(6)
    tool_double.plan_tool_call(trigger, "read_file", {"file_path": str(notes)})

    run = record_run(run_client(
        qwen_argv(qwen_code, f"Read notes.txt and tell me the secret word. ({trigger})", DOUBLE_MODEL,
                  "--allowed-tools", "read_file", "--max-session-turns", "4", "--output-format", output_format),
        qwen_environment(qwen_home, keygate, key, DOUBLE_MODEL), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.returncode == 0, run.describe()
    if output_format == "stream-json":
        events = stream_json_events(run)
        tool_uses = [block for event in events if event.get("type") == "assistant"
                     for block in event["message"].get("content", []) if block.get("type") == "tool_use"]
        assert [tool_use["name"] for tool_use in tool_uses] == ["read_file"], run.describe()
        result = [event for event in events if event.get("type") == "result"][-1]
        assert not result.get("is_error"), run.describe()
        final_text = result["result"]
        # The usage of the double's streams, which keygate passed on.
        assert result["usage"]["input_tokens"] >= INPUT_TOKENS, result["usage"]
    else:
        final_text = run.stdout
    assert REPLY_PREFIX + "the tool said:" in final_text and tool_output in final_text, run.describe()

    turns = tool_double.records_containing(trigger)
    assert any(tool_output.encode() in recorded.body for recorded in turns), "the tool result never reached the double"
    calls = [call for call in run.model_calls if call.key_id == key_id and call.model == DOUBLE_MODEL]
    assert len(calls) >= 2, run.describe()
    assert all(call.protocol == "openai" and call.status == 200 for call in calls), calls
    assert all((call.input_tokens, call.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS) for call in calls), calls


def test_qwen_code_shows_keygate_message_for_a_disabled_key(qwen_code, keygate, api_key, qwen_home, project, record_run):
    key_id, key = api_key
    keygate.disable_api_key(key_id)
    run = record_run(run_client(
        qwen_argv(qwen_code, "Say hello to keygate.", DEMO_CHAT_MODEL),
        qwen_environment(qwen_home, keygate, key, DEMO_CHAT_MODEL), project, keygate,
        CLIENT_RUN_TIMEOUT_SECONDS, seconds_after_first_answer=DISABLED_KEY_SECONDS_AFTER_REFUSAL,
    ))
    assert not run.timed_out, "Qwen Code was still running 10 s after keygate refused its key\n" + run.describe()
    assert run.returncode != 0, run.describe()
    assert DISABLED_KEY_MESSAGE in run.output, run.describe()
    # One attempt: the openai SDK inside Qwen Code reads keygate's `x-should-retry: false`.
    refusals = [line for line in run.access_lines if line.status == 401]
    assert len(refusals) == 1, run.describe()
