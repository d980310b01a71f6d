"""The graphql-http audit (npm, unmodified) of a real ``liqmap serve``: the GraphQL over HTTP
specification's MUST, SHOULD and MAY checks. Required: no failure and no warning; the notices
(MAY) are printed and, at the time of writing, none is left either."""

from __future__ import annotations

from pathlib import Path

from tests.api.interop.conftest import json_lines, run_node
from tests.reliability.harness import ApiProcess


def test_graphql_http_audit_has_no_failure_and_no_warning(
    api_server: ApiProcess, node_clients: Path
) -> None:
    result = run_node(node_clients / "audit.mjs", f"{api_server.url}/graphql")
    assert result.returncode == 0, result.stderr
    audits = json_lines(result.stdout)
    by_status: dict[str, list[dict]] = {}
    for audit in audits:
        by_status.setdefault(audit["status"], []).append(audit)
    for audit in audits:
        if audit["status"] != "ok":
            print(f"{audit['status']} {audit['id']} {audit['name']}: {audit['reason']}")
    print({status: len(found) for status, found in by_status.items()})
    assert len(audits) >= 60, audits  # the whole audit ran (61 checks in graphql-http 1.23.1)
    assert not by_status.get("error"), by_status["error"]
    assert not by_status.get("warn"), by_status["warn"]
    assert not by_status.get("notice"), by_status["notice"]
