"""OpKind (harness.model) is the one list of operation kinds: every kind the runner records and
every kind a gate reads is a member, every member is recorded or read somewhere, and a gate names
a kind only through a member (a typo'd kind fails here, not as a gate that silently finds nothing)."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest

from harness.gates import evaluate_gate
from harness.model import History, OpDetail, OpKind

from .cases import CASES
from .source_scan import HARNESS, call_name, keys_read, kind_like, members_named, sources

GATES_DIR = HARNESS / "gates"
# where operations are recorded: the runner's steps, the workload, the chaos runner
RECORDERS = ("runner", "workload", "chaos")
# calls whose kind argument is a recorded (or awaited) op kind: name -> index of the kind argument
RECORDING_CALLS = {
    "call": 0,
    "read": 0,
    "invoke": 0,
    "ops": 0,
    "recover_on": 1,
    "read_events": 1,
    "wait_for_count": 1,
    "wait_for_ok": 1,
}
# those whose kind is an op's (recover_on's is what a fault blocks: "write", "publish", "apply:<platform>")
OP_CALLS = {name: index for name, index in RECORDING_CALLS.items() if name != "recover_on"}
# calls in the gates whose argument (of this index; None: every argument) is an op kind
GATE_READS = {"ops_of": None, "last_op": 1, "_read": 2, "_after_last": 1, "refused_in": 3}
VALUES = {k.value for k in OpKind}


def recorded_kinds(source: str, calls: dict[str, int] = RECORDING_CALLS) -> set[str]:
    """The string kinds a module records: the literal kind argument of Scenario.call / read,
    Recorder.invoke, read_events(scn, KIND), ..., a `kind="..."` keyword or parameter default, and
    the first field of `for kind, ... in (("replay_publish", ...), ...)` loops."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and call_name(node.func) in calls:
            index = calls[call_name(node.func) or ""]
            args = node.args[index : index + 1]
            args += [kw.value for kw in node.keywords if kw.arg == "kind"]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and kind_like(arg.value):
                    found.add(arg.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = node.args.args[len(node.args.args) - len(node.args.defaults) :]
            for param, default in zip(params, node.args.defaults, strict=True):
                if param.arg == "kind" and isinstance(default, ast.Constant) and isinstance(default.value, str):
                    found.add(default.value)
        elif (
            isinstance(node, ast.For)
            and isinstance(node.target, ast.Tuple)
            and node.target.elts
            and isinstance(node.target.elts[0], ast.Name)
            and node.target.elts[0].id == "kind"
            and isinstance(node.iter, (ast.Tuple, ast.List))
        ):
            for elt in node.iter.elts:
                if isinstance(elt, ast.Tuple) and isinstance(elt.elts[0], ast.Constant):
                    found.add(elt.elts[0].value)
    return found


def bare_kinds_in_gate_reads(source: str) -> list[str]:
    """String literals where a gate reads an op kind (ops_of, last_op, ..., `o.kind == ...` /
    `o.kind in (...)`): a gate must name a kind through its OpKind member."""
    bare: list[str] = []

    def literals(node: ast.expr) -> list[str]:
        return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and call_name(node.func) in GATE_READS:
            index = GATE_READS[call_name(node.func) or ""]
            for arg in node.args if index is None else node.args[index : index + 1]:
                bare += literals(arg)
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Attribute)
            and node.left.attr == "kind"
            and isinstance(node.left.value, ast.Name)
            and node.left.value.id in ("o", "op")
        ):
            for right in node.comparators:
                bare += literals(right)
    return bare


# ---- the scanners see what they must (else the checks below would pass on nothing) --------------


def test_the_scanner_finds_recorded_kinds_and_a_typo():
    source = (
        'def read_events(scn, kind="read_events"): pass\n'
        'scn.call("pubilsh", "POST", "/x")\nscn.read("store_read", f)\nrecorder.invoke("probe", f)\n'
        'read_events(scn, "read_chain")\nfor kind, path in (("replay_publish", "publish"),): pass\n'
        'client.call("GET", "/health")\n'
    )
    assert recorded_kinds(source) == {"read_events", "pubilsh", "store_read", "probe", "read_chain", "replay_publish"}


def test_the_scanner_finds_a_bare_kind_in_a_gate():
    source = (
        'x = history.ops_of("publish")\ny = last_op(history, "read_audit", phase="a")\n'
        'z = [o for o in ops if o.kind == "write" or o.kind in ("approve",)]\n'
        'w = last_op(history, OpKind.WRITE, type="ApprovalRecorded")\n'
    )
    assert sorted(bare_kinds_in_gate_reads(source)) == ["approve", "publish", "read_audit", "write"]


