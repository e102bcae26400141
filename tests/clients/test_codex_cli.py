"""The Codex CLI (`codex exec`, npm `@openai/codex` with its native binary in the npm optional
dependency `@openai/codex-linux-x64`) with a custom model provider in a temporary
CODEX_HOME's config.toml: `base_url = <keygate>/compatible-mode/v1`, `env_key` naming the
variable that holds a key made through keygate's API, `wire_api = "responses"`. Codex speaks
only the OpenAI Responses API (`POST {base_url}/responses`, `stream: true`).

Through keygate (docs/CONTRACT.md#responses-api): a prompt answered by the demo upstream
and by the tool double (reached at its `[[upstreams]]` entry's `openai_base_url` +
`/responses`, as no `responses_base_url` is set), a tool loop through the tool
double (Codex's exec_command runs `cat` on a file the test wrote; the result goes back as a
function_call_output and the double's answer quotes it), and a disabled key shown within
10 s of keygate's refusal. Codex does not read `x-should-retry`: measured against the
double, a 401 is tried six times (its
stream_max_retries: "Reconnecting... 1/5" to 5/5) over about 7 s before Codex prints the
status and the body's message.

One test runs Codex against the tool double directly (no keygate): it shows that the
double's Responses wire (response.created, output_text deltas, a function_call item,
response.completed with usage) is what Codex needs, so that the tests above fail only for
keygate's reasons once they run.
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

RESPONSES_PATH = "/compatible-mode/v1/responses"
KEY_VARIABLE = "KEYGATE_API_KEY"
DISABLED_KEY_MESSAGE = "The API key is disabled."
DEMO_REPLY_MARKER = "[keygate demo]"


def write_codex_home(home, base_url: str, model: str):
    """CODEX_HOME with a config.toml whose one provider is `base_url`; no update check, no
    analytics, no feedback. Codex's own retries are left as they are (stream_max_retries 5):
    the disabled-key test measures what a user gets."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(
        f"""model = "{model}"
model_provider = "keygate"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.keygate]
name = "keygate"
base_url = "{base_url}"
env_key = "{KEY_VARIABLE}"
wire_api = "responses"
""",
        encoding="utf-8",
    )
    return codex_home


def codex_environment(home, codex_home, key: str) -> dict:
    environment = base_environment(home)
    environment.update({"CODEX_HOME": str(codex_home), KEY_VARIABLE: key})
    return environment


def codex_argv(codex, prompt: str, *more: str) -> tuple[str, ...]:
    # Danger-full-access: Codex's sandbox (bubblewrap) needs user namespaces, which a CI
    # container may not have; the test's command only reads a file the test wrote.
    return (*codex.command, "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access", *more, prompt)


@pytest.fixture
def home(tmp_path):
    directory = tmp_path / "home"
    directory.mkdir()
    return directory


def plan_cat_of_notes(tool_double, project) -> tuple[str, str]:
    """Writes notes.txt with a fresh word and plans an exec_command that cats it; returns
    (trigger, word)."""
    tool_output = "tool-output-" + secrets.token_hex(8)
    (project / "notes.txt").write_text(f"The secret word is {tool_output}.\n", encoding="utf-8")
    trigger = "tool-loop-" + secrets.token_hex(6)
    tool_double.plan_tool_call(trigger, "exec_command", {"cmd": "cat notes.txt", "workdir": str(project)})
    return trigger, tool_output


