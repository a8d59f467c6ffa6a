"""Reading assay.yaml within bounds: bombs, deep nesting, duplicate keys, non-finite numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.config import load_spec
from assay.config.safe_yaml import MAX_BYTES, MAX_DEPTH, parse_yaml, read_yaml
from assay.errors import ConfigError

HEAD = "task: binary\ndata:\n  source: d.csv\n  target: y\n"

#: nine levels of nine aliases: 9**9 (387 million) strings once expanded
BILLION_LAUGHS = 'lol0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"lol{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assay.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_alias_bomb_is_refused_with_a_short_message(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + BILLION_LAUGHS)
    with pytest.raises(ConfigError, match=r"line 6, column 12: aliases are not supported") as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message and "'*a0'" in message
    assert "Write the value out in full" in message
    assert len(message) < 300, message
    assert info.value.fields == {"key": None, "line": 6, "column": 12}


def test_a_merge_key_is_an_alias_too(tmp_path: Path) -> None:
    text = "base: &b {source: d.csv}\ntask: binary\ndata:\n  <<: *b\n  target: y\n"
    with pytest.raises(ConfigError, match=r"line 4, column 7: aliases are not supported"):
        load_spec(_write(tmp_path, text))


def test_an_anchor_without_alias_is_harmless(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, "task: binary\ndata: &d {source: d.csv, target: y}\n"))
    assert spec.data.target == "y"


def test_deep_nesting_is_refused_before_the_stack_runs_out(tmp_path: Path) -> None:
    text = HEAD + "x: " + "[" * 20_000 + "]" * 20_000 + "\n"
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels deep") as info:
        load_spec(_write(tmp_path, text))
    # refused at the first bracket too many, not after scanning the rest of the line
    assert info.value.fields["line"] == 5
    assert info.value.fields["column"] == len("x: ") + MAX_DEPTH + 1
    assert len(str(info.value)) < 300
    block = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 5))
    with pytest.raises(ConfigError, match="nested more than"):
        parse_yaml(block)


def test_nesting_within_the_limit_parses() -> None:
    depth = MAX_DEPTH - 2  # the top mapping and the innermost scalar are levels too
    document = parse_yaml("x: " + "[" * depth + "1" + "]" * depth)
    value = document.data["x"]
    for _ in range(depth):
        value = value[0]
    assert value == 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            HEAD + "task: regression\n",
            r"line 5, column 1: key 'task' appears twice \(lines 1 and 5\)",
        ),
        (
            "task: binary\ndata:\n  source: d.csv\n  target: y\n  source: e.csv\n",
            r"line 5, column 3: key 'data.source' appears twice \(lines 3 and 5\)",
        ),
        (
            HEAD + "fairness:\n  limits: {disparate_impact_ratio: '>= 0.8', "
            "disparate_impact_ratio: '>= 0.9'}\n",
            r"key 'fairness.limits.disparate_impact_ratio' appears twice \(lines 6 and 6\)",
        ),
    ],
)
def test_duplicate_keys_are_refused_naming_both_lines(
    tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_spec(_write(tmp_path, text))
    assert "keep only the last one" in str(info.value)


def test_equal_keys_in_different_sections_are_fine(tmp_path: Path) -> None:
    text = HEAD + "split: {test_size: 0.25}\nserving: {shadow: true}\nmonitoring: {window: 500}\n"
    spec = load_spec(_write(tmp_path, text))
    assert spec.split.test_size == 0.25 and spec.monitoring.window == 500


@pytest.mark.parametrize(
    ("section", "key", "line"),
    [
        ("serving:\n  latency_p99_ms: .inf\n", "serving.latency_p99_ms", 6),
        ("split:\n  test_size: .nan\n", "split.test_size", 6),
        ("monitoring:\n  psi_significant: -.inf\n", "monitoring.psi_significant", 6),
        ("monitoring:\n  window: .inf\n", "monitoring.window", 6),
        ("seed: .nan\n", "seed", 5),
        ("serving:\n  latency_p99_ms: 'nan'\n", "serving.latency_p99_ms", 6),
        ("retrain:\n  min_improvement: .INF\n", "retrain.min_improvement", 6),
    ],
)
def test_non_finite_numbers_are_refused_naming_key_and_line(
    tmp_path: Path, section: str, key: str, line: int
) -> None:
    path = _write(tmp_path, HEAD + section)
    with pytest.raises(ConfigError, match=rf"line {line}: {key}: must be a finite number") as info:
        load_spec(path)
    assert info.value.key == key and info.value.fields["line"] == line


def test_an_infinite_gap_names_the_key_once(tmp_path: Path) -> None:
    text = "task: binary\ndata: {source: d.csv, target: y, time: t}\nsplit: {gap: .inf}\n"
    with pytest.raises(ConfigError, match=r"line 3: split.gap: .*must be a finite number") as info:
        load_spec(_write(tmp_path, text))
    assert "split.gap.float" not in str(info.value) and "more:" not in str(info.value)


def test_messages_never_echo_a_huge_value(tmp_path: Path) -> None:
    huge = "x" * 200_000
    for text in (
        HEAD + f"split: {{strategy: {huge}}}\n",
        HEAD + f"serving: {{latency_p99_ms: {huge}}}\n",
        HEAD + f"name: [{huge}]\n",
        HEAD + f"slices: {{a: {huge}}}\n",
    ):
        with pytest.raises(ConfigError) as info:
            load_spec(_write(tmp_path, text))
        assert len(str(info.value)) < 600, str(info.value)[:1000]
        assert "x" * 100 not in str(info.value)


def test_many_problems_are_counted_not_all_listed(tmp_path: Path) -> None:
    text = HEAD + "".join(f"unknown{i}: 1\n" for i in range(500))
    match = r"unknown0: unknown key.*and 499 more.*497 not shown"
    with pytest.raises(ConfigError, match=match) as info:
        load_spec(_write(tmp_path, text))
    assert "unknown499" not in str(info.value)


def test_an_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "name: " + "a" * (MAX_BYTES + 10) + "\n")
    with pytest.raises(ConfigError, match=r"is larger than 1,000,000 bytes") as info:
        load_spec(path)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("task: binary\ndata:\n\tsource: d.csv\n".encode(),
         r"line 3, column 1: is not valid YAML: found character '\\t'.*replace the tab"),
        ('task: binary\ndata:\n  source: "d.csv\n  target: y\n'.encode(),
         r"line 5, column 1: is not valid YAML: .*quoted scalar that starts at line 3, column 11"),
        (b"task: binary\ndata: {source: d.csv, target: y\n",
         r"line 3, column 1: is not valid YAML"),
        (b"task: binary\n\x01\n", r"line 2: contains a character YAML does not allow \(U\+0001\)"),
        ("task: binary\n".encode("utf-16"), r"is UTF-16 text, not UTF-8. Re-save it as UTF-8"),
        (b"task: binary\nname: caf\xe9\n", r"is not UTF-8 text \(byte 22, line 2\)"),
    ],
)
def test_unreadable_yaml_names_file_line_and_fix(
    tmp_path: Path, content: bytes, match: str
) -> None:
    path = tmp_path / "assay.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as info:
        read_yaml(path)
    assert str(path) in str(info.value)
    assert info.value.fix


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "assay.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + HEAD.encode())
    assert load_spec(path).task == "binary"


def test_validation_errors_carry_the_line_of_their_key(tmp_path: Path) -> None:
    text = HEAD + "split:\n  strategy: sideways\n"
    with pytest.raises(ConfigError, match=r"assay.yaml, line 6: split.strategy: is 'sideways'"):
        load_spec(_write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"assay.yaml, line 2: data.target: is required"):
        load_spec(_write(tmp_path, "task: binary\ndata:\n  source: d.csv\n"))
    with pytest.raises(ConfigError, match=r"line 7: slices\[1\]: input should be a valid string"):
        load_spec(_write(tmp_path, HEAD + "slices:\n- a\n- [b]\n"))
