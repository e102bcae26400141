"""Runs after every other test of the suite (see conftest.py): no plaintext key or
AccessKey secret that the console showed reached the server's log or any file of its data
directory (the SQLite database and its WAL included)."""

from __future__ import annotations


def test_no_secret_shown_by_the_console_was_written_anywhere(keygate_server):
    assert len(keygate_server.seen_secrets) >= 5, "the other tests should have produced secrets"
    files = [path for path in keygate_server.data_dir.rglob("*") if path.is_file()]
    assert any(path.name == "keygate.db" for path in files)
    for path in files:
        content = path.read_bytes()
        for secret in keygate_server.seen_secrets:
            assert secret.encode() not in content, f"a secret shown once is in {path.name}"