def assert_tool_loop_ran(run, tool_double, trigger: str, tool_output: str) -> None:
    assert run.returncode == 0, run.describe()
    events = [json.loads(line) for line in run.stdout.splitlines() if line.strip().startswith("{")]
    commands = [event["item"] for event in events
                if event.get("type") == "item.completed" and event.get("item", {}).get("type") == "command_execution"]
    assert len(commands) == 1 and "cat notes.txt" in commands[0]["command"], run.describe()
    messages = [event["item"]["text"] for event in events
                if event.get("type") == "item.completed" and event.get("item", {}).get("type") == "agent_message"]
    assert messages and REPLY_PREFIX + "the tool said:" in messages[-1] and tool_output in messages[-1], run.describe()
    usage = [event["usage"] for event in events if event.get("type") == "turn.completed"]
    assert usage and usage[-1]["input_tokens"] >= INPUT_TOKENS and usage[-1]["output_tokens"] >= OUTPUT_TOKENS, run.describe()
    turns = [recorded for recorded in tool_double.records_containing(trigger) if recorded.path.endswith("/responses")]
    assert len(turns) == 2, [recorded.path for recorded in tool_double.records_containing(trigger)]
    assert tool_output.encode() in turns[1].body, "the function_call_output never reached the double"


def test_codex_runs_a_tool_loop_against_the_double_directly(codex, tool_double, keygate, home, project, record_run,
                                                            upstream_secret):
    trigger, tool_output = plan_cat_of_notes(tool_double, project)
    codex_home = write_codex_home(home, tool_double.base_url + "/openai/v1", DOUBLE_MODEL)
    run = record_run(run_client(
        codex_argv(codex, f"Read notes.txt and tell me the secret word. ({trigger})", "--json"),
        codex_environment(home, codex_home, upstream_secret), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.access_lines == [], "this run must not go through keygate"
    assert_tool_loop_ran(run, tool_double, trigger, tool_output)


def test_codex_runs_a_tool_loop_through_keygate(codex, keygate, api_key, tool_double, home, project,
                                                record_run):
    key_id, key = api_key
    trigger, tool_output = plan_cat_of_notes(tool_double, project)
    codex_home = write_codex_home(home, keygate.base_url() + "/compatible-mode/v1", DOUBLE_MODEL)
    run = record_run(run_client(
        codex_argv(codex, f"Read notes.txt and tell me the secret word. ({trigger})", "--json"),
        codex_environment(home, codex_home, key), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert_tool_loop_ran(run, tool_double, trigger, tool_output)
    calls = [call for call in run.model_calls if call.key_id == key_id and call.model == DOUBLE_MODEL]
    assert len(calls) == 2 and all(call.status == 200 for call in calls), run.describe()
    assert all((call.input_tokens, call.output_tokens) == (INPUT_TOKENS, OUTPUT_TOKENS) for call in calls), calls


@pytest.mark.parametrize(("model", "reply_marker"), [(DEMO_CHAT_MODEL, DEMO_REPLY_MARKER), (DOUBLE_MODEL, REPLY_PREFIX)])
def test_codex_prints_an_answer_through_keygate(codex, keygate, api_key, home, project, record_run,
                                                model, reply_marker):
    _key_id, key = api_key
    codex_home = write_codex_home(home, keygate.base_url() + "/compatible-mode/v1", model)
    run = record_run(run_client(
        codex_argv(codex, "Say hello to keygate."),
        codex_environment(home, codex_home, key), project, keygate, CLIENT_RUN_TIMEOUT_SECONDS,
    ))
    assert run.returncode == 0, run.describe()
    assert reply_marker in run.stdout, run.describe()
    assert any(line.path == RESPONSES_PATH and line.status == 200 for line in run.access_lines), run.describe()


def test_codex_shows_keygate_message_for_a_disabled_key(codex, keygate, api_key, home, project,
                                                        record_run):
    key_id, key = api_key
    keygate.disable_api_key(key_id)
    codex_home = write_codex_home(home, keygate.base_url() + "/compatible-mode/v1", DOUBLE_MODEL)
    run = record_run(run_client(
        codex_argv(codex, "Say hello to keygate."),
        codex_environment(home, codex_home, key), project, keygate,
        CLIENT_RUN_TIMEOUT_SECONDS, seconds_after_first_answer=DISABLED_KEY_SECONDS_AFTER_REFUSAL,
    ))
    assert not run.timed_out, "the Codex CLI was still running 10 s after keygate refused its key\n" + run.describe()
    assert run.returncode != 0, run.describe()
    assert DISABLED_KEY_MESSAGE in run.output, run.describe()
