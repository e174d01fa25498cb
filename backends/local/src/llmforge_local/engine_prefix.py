"""Prefix caching: a prompt's keys and values reused by a later prompt that starts the same way.

Chat prompts share long beginnings -- the chat template's system turn, a RAG prompt's
instructions -- whose keys and values are the same every time: position ``j``'s depend only
on tokens ``0..j`` and the adapter. The cache keeps them per block of :data:`BLOCK` prompt
tokens, keyed by the whole prefix up to the block's end, the adapter and a partition (the
caller, so one caller's prompts never speed up or reveal another's by their timing); a new
prompt copies its longest cached run of blocks into its slot and prefills only the rest.
Least recently used blocks go first once ``capacity`` tokens are held, so memory stays flat; a
prompt's blocks are marked used from its last to its first, so a beginning is evicted after
the blocks that continue it (a block is useless once one before it is gone).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

#: prompt tokens per cached block
BLOCK = 16


class PrefixCache:
    """Blocks of per-layer keys and values, ``(layers, kv_heads, BLOCK, head_dim)`` each."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity) // BLOCK  # in blocks
        self._blocks: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()
        self.hits = 0  # prompt tokens served from the cache
        self.lookups = 0  # prompt tokens looked up

    def __len__(self) -> int:
        return len(self._blocks)

    def clear(self) -> None:
        """Forget every block (keys and values computed by other weights are not these weights')."""
        self._blocks.clear()

    def _held(self, ids: list[int], adapter: int, part: Hashable) -> list[tuple]:
        """The keys of the cached blocks that begin ``ids``, in order; at least one token is left
        to prefill (its logits pick the first new token)."""
        keys = []
        if self.capacity:
            for end in range(BLOCK, len(ids), BLOCK):  # ends before the last token
                key = (part, adapter, tuple(ids[:end]))
                if key not in self._blocks:
                    break
                keys.append(key)
        return keys

    def held(self, ids: list[int], adapter: int, part: Hashable) -> int:
        """How many of ``ids``' tokens :meth:`lookup` would serve now (the cache is left as is)."""
        return len(self._held(ids, adapter, part)) * BLOCK

    def lookup(self, ids: list[int], adapter: int, part: Hashable) -> list[tuple[Any, Any]]:
        """The cached blocks that begin ``ids``, in order, marked used."""
        keys = self._held(ids, adapter, part)
        for key in reversed(keys):
            self._blocks.move_to_end(key)
        if self.capacity:
            self.hits += len(keys) * BLOCK
            self.lookups += len(ids)
        return [self._blocks[key] for key in keys]

    def store(self, ids: list[int], adapter: int, part: Hashable, k: Any, v: Any) -> None:
        """Keep the full blocks of ``ids``, read from the slot's cache ``k``/``v`` ``(layers,
        kv_heads, capacity, head_dim)`` that has just prefilled it."""
        if not self.capacity:
            return
        for end in range(len(ids) // BLOCK * BLOCK, 0, -BLOCK):  # the last block first
            key = (part, adapter, tuple(ids[:end]))
            if key not in self._blocks:
                self._blocks[key] = (k[:, :, end - BLOCK : end].clone(), v[:, :, end - BLOCK : end].clone())
            self._blocks.move_to_end(key)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)
