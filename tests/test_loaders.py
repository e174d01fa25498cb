"""Document loaders: every format, metadata precedence, and per-file reports of bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmforge.errors import ConfigError, DataError, NotFoundError
from llmforge.loaders import COLUMNS, LoadError, load_documents


def make_pdf(text_lines: list[str], title: str | None = None, encrypt: str | None = None) -> bytes:
    """A real one-page PDF with extractable text, written with pypdf itself."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
    )
    ops = "BT /F1 12 Tf 72 720 Td " + " 0 -16 Td ".join(f"({line}) Tj" for line in text_lines) + " ET"
    stream = DecodedStreamObject()
    stream.set_data(ops.encode("latin-1"))
    page.replace_contents(stream)
    if title:
        writer.add_metadata({"/Title": title})
    if encrypt:
        writer.encrypt(user_password=encrypt, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "eng").mkdir(parents=True)
    (root / "eng" / "helix.md").write_text(
        "---\ntitle: Project Helix\ndepartment: Engineering\nupdated_at: 2026-03-14\n---\n"
        "# Project Helix\n\n- **Owner:** Dana Kim\n",
        encoding="utf-8",
    )
    (root / "notes.txt").write_text("Plain notes without metadata.\n", encoding="utf-8")
    (root / "policy.html").write_text(
        "<html><head><title>PTO policy</title><meta name='department' content='hr'>"
        "<meta name='updated_at' content='2026-01-02T09:30:00+00:00'><style>p{}</style></head><body>"
        "<h1>PTO policy</h1><p>Employees get 25 days.</p><ul><li>Approver: your manager</li></ul>"
        "<table><tr><th>Level</th><th>Days</th></tr><tr><td>L1</td><td>25</td></tr>"
        "<tr><td>L5</td><td>27</td></tr></table><script>track()</script></body></html>",
        encoding="utf-8",
    )
    (root / "report.pdf").write_bytes(make_pdf(["Quarterly report", "Revenue: $48.2M"], title="Q3 report"))
    (root / "report.pdf.meta.yaml").write_text(
        "department: finance\nupdated_at: 2025-10-20\n", encoding="utf-8"
    )
    return root


def test_folder_of_every_document_format(good: Path):
    table, report = load_documents(good, department="ops")
    assert report.ok and table.column_names == list(COLUMNS)
    rows = {r["document_id"]: r for r in table.to_pylist()}
    assert list(rows) == sorted(rows) == ["eng/helix", "notes", "policy", "report"]
    helix = rows["eng/helix"]
    assert (helix["title"], helix["department"], helix["updated_at"], helix["source"]) == (
        "Project Helix",
        "engineering",
        "2026-03-14",
        "eng/helix.md",
    )
    assert not helix["content"].startswith("---") and "Dana Kim" in helix["content"]
    assert rows["notes"]["department"] == "ops" and rows["notes"]["title"] == "notes"
    assert dt.datetime.fromisoformat(rows["notes"]["updated_at"].replace("Z", "+00:00"))
    html = rows["policy"]
    assert (html["title"], html["department"], html["updated_at"]) == (
        "PTO policy",
        "hr",
        "2026-01-02T09:30:00+00:00",
    )
    assert "track()" not in html["content"] and "p{}" not in html["content"]
    assert "# PTO policy" in html["content"] and "- Approver: your manager" in html["content"]
    assert "| Level | Days |\n|---|---|\n| L1 | 25 |\n| L5 | 27 |" in html["content"]
    pdf = rows["report"]
    assert (pdf["title"], pdf["department"], pdf["updated_at"]) == ("Q3 report", "finance", "2025-10-20")
    assert "Revenue: $48.2M" in pdf["content"]
    assert sorted(report.loaded) == ["eng/helix.md", "notes.txt", "policy.html", "report.pdf"]


