"""Which invocations of ``mlmclm train`` produced the runs of a raw-results file.

An experiment may be grown over several invocations (``--quick-test``, then more seeds or conditions resumed
into the same output directory). The raw results keep one entry per invocation, ``{command, started,
runs_added}``, so the report can show every command needed to reproduce all runs, not only the last one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def carried_invocations(previous: dict[str, Any], kept_runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The invocation log of a resumed file; files written before the log existed get one entry from
    their ``command`` that owns every kept run."""
    if isinstance(previous.get("invocations"), list):
        return list(previous["invocations"])
    if not kept_runs:
        return []
    return [{
        "command": previous.get("command") or "(not recorded)",
        "started": previous.get("created"),
        "runs_added": [run["run_id"] for run in kept_runs],
    }]


def start_invocation(document: dict[str, Any], command: str) -> dict[str, Any]:
    """Append this invocation to ``document['invocations']`` and return its entry (runs are noted later)."""
    entry = {
        "command": command,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs_added": [],
    }
    document.setdefault("invocations", []).append(entry)
    return entry


def contributing_invocations(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per distinct command that added runs still in the file, in first-use order.

    Rerunning an interrupted command adds the rest of its runs under the same command, so entries are
    merged by command; a run retried by a later command counts for the later one.
    """
    present = {run.get("run_id") for run in raw.get("runs", [])}
    owner: dict[str, str] = {}
    for entry in raw.get("invocations") or []:
        for run_id in entry.get("runs_added", []):
            if run_id in present:
                owner[run_id] = entry.get("command", "")
    merged: dict[str, dict[str, Any]] = {}
    for entry in raw.get("invocations") or []:
        command = entry.get("command", "")
        runs = [run_id for run_id, by in owner.items() if by == command]
        if runs and command not in merged:
            merged[command] = {"command": command, "started": entry.get("started"), "runs": runs}
    return list(merged.values())
