"""What only the emulator knows, beside the local index's own records: who created each
endpoint and index, endpoint timestamps, stopped and deleted endpoints. Kept as one JSON file
under the project home, replaced atomically so a crash never leaves half a file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from llmforge.fsutil import write_json_atomic


class State:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._data: dict[str, dict[str, Any]] = {"endpoints": {}, "indexes": {}}
        if path.exists():
            self._data.update(json.loads(path.read_text()))

    def _save(self) -> None:
        write_json_atomic(self.path, self._data)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._data.get(kind, {}).get(name)
            return dict(item) if item is not None else None

    def put(self, kind: str, name: str, item: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._data.setdefault(kind, {})[name] = item
            self._save()
            return dict(item)

    def pop(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            item = self._data.get(kind, {}).pop(name, None)
            if item is not None:
                self._save()
            return item


def now_ms() -> int:
    return int(time.time() * 1000)
