"""Text and metadata out of one document file: .txt, .md, .html, .pdf.

Each reader takes the file's bytes and returns ``(metadata, text)`` or raises
:class:`BadFile` with a reason a person can act on. HTML keeps its structure as Markdown
(headings, list items, pipe tables) so pair generation sees the same shapes as in .md files.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import yaml

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
DOCUMENT_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_-]+)""")
#: libyaml's loader is ~20x faster; the pure-Python one gives the same result without it
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "tr", "dt", "dd")


class BadFile(Exception):
    """A file that cannot be loaded; ``str(exc)`` is the reason shown in the LoadReport."""


def decode(data: bytes, encoding: str = "utf-8") -> str:
    try:
        text = data.decode("utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        detail = (
            f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
            if isinstance(exc, UnicodeDecodeError)
            else str(exc)
        )
        raise BadFile(
            f"undecodable bytes: not valid {encoding} ({detail}); re-save the file as UTF-8"
        ) from None
    if "\x00" in text:
        raise BadFile("binary content (NUL bytes) in a text file; export it as text, Markdown or PDF")
    return text


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML between ``---`` fences at the top, and the rest of the text."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            try:
                meta = yaml.load("\n".join(lines[1:end]), Loader=_YAML_LOADER) or {}
            except yaml.YAMLError as exc:
                raise BadFile(f"invalid front matter YAML: {str(exc).splitlines()[0]}") from None
            if not isinstance(meta, dict):
                raise BadFile("front matter must be a mapping of key: value lines")
            return meta, "\n".join(lines[end + 1 :])
    raise BadFile("front matter opened with '---' is never closed; add a closing '---' line")


def read_text(data: bytes) -> tuple[dict[str, Any], str]:
    meta, body = front_matter(decode(data))
    title = next((line[2:].strip() for line in body.splitlines() if line.startswith("# ")), None)
    if title and "title" not in meta:
        meta["title"] = title
    return meta, body.strip()


def read_html(data: bytes) -> tuple[dict[str, Any], str]:
    from bs4 import BeautifulSoup

    declared = _CHARSET.search(data[:4096])
    text = decode(data, declared.group(1).decode() if declared else "utf-8")
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    meta: dict[str, Any] = {}
    for m in soup.find_all("meta"):
        if m.get("name") and m.get("content"):
            meta[m["name"].strip().lower().replace("-", "_")] = m["content"].strip()
    if soup.title and soup.title.get_text(strip=True):
        meta["title"] = soup.title.get_text(strip=True)
    elif soup.h1:
        meta["title"] = soup.h1.get_text(" ", strip=True)
    lines: list[str] = []
    for el in soup.find_all(_BLOCKS):
        if el.find_parent(_BLOCKS):
            continue
        if el.name == "tr":
            cells = [c.get_text(" ", strip=True) for c in el.find_all(["th", "td"])]
            row = "| " + " | ".join(cells) + " |"
            if el.find_previous_sibling("tr") is None:  # a table's first row is its header
                lines.append(row + "\n|" + "---|" * len(cells))
            else:  # rows of one table stay on consecutive lines, as Markdown needs
                lines[-1] += "\n" + row
            continue
        words = el.get_text(" ", strip=True)
        if not words:
            continue
        if el.name[0] == "h":
            words = "#" * int(el.name[1]) + " " + words
        elif el.name == "li":
            words = "- " + words
        lines.append(words)
    body = "\n\n".join(lines) if lines else soup.get_text("\n", strip=True)
    return meta, body.strip()


def read_pdf(data: bytes) -> tuple[dict[str, Any], str]:
    from pypdf import PdfReader

    # pypdf logs every repair it attempts; the reason we report is the one that matters
    pdf_log = logging.getLogger("pypdf")
    level = pdf_log.level
    pdf_log.setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise BadFile("encrypted PDF; save an unencrypted copy")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info = reader.metadata
        title = info.title if info and info.title else None
    except BadFile:
        raise
    except Exception as exc:  # pypdf raises many types on damaged files; all mean the same here
        raise BadFile(f"unparsable PDF ({type(exc).__name__}: {exc}); re-export it") from None
    finally:
        pdf_log.setLevel(level)
    meta: dict[str, Any] = {"title": str(title)} if title else {}
    text = "\n\n".join(p for p in pages if p)
    if not text and pages:
        raise BadFile("PDF has no extractable text (a scan?); run OCR and load the text")
    return meta, text


def read_document(suffix: str, data: bytes) -> tuple[dict[str, Any], str]:
    if suffix in HTML_SUFFIXES:
        return read_html(data)
    if suffix in PDF_SUFFIXES:
        return read_pdf(data)
    return read_text(data)
