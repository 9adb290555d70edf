import pytest

from toolkit.fileio import TableError, atomic_write, read_table, write_table


def test_write_then_read_sorted_c_locale(tmp_path):
    path = tmp_path / "t"
    write_table(path, {"b": "2", "B": "1", "a": "x y  z"})
    assert path.read_text().splitlines() == ["B 1", "a x y  z", "b 2"]
    assert read_table(path) == {"B": "1", "a": "x y  z", "b": "2"}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"a 1\na 2\n", "t:2: duplicate key 'a' (first on line 1)"),
        (b"a 1\n\nb 2\n", "t:2: empty line"),
        (b"a 1\nb\n", "t:2: 'b' has no value"),
        (b"a 1\nb \xff\n", "t:2: not valid UTF-8"),
    ],
)
def test_malformed_tables_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "t"
    path.write_bytes(content)
    with pytest.raises(TableError) as err:
        read_table(path)
    assert message in str(err.value)


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "t"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half")
            raise RuntimeError("crash")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]


def test_write_rejects_keys_with_whitespace(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        write_table(tmp_path / "t", {"a b": "1"})
    assert not (tmp_path / "t").exists()