def test_the_scanner_finds_the_detail_keys_a_gate_reads():
    source = 'a = detail_of(o).get("intent_id")\nb = detail_of(op)["cp_now"]\nc = o.detail.get("path")\n'
    assert keys_read(source, "detail_of") == {"intent_id", "cp_now"}


# ---- the contract -------------------------------------------------------------------------------


def test_every_kind_the_runner_records_is_an_opkind():
    unknown = {
        f"{kind} ({path.relative_to(HARNESS.parent)})"
        for path, source in sources(*(HARNESS / part for part in RECORDERS))
        for kind in recorded_kinds(source) - VALUES
    }
    assert not unknown, f"recorded kinds that are not OpKind members: {sorted(unknown)}"


def test_the_gates_name_kinds_only_through_opkind_members():
    bare = {
        f"{path.name}: {kind!r}" for path, source in sources(GATES_DIR) for kind in bare_kinds_in_gate_reads(source)
    }
    assert not bare, f"a gate reads a kind as a bare string: {sorted(bare)}"
    for path, source in sources(GATES_DIR):
        typos = members_named(source, "OpKind") - set(OpKind.__members__)
        assert not typos, f"{path.name} names OpKind.{', OpKind.'.join(sorted(typos))}, not members"


def test_the_runner_and_the_workload_record_kinds_only_through_opkind_members():
    """Scenario.call / read, Recorder.invoke, read_events, wait_for_count, ... in harness/runner,
    harness/workload and the chaos runner name their kind as OpKind.NAME (Recorder.invoke also
    refuses a string that is not a member, at run time)."""
    bare = {
        f"{path.relative_to(HARNESS)}: {kind!r}"
        for path, source in sources(*(HARNESS / part for part in RECORDERS))
        for kind in recorded_kinds(source, OP_CALLS)
    }
    assert not bare, f"a kind recorded as a bare string: {sorted(bare)}"
    for path, source in sources(*(HARNESS / part for part in RECORDERS)):
        typos = members_named(source, "OpKind") - set(OpKind.__members__)
        assert not typos, f"{path.name} names OpKind.{', OpKind.'.join(sorted(typos))}, not members"


def test_every_opkind_is_recorded_or_read_somewhere():
    recorded = set().union(*(recorded_kinds(source) for _, source in sources(*(HARNESS / part for part in RECORDERS))))
    recorded |= {
        OpKind[name].value
        for _, source in sources(*(HARNESS / part for part in RECORDERS))
        for name in members_named(source, "OpKind")
        if name in OpKind.__members__
    }
    read = set().union(*(members_named(source, "OpKind") for _, source in sources(GATES_DIR)))
    idle = [k.name for k in OpKind if k.value not in recorded and k.name not in read]
    assert not idle, f"OpKind members neither recorded by the runner nor read by a gate: {idle}"


def test_every_kind_a_gate_asks_the_history_for_is_an_opkind(monkeypatch: pytest.MonkeyPatch):
    asked: set[str] = set()
    original = History.ops_of

    def ops_of(self: History, *kinds: str) -> list[Any]:
        asked.update(kinds)
        return original(self, *kinds)

    monkeypatch.setattr(History, "ops_of", ops_of)
    for cases in CASES.values():
        for case in cases:
            evaluate_gate(case.gate, case.history)
    assert asked, "no gate asked the history for an op kind"
    assert asked <= VALUES, f"kinds asked for that are not OpKind members: {sorted(asked - VALUES)}"


def _leaks(value: Any) -> list[Any]:
    if isinstance(value, OpKind):
        return [value]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _leaks(k) + _leaks(v)]
    if isinstance(value, (list, tuple, set)):
        return [x for v in value for x in _leaks(v)]
    return []


def test_no_opkind_member_reaches_a_gate_result():
    """Results are written to YAML, JSON and HTML: what a gate measures and says stays plain strings."""
    for cases in CASES.values():
        for case in cases:
            result = evaluate_gate(case.gate, case.history)
            assert not _leaks(result.measured) and type(result.detail) is str, (case.name, result.measured)
            json.dumps(result.to_json())


def test_every_detail_key_a_gate_reads_is_in_the_opdetail_contract():
    """The runner's details are checked by mypy (Scenario.call / read and Recorder.invoke take an
    OpDetail); the gates' reads through detail_of are checked here."""
    known = set(OpDetail.__optional_keys__) | set(OpDetail.__required_keys__)
    read = {
        f"{path.name}: {key!r}" for path, source in sources(GATES_DIR) for key in keys_read(source, "detail_of") - known
    }
    assert not read, f"detail keys a gate reads that no op records (OpDetail): {sorted(read)}"
    assert set().union(*(keys_read(source, "detail_of") for _, source in sources(GATES_DIR))), "no detail read found"
