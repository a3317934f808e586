"""harness.inputs: capped reads of regular files only, JSON that never crashes, printable text."""

import os

import pytest

from harness.inputs import InputError, parse_json, printable, read_capped, read_json, unprintable


def test_a_file_within_the_cap_is_read(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"x" * 100)
    assert read_capped(path, 100) == b"x" * 100


def test_a_file_over_the_cap_is_refused_naming_it(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"x" * 101)
    with pytest.raises(InputError, match=r"plan.yaml: the plan is larger than 100 bytes"):
        read_capped(path, 100, "the plan")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="a FIFO"):
        read_capped(fifo, 1000)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused(device):
    with pytest.raises(InputError, match="a device"):
        read_capped(device, 1000)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_capped(tmp_path, 1000)


def test_a_symlink_out_of_the_folder_is_refused_one_inside_is_read(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (tmp_path / "elsewhere.json").write_text("{}")
    (folder / "results.json").write_text("{}")
    (folder / "out.json").symlink_to(tmp_path / "elsewhere.json")
    (folder / "in.json").symlink_to(folder / "results.json")
    with pytest.raises(InputError, match="outside"):
        read_capped(folder / "out.json", 1000, folder=folder)
    assert read_capped(folder / "in.json", 1000, folder=folder) == b"{}"


def test_a_missing_file_is_left_for_the_caller_to_word(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "none", 10)


@pytest.mark.parametrize(
    "data, says",
    [
        (b"\xff{}", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
        (b"1e999", "too large"),
        (b"NaN", "not a JSON number"),
        (b"{", "not JSON"),
        (b"9" * 5000, "not JSON"),
    ],
)
def test_json_that_is_not_a_record_is_an_input_error(data, says):
    with pytest.raises(InputError, match=says):
        parse_json(data, "results.json")


def test_read_json_reads_a_record(tmp_path):
    (tmp_path / "r.json").write_text('{"a": [1, 2.5]}')
    assert read_json(tmp_path / "r.json", 1000, "results") == {"a": [1, 2.5]}


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("bell\x07 del\x7f nel\x85", "bell\\x07 del\\x7f nel\\x85"),
        ("CHG\u202e123", "CHG\\u202e123"),
        ("line\u2028sep", "line\\u2028sep"),
        ("plain text, é and ü", "plain text, é and ü"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on(raw, shown):
    assert printable(raw) == shown


def test_printable_shortens_to_the_limit():
    assert printable("x" * 50, limit=10) == "xxxxxxx..."


def test_unprintable_names_the_first_hidden_character():
    assert unprintable("CHG\u202e001") == "\\u202e"
    assert unprintable("CHG0012345") is None


def test_a_symlink_loop_is_refused_in_one_line(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "a")
    for folder in (None, tmp_path):
        with pytest.raises(InputError, match="leads to itself"):
            read_capped(tmp_path / "a", 10, "the manifest", folder=folder)
