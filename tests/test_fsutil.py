"""One atomic-write helper and one cache root for every file llmforge commits."""

from __future__ import annotations

import os
import stat

import pytest

from llmforge.fsutil import atomic_dir, atomic_file, cache_root, write_atomic, write_json_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "state.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text('{"v": 2, "torn')
        raise RuntimeError("killed half-way")
    assert target.read_text() == '{\n "v": 1\n}' and os.listdir(tmp_path) == ["state.json"]


def test_mode_is_set_before_the_file_appears(tmp_path):
    write_atomic(tmp_path / "tokens.json", "{}", mode=0o600)
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(OSError), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise OSError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_one_environment_variable_names_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMFORGE_CACHE", str(tmp_path / "c"))
    assert cache_root("models") == tmp_path / "c" / "models"
    monkeypatch.delenv("LLMFORGE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "llmforge"
