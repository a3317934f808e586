"""EventKind (harness.model) is the one list of event kinds, as OpKind is of op kinds: the runner,
the gates and the measurements name a kind only through a member; the lab's failover controller,
the restore runbook and the fault journal (below the runner, naming kinds through a callback) use
only members' values; every member is made or read somewhere; and every detail key a gate or a
measurement reads through event_detail_of is in EventDetail. Recorder.event refuses a kind that is
not a member and keeps the plain string, so what results.json holds is unchanged."""

from __future__ import annotations

import ast
import json

import pytest

from harness.model import EventDetail, EventKind
from harness.workload.recorder import Recorder

from .source_scan import HARNESS, call_name, keys_read, kind_like, members_named, sources

VALUES = {k.value for k in EventKind}
# calls that make an event: name -> index of the kind argument
MAKING_CALLS = {"event": 0, "import_records": 0, "record": 0, "on_event": 0, "_event": 0, "emit": 0, "lab_event": 0}
# calls that read events by kind: name -> index of the kind argument (None: every argument)
READING_CALLS = {"events_of": None, "first_event": 0, "fault_span": 2}
# below the runner: they name a kind as a string (a callback's argument), each an EventKind value
EMITTERS = (HARNESS / "lab", HARNESS / "backup" / "restore.py", HARNESS / "faults" / "journal.py")
# above them: a kind only as EventKind.NAME
TYPED = ("runner", "gates", "measure", "chaos", "workload")


def _literals(node: ast.expr) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def made_kinds(source: str) -> set[str]:
    """The string kinds a module makes events of: the literal kind of event(), on_event(), emit(), ..."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and call_name(node.func) in MAKING_CALLS:
            index = MAKING_CALLS[call_name(node.func) or ""]
            for arg in node.args[index : index + 1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and kind_like(arg.value):
                    found.add(arg.value)
    return found


def bare_kinds(source: str) -> list[str]:
    """String literals where a kind is made or read (event(), events_of(), first_event(),
    fault_span's until, `e.kind == ...` of an event): above the emitters, a member must be named."""
    bare: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and call_name(node.func) in {**MAKING_CALLS, **READING_CALLS}:
            index = {**MAKING_CALLS, **READING_CALLS}[call_name(node.func) or ""]
            for arg in node.args if index is None else node.args[index : index + 1]:
                bare += [s for s in _literals(arg) if kind_like(s)]
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Attribute)
            and node.left.attr == "kind"
            and not (isinstance(node.left.value, ast.Name) and node.left.value.id in ("o", "op", "m"))
        ):
            for right in node.comparators:
                bare += [s for s in _literals(right) if s in VALUES]
    return bare


# ---- the scanners see what they must (else the checks below would pass on nothing) --------------


def test_the_scanners_find_made_and_bare_kinds_and_detail_keys():
    source = (
        'self.on_event("promote", name, {})\nemit("restore_dnoe", sid, {})\nself.record(EventKind.HEAL, x)\n'
        'h.events_of("inject", EventKind.HEAL)\nh.first_event("checkpiont")\nfault_span(h, f, ("fence",))\n'
        'x = [e for e in h.events if e.kind == "clock"]\ny = [o for o in h.ops if o.kind == "write"]\n'
        'a = event_detail_of(e).get("seconds")\nb = event_detail_of(e)["snapshot_id"]\nc = e.detail.get("path")\n'
    )
    assert made_kinds(source) == {"promote", "restore_dnoe"}
    assert sorted(bare_kinds(source)) == ["checkpiont", "clock", "fence", "inject", "promote", "restore_dnoe"]
    assert members_named(source, "EventKind") == {"HEAL"}
    assert keys_read(source, "event_detail_of") == {"seconds", "snapshot_id"}


# ---- the contract -------------------------------------------------------------------------------


def test_the_lab_the_runbook_and_the_journal_make_only_eventkind_values():
    made = {(kind, path.name) for path, source in sources(*EMITTERS) for kind in made_kinds(source)}
    assert {kind for kind, _ in made} >= {"detect", "promote", "reconnect", "restore_done"}  # the scan sees them
    unknown = sorted(f"{kind} ({name})" for kind, name in made if kind not in VALUES)
    assert not unknown, f"event kinds that are not EventKind members: {unknown}"


def test_the_runner_gates_and_measurements_name_kinds_only_through_members():
    bare = sorted(
        f"{path.relative_to(HARNESS)}: {kind!r}"
        for path, source in sources(*(HARNESS / part for part in TYPED))
        for kind in bare_kinds(source)
    )
    assert not bare, f"an event kind as a bare string (name its EventKind member): {bare}"


def test_every_member_is_made_or_read_somewhere():
    named: set[str] = set()
    for _, source in sources(HARNESS):
        named |= members_named(source, "EventKind")
    made = {kind for _, source in sources(*EMITTERS) for kind in made_kinds(source)}
    assert not named - set(EventKind.__members__), f"EventKind.{named - set(EventKind.__members__)} is no member"
    unused = sorted(k.name for k in EventKind if k.name not in named and k.value not in made)
    assert not unused, f"members nobody makes or reads: {unused}"


def test_every_event_detail_key_the_gates_and_measurements_read_is_in_event_detail():
    keys = set(EventDetail.__optional_keys__) | set(EventDetail.__required_keys__)
    read = {
        (key, path.name)
        for part in TYPED
        for path, source in sources(HARNESS / part)
        for key in keys_read(source, "event_detail_of")
    }
    assert {key for key, _ in read} >= {"seconds", "snapshot_id", "path"}  # the scan sees them
    unknown = sorted(f"{key} ({name})" for key, name in read if key not in keys)
    assert not unknown, f"detail keys read that EventDetail lacks: {unknown}"


def test_the_recorder_refuses_a_kind_that_is_no_member_and_records_nothing():
    recorder = Recorder()
    with pytest.raises(ValueError, match="'checkpiont' is not a valid EventKind"):
        recorder.event("checkpiont", "x")  # type: ignore[arg-type]  # the typo mypy would catch
    assert recorder.history().events == ()


def test_an_event_keeps_the_plain_string_so_results_are_unchanged():
    recorder = Recorder()
    event = recorder.event(EventKind.RESTORE_DONE, "snap-1", "cid", source="restore", seconds=1.5, snapshot_id="s")
    assert type(event.kind) is str and event.kind == "restore_done" == EventKind.RESTORE_DONE
    assert json.dumps({"kind": event.kind, **event.detail}) == (
        '{"kind": "restore_done", "seconds": 1.5, "snapshot_id": "s"}'
    )
    assert recorder.history().events_of(EventKind.RESTORE_DONE, source="restore") == [event]