def test_html_tables_become_pairs(good: Path):
    from llmforge.pairs import create_training_pair

    table, _ = load_documents(good / "policy.html")
    pairs = create_training_pair(table.column("content")[0].as_py(), table.column("title")[0].as_py())
    by_prompt = {p["prompt"]: p["response"] for p in pairs}
    assert by_prompt["What is the days for L5 in PTO policy?"] == "The days for L5 in PTO policy is 27."
    assert by_prompt["Who is the approver of PTO policy?"] == "The approver of PTO policy is your manager."


def test_metadata_precedence_front_matter_then_sidecar_then_argument(tmp_path: Path):
    (tmp_path / "a.md").write_text("---\ndepartment: sales\n---\nText a.\n", encoding="utf-8")
    (tmp_path / "a.md.meta.json").write_text(
        '{"department": "finance", "title": "From sidecar"}', encoding="utf-8"
    )
    (tmp_path / "b.md").write_text("Text b.\n", encoding="utf-8")
    (tmp_path / "b.md.meta.yaml").write_text("department: hr\ndocument_id: policies/b\n", encoding="utf-8")
    (tmp_path / "c.md").write_text("Text c.\n", encoding="utf-8")
    rows = {r["content"]: r for r in load_documents(tmp_path, department="all")[0].to_pylist()}
    assert (rows["Text a."]["department"], rows["Text a."]["title"]) == ("sales", "From sidecar")
    assert (rows["Text b."]["department"], rows["Text b."]["document_id"]) == ("hr", "policies/b")
    assert rows["Text c."]["department"] == "all"


BAD_FILES = {
    "latin1.txt": ("caf\xe9 au lait".encode("latin-1"), "undecodable bytes"),
    "empty.md": (b"", "empty file"),
    "only-front-matter.md": (b"---\ntitle: x\n---\n\n", "no text"),
    "huge.txt": (b"x" * 5000, "too large"),
    "binary.txt": (b"abc\x00\x01def", "binary content"),
    "broken.pdf": (None, "unparsable PDF"),
    "image.png": (b"\x89PNG....", "unsupported file type"),
    "bad-yaml.md": (b"---\ntitle: [unclosed\n---\nbody\n", "invalid front matter"),
    "bad-date.md": (b"---\nupdated_at: last week\n---\nbody\n", "not an ISO-8601"),
}


