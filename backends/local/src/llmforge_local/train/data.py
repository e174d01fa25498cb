"""Training rows -> token examples -> packed micro-batches.

Instruction and chat tasks are formatted with the model's chat template and learn only the
assistant tokens (prompt tokens get label -100). Continued pre-training learns every token
of the raw text. Examples are packed several to a row: ``position_ids`` restart at 0 for
each example, which makes transformers' SDPA mask block-diagonal, so packed examples do not
attend to each other and no compute is spent on padding.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmforge.errors import DataError, NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa

IGNORE = -100
TEXT_COLUMNS = ("text", "content")


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]

    @property
    def n_loss_tokens(self) -> int:
        return sum(1 for x in self.labels[1:] if x != IGNORE)


def read_table(forge: Any, name: str, user: str | None) -> tuple[pa.Table, int]:
    """The rows of ``name`` (with ``user``'s row filters) and the Delta version read."""
    t = forge.table(name, user=user)
    if not t.exists:
        raise NotFoundError(
            f"training table {name!r} does not exist; create it first, e.g. "
            "forge.table(name).create(llmforge.pairs.pairs_table(documents))"
        )
    version = t.version
    data = t.read(version=version)
    if data.num_rows == 0:
        raise DataError(
            f"training table {name!r} (version {version}) has no rows "
            f"{'visible to ' + user if user else ''}; add training pairs first"
        )
    return data, version


def required_columns(task_type: str) -> tuple[tuple[str, ...], ...]:
    """Alternative column sets a task can read (any one set suffices)."""
    if task_type == "CONTINUED_PRETRAIN":
        return (("text",), ("content",))
    if task_type == "CHAT_COMPLETION":
        return (("messages",), ("prompt", "response"))
    return (("prompt", "response"), ("messages",))


def build_examples(
    table: pa.Table, tokenizer: Any, task_type: str, max_seq_len: int, name: str = "training table"
) -> list[Example]:
    """Tokenise every row for ``task_type``; long examples are truncated (chunked for text).
    A prompt/response row with an empty prompt (pairs of kind ``raw``: a document's own text)
    is learned as plain text, so one governed pairs table can mix continued pre-training into
    instruction tuning."""
    options = required_columns(task_type)
    cols = next((c for c in options if all(x in table.column_names for x in c)), None)
    if cols is None:
        raise DataError(
            f"{name} has columns {table.column_names}, but {task_type} needs "
            f"{' or '.join(str(list(c)) for c in options)}"
        )
    if cols in (("text",), ("content",)):
        out = []
        for text in table.column(cols[0]).to_pylist():
            out.extend(_text_examples(tokenizer, text or "", max_seq_len))
    elif cols == ("messages",):
        out = [_chat_example(tokenizer, m or [], max_seq_len) for m in table.column("messages").to_pylist()]
    else:
        out = []
        for p, r in zip(
            table.column("prompt").to_pylist(), table.column("response").to_pylist(), strict=True
        ):
            if not (p or "").strip():  # a passage with no question (pairs of kind "raw"): plain text
                out.extend(_text_examples(tokenizer, r or "", max_seq_len))
                continue
            out.append(
                _chat_example(
                    tokenizer,
                    [{"role": "user", "content": p}, {"role": "assistant", "content": r or ""}],
                    max_seq_len,
                )
            )
    out = [e for e in out if e.n_loss_tokens > 0]
    if not out:
        raise DataError(f"{name}: no row has any token to learn from (empty responses/text?)")
    return out


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _chat_example(tokenizer: Any, messages: list[dict], max_seq_len: int) -> Example:
    """Loss on every assistant turn; the template is rendered per prefix so token boundaries
    match exactly what the model sees at inference time."""
    ids: list[int] = []
    labels: list[int] = []
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        prompt = _ids(
            tokenizer, tokenizer.apply_chat_template(messages[:i], add_generation_prompt=True, tokenize=False)
        )
        full = _ids(tokenizer, tokenizer.apply_chat_template(messages[: i + 1], tokenize=False))
        labels.extend([IGNORE] * (len(prompt) - len(ids)))
        labels.extend(full[len(prompt) :])
        ids = full
    if len(labels) < len(ids):
        labels.extend([IGNORE] * (len(ids) - len(labels)))
    return Example(ids[:max_seq_len], labels[:max_seq_len])


def _text_examples(tokenizer: Any, text: str, max_seq_len: int) -> list[Example]:
    ids = _ids(tokenizer, text) + [tokenizer.eos_token_id]
    return [
        Example(ids[i : i + max_seq_len], list(ids[i : i + max_seq_len]))
        for i in range(0, len(ids), max_seq_len)
        if len(ids[i : i + max_seq_len]) > 1
    ]


def split(examples: list, train_share: float, seed: int) -> tuple[list, list]:
    """Deterministic shuffle, then ``train_share`` for training and the rest held out
    (at least one example each side when there are two or more)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = round(len(order) * train_share)
    if len(order) >= 2:
        n_train = min(max(n_train, 1), len(order) - 1)
    return [examples[i] for i in order[:n_train]], [examples[i] for i in order[n_train:]]


def split_table(table: pa.Table, train_share: float, seed: int, name: str) -> tuple[pa.Table, pa.Table]:
    """:func:`split` on the rows of ``table``. One row trains with no held-out split (the job then
    skips held-out perplexity); an empty table is refused with what to do next."""
    import pyarrow as pa

    if table.num_rows == 0:
        raise DataError(f"{name} has no rows to train on; add training pairs first")
    train_idx, held_idx = split(list(range(table.num_rows)), train_share, seed)
    # an empty Python list would become a null-typed array, which take() refuses
    return tuple(table.take(pa.array(idx, type=pa.int64())) for idx in (train_idx, held_idx))


@dataclass
class Row:
    """One packed training row: several examples, positions restarting at each."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]


def pack(examples: list[Example], max_seq_len: int) -> list[Row]:
    """First-fit-decreasing packing into rows of at most ``max_seq_len`` tokens."""
    rows: list[Row] = []
    free: list[int] = []
    for e in sorted(examples, key=lambda e: -len(e.input_ids)):
        n = len(e.input_ids)
        slot = next((i for i, f in enumerate(free) if f >= n), None)
        if slot is None:
            rows.append(Row([], [], []))
            free.append(max_seq_len)
            slot = len(rows) - 1
        r = rows[slot]
        r.input_ids.extend(e.input_ids)
        # the first token of each example has no prediction from the previous example
        r.labels.extend([IGNORE] + e.labels[1:])
        r.position_ids.extend(range(n))
        free[slot] -= n
    return rows


def unpacked(examples: list[Example]) -> list[Row]:
    """One example per row, sorted by length so batches of neighbours pad little."""
    return [
        Row(e.input_ids, [IGNORE] + e.labels[1:], list(range(len(e.input_ids))))
        for e in sorted(examples, key=lambda e: len(e.input_ids))
    ]


#: micro-batch widths are rounded up to this many tokens
WIDTH_MULTIPLE = 32


def make_batches(
    rows: list[Row], batch_size: int, pad_id: int, multiple_of: int = WIDTH_MULTIPLE
) -> list[dict]:
    """Consecutive rows per micro-batch, right-padded to the longest row of the batch
    rounded up to ``multiple_of`` tokens.

    The rounding keeps the number of distinct tensor shapes small: every new matmul shape
    costs the CPU's oneDNN a kernel build (~4 ms each, dozens per step), which on packed
    rows of ever-different lengths outweighs the few padding tokens. Padding gets its own
    restarting positions (a separate block) and label -100.
    """
    import torch

    batches = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        longest = max(len(r.input_ids) for r in chunk)
        width = -(-longest // multiple_of) * multiple_of
        ids, labels, pos = [], [], []
        for r in chunk:
            pad = width - len(r.input_ids)
            ids.append(r.input_ids + [pad_id] * pad)
            labels.append(r.labels + [IGNORE] * pad)
            pos.append(r.position_ids + list(range(pad)))
        batches.append(
            {
                "input_ids": torch.tensor(ids),
                "labels": torch.tensor(labels),
                "position_ids": torch.tensor(pos),
                "num_tokens": torch.tensor(sum(len(r.input_ids) for r in chunk)),
            }
        )
    return batches
