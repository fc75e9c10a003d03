"""CoNLL-U reader/writer: every construct of the format, exact round trips, malformed lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.data.conllu import (
    CoNLLUError,
    Row,
    format_conllu,
    parse_conllu,
    read_conllu,
    sentence_from_words,
    unspecified,
    write_conllu,
)

DATA = Path(__file__).parent / "data" / "conllu"
ROW = "1\tOne\tone\tNUM\tCD\t_\t0\troot\t_\t_"


def test_constructs_fixture():
    s1, s2, s3 = read_conllu(DATA / "constructs.conllu")
    assert s1.comments == ("# newdoc id = fixture-1", "# sent_id = s1", "# text = We didn't go.")
    assert [r.kind for r in s1.rows] == ["word", "multiword", "word", "word", "word", "word"]
    assert s1.rows[1].id == "2-3"
    assert s1.rows[1].form == "didn't"
    assert s1.forms() == ["We", "did", "n't", "go", "."]  # the range is not a word
    assert s1.upos() == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert s1.rows[3].misc == "SpaceAfter=No"
    assert [r.kind for r in s2.rows].count("empty") == 1
    assert s2.rows[2].id == "2.1"
    assert s2.forms() == ["Sue", "likes", "tea", "and", "Tom", "coffee"]  # no empty node
    assert s2.rows[0].deps == "2:nsubj|2.1:nsubj"
    assert s3.comments == ("# sent_id = s3",)
    assert s3.forms() == ["_", "unknown"]  # a literal underscore FORM is kept
    assert s3.upos() == ["SYM", "_"]
    assert unspecified(s3.rows[1].lemma)
    assert not unspecified(s3.rows[0].upos)
    assert all(unspecified(v) for v in s3.rows[1][2:])


def test_round_trip_is_exact(tmp_path):
    src = DATA / "constructs.conllu"
    sentences = read_conllu(src)
    assert format_conllu(sentences) == src.read_text(encoding="utf-8")
    out = tmp_path / "out.conllu"
    write_conllu(sentences, out)
    assert out.read_bytes() == src.read_bytes()
    assert read_conllu(out) == sentences


def test_with_upos_changes_only_word_rows():
    s1 = read_conllu(DATA / "constructs.conllu")[0]
    t = s1.with_upos(["A", "B", "C", "D", "E"])
    assert t.upos() == ["A", "B", "C", "D", "E"]
    assert t.rows[1] == s1.rows[1]  # the multiword range keeps its '_'
    assert t.comments == s1.comments
    assert [r.form for r in t.rows] == [r.form for r in s1.rows]
    with pytest.raises(ValueError, match="one tag per word"):
        s1.with_upos(["A"])


def test_no_final_blank_line_and_crlf_are_accepted():
    text = f"# c\r\n{ROW}\r\n2\ttwo\ttwo\tNUM\tCD\t_\t1\tdep\t_\t_"
    (s,) = parse_conllu(text)
    assert s.forms() == ["One", "two"]
    assert s.comments == ("# c",)


def test_several_blank_lines_between_sentences():
    (a, b) = parse_conllu(f"{ROW}\n\n\n{ROW}\n\n")
    assert a == b


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        (f"{ROW}\n2\ttwo\ttwo\n", 2, "expected 10 tab-separated fields"),
        ("x\tOne\tone\tNUM\tCD\t_\t0\troot\t_\t_\n", 1, "ID must be"),
        (f"{ROW}\n3\tb\tb\tX\t_\t_\t1\tdep\t_\t_\n", 2, "out of order; expected 2"),
        ("2\tb\tb\tX\t_\t_\t0\troot\t_\t_\n", 1, "out of order; expected 1"),
        (f"{ROW}\n3-4\tab\t_\t_\t_\t_\t_\t_\t_\t_\n", 2, "must start at the next word"),
        (f"{ROW}\n2-2\tab\t_\t_\t_\t_\t_\t_\t_\t_\n", 2, "end after it"),
        (
            f"{ROW}\n2-3\tab\t_\t_\t_\t_\t_\t_\t_\t_\n2\ta\ta\tX\t_\t_\t1\tdep\t_\t_\n",
            2,
            "reaches word 3; the sentence has 2",
        ),
        (f"{ROW}\n3.1\te\t_\t_\t_\t_\t_\t_\t_\t_\n", 2, "empty node 3.1 must follow word 3"),
        (f"{ROW}\n# late\n", 2, "comment line inside a sentence"),
        ("1\tOne\tone\tNUM\tCD\t_\tx\troot\t_\t_\n", 1, "HEAD must be"),
        ("1\tOne\tone\t\tCD\t_\t0\troot\t_\t_\n", 1, "UPOS is empty"),
        ("1-2\tab\t_\t_\t_\t_\t_\t_\t_\t_\n\n", 1, "no word"),
        ("# only a comment\n\n", 1, "comment lines with no sentence"),
        ("0.1\te\t_\t_\t_\t_\t_\t_\t_\t_\n\n", 1, "no word"),
    ],
)
def test_malformed_lines_name_the_file_and_line(text, line, match):
    with pytest.raises(CoNLLUError, match=match) as info:
        parse_conllu(text, source="x.conllu")
    assert str(info.value).startswith(f"x.conllu:{line}: ")


@pytest.mark.parametrize(("name", "line"), [("bad_fields", 3), ("bad_order", 2)])
def test_malformed_fixture_files(name, line):
    path = DATA / f"{name}.conllu"
    with pytest.raises(CoNLLUError) as info:
        read_conllu(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert isinstance(info.value, ValueError)


def test_non_utf8_file_is_named(tmp_path):
    f = tmp_path / "latin.conllu"
    f.write_bytes(ROW.replace("One", "Caf\xe9").encode("latin-1") + b"\n\n")
    with pytest.raises(CoNLLUError, match=r"latin\.conllu: not UTF-8"):
        read_conllu(f)


def test_sentence_from_words():
    s = sentence_from_words(["Hello", "world", "!"], sent_id="7")
    assert s.comments == ("# sent_id = 7", "# text = Hello world !")
    assert s.rows[2] == Row("3", "!", "_", "_", "_", "_", "_", "_", "_", "_")
    assert parse_conllu(format_conllu([s])) == [s]
    with pytest.raises(ValueError, match="whitespace"):
        sentence_from_words(["a b"])
    with pytest.raises(ValueError, match="empty"):
        sentence_from_words([])