@pytest.fixture
def mixed(good: Path) -> Path:
    pdf = make_pdf(["Fine text"])
    for name, (data, _) in BAD_FILES.items():
        (good / name).write_bytes(pdf[: len(pdf) // 3] if data is None else data)
    return good


def test_bad_files_are_reported_and_skipped(mixed: Path):
    table, report = load_documents(mixed, max_bytes=4000)
    reasons = {p.path: p.reason for p in report.problems}
    assert set(reasons) == set(BAD_FILES)
    for name, (_, reason) in BAD_FILES.items():
        assert reason in reasons[name], (name, reasons[name])
    assert "0xe9 at offset 3" in reasons["latin1.txt"] and "UTF-8" in reasons["latin1.txt"]
    assert sorted(table.column("document_id").to_pylist()) == ["eng/helix", "notes", "policy", "report"]
    assert not report.ok and "9 problem(s)" in report.summary() == str(report)


def test_on_error_raise_rejects_the_whole_load(mixed: Path):
    with pytest.raises(LoadError) as info:
        load_documents(mixed, max_bytes=4000, on_error="raise")
    assert isinstance(info.value, DataError)
    assert len(info.value.report.problems) == len(BAD_FILES)
    assert "latin1.txt" in str(info.value) and "on_error='skip'" in str(info.value)


def test_encrypted_and_textless_pdfs(tmp_path: Path):
    (tmp_path / "locked.pdf").write_bytes(make_pdf(["secret"], encrypt="pw"))
    (tmp_path / "scan.pdf").write_bytes(make_pdf([]))
    _, report = load_documents(tmp_path)
    reasons = {p.path: p.reason for p in report.problems}
    assert "encrypted" in reasons["locked.pdf"] and "no extractable text" in reasons["scan.pdf"]


def test_duplicate_document_ids_are_reported(tmp_path: Path):
    (tmp_path / "a.md").write_text("---\ndocument_id: same\n---\nfirst\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("---\ndocument_id: same\n---\nsecond\n", encoding="utf-8")
    table, report = load_documents(tmp_path)
    assert table.column("content").to_pylist() == ["first"]
    assert report.problems[0].path == "b.md" and "duplicate document_id 'same'" in report.problems[0].reason


def test_jsonl_rows_report_per_line(tmp_path: Path):
    lines = [
        json.dumps({"id": 7, "text": "Owner: Dana", "department": "Sales", "title": "Seven"}),
        "{not json",
        json.dumps({"id": 8, "text": "  "}),
        "[1, 2]",
        "",
        json.dumps({"id": 9, "text": "nine"}),
    ]
    (tmp_path / "docs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    table, report = load_documents(tmp_path / "docs.jsonl", department="ops")
    assert [(r["document_id"], r["department"], r["title"], r["source"]) for r in table.to_pylist()] == [
        ("7", "sales", "Seven", "docs.jsonl#1"),
        ("9", "ops", None, "docs.jsonl#6"),
    ]
    reasons = {p.path: p.reason for p in report.problems}
    assert set(reasons) == {"docs.jsonl#2", "docs.jsonl#3", "docs.jsonl#4"}
    assert "invalid JSON" in reasons["docs.jsonl#2"] and "not a JSON object" in reasons["docs.jsonl#4"]


def test_csv_without_id_gets_path_keys_and_reports_ragged_rows(tmp_path: Path):
    (tmp_path / "kb.csv").write_text(
        'content,department,updated_at\n"Line, with comma",hr,2026-01-01\n'
        'short row\n"Second",finance,2026-02-01\n',
        encoding="utf-8",
    )
    table, report = load_documents(tmp_path)
    assert table.column("document_id").to_pylist() == ["kb#2", "kb#4"]
    assert table.column("content").to_pylist() == ["Line, with comma", "Second"]
    assert [(p.path, p.reason) for p in report.problems] == [("kb.csv#3", "has 1 fields, the header has 3")]


def test_parquet_with_timestamps_and_missing_text_column(tmp_path: Path):
    when = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    pq.write_table(
        pa.table({"document_id": ["p1"], "body": ["Parquet text"], "updated_at": [when]}),
        tmp_path / "a.parquet",
    )
    pq.write_table(pa.table({"document_id": ["p2"], "words": ["no text column"]}), tmp_path / "b.parquet")
    (tmp_path / "c.parquet").write_bytes(b"PAR1 garbage")
    table, report = load_documents(tmp_path, department="eng")
    assert table.to_pylist() == [
        {
            "document_id": "p1",
            "title": None,
            "department": "eng",
            "source": "a.parquet#1",
            "updated_at": "2026-05-01T12:00:00+00:00",
            "content": "Parquet text",
        }
    ]
    reasons = {p.path: p.reason for p in report.problems}
    assert "no text column" in reasons["b.parquet"] and "words" in reasons["b.parquet"]
    assert "unparsable Parquet" in reasons["c.parquet"]


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(NotFoundError, match="no file or folder"):
        load_documents(tmp_path / "missing")
    with pytest.raises(ConfigError, match="on_error"):
        load_documents(tmp_path, on_error="ignore")
    with pytest.raises(ConfigError, match="max_bytes"):
        load_documents(tmp_path, max_bytes=0)
    with pytest.raises(DataError, match="no files under"):
        load_documents(tmp_path)


def test_hidden_files_are_ignored_and_ids_are_stable(good: Path):
    (good / ".DS_Store").write_bytes(b"\x00\x01")
    (good / ".git").mkdir()
    (good / ".git" / "HEAD").write_text("ref", encoding="utf-8")
    first, report = load_documents(good)
    second, _ = load_documents(good)
    assert report.ok and first.drop_columns(["updated_at"]).equals(second.drop_columns(["updated_at"]))
    assert first.column("document_id").to_pylist() == ["eng/helix", "notes", "policy", "report"]
