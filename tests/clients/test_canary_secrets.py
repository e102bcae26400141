"""Canary check of the real-clients suite (docs/CONTRACT.md#secrets): the keys the clients
presented, the session token and the upstream credential appear nowhere in keygate's log
(RUST_LOG=debug) or the files of its data dir, and no client key reached the tool double
(keygate replaced each with the upstream's credential). Runs after every other test of the
suite (keygate_pytest.py), so that it sees every key the session made.
"""

from __future__ import annotations


def test_no_seen_secret_in_server_log_or_data_dir_files(keygate):
    seen_secrets = sorted(set(keygate.seen_secrets))
    # The upstream credential and the session token at least, and a key per test that ran.
    assert len(seen_secrets) >= 2, "the canary scan would be vacuous"
    findings = []
    for path in sorted(path for path in keygate.data_dir.rglob("*") if path.is_file()):
        content = path.read_bytes()
        findings += [f"{path.name} holds secret #{index}" for index, secret in enumerate(seen_secrets)
                     if secret.encode() in content]
    assert not findings, findings


def test_no_client_key_reached_the_upstream(keygate, tool_double, upstream_secret):
    client_keys = [secret for secret in set(keygate.seen_secrets) if secret.startswith("sk-")]
    findings = []
    for index, recorded in enumerate(tool_double.records()):
        # Codex's run against the double directly presents the upstream credential itself.
        headers = " ".join(recorded.headers.values())
        for key in client_keys:
            if key in headers or key.encode() in recorded.body:
                findings.append(f"request #{index} to {recorded.path} carried a client key")
    assert not findings, findings
