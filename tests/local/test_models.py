"""Model specs: built-in models cached once and shared, local folders, hub ids offline, dtype."""

from __future__ import annotations

import json

import pytest
from llmforge_local import models as M

from llmforge.errors import ModelError


def test_tiny_model_is_a_small_llama_with_smollm2_tokenizer(tiny_home, tiny_tokenizer):
    folder = M.resolve_model(M.TINY_MODEL, tiny_home)
    assert folder == tiny_home / "models" / M.TINY_MODEL
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "llama" and config["hidden_size"] == 64
    assert config["num_hidden_layers"] == 2 and config["vocab_size"] == len(tiny_tokenizer) == 49152
    assert tiny_tokenizer.pad_token == "<|im_end|>" and tiny_tokenizer.chat_template


def test_tiny_model_is_seeded(tmp_path, tiny_home):
    M.resolve_model(M.TINY_MODEL, tiny_home)  # makes sure the shared tokenizer exists
    M._build_tiny(tmp_path)
    fresh = (tmp_path / "model.safetensors").read_bytes()
    assert fresh == (M.shared_cache() / M.TINY_MODEL / "model.safetensors").read_bytes()


def test_second_home_reuses_the_shared_cache(tmp_path, tiny_home):
    first = M.resolve_model(M.TINY_MODEL, tiny_home) / "model.safetensors"
    second = M.resolve_model(M.TINY_MODEL, tmp_path / "other") / "model.safetensors"
    assert second.exists() and second.read_bytes() == first.read_bytes()
    assert second.stat().st_ino == (M.shared_cache() / M.TINY_MODEL / "model.safetensors").stat().st_ino


def test_load_causal_lm_and_dtype_choice(tiny_home, monkeypatch):
    import torch

    model, tok = M.load_causal_lm(M.TINY_MODEL, tiny_home, dtype=torch.float32)
    assert model.dtype == torch.float32 and not model.training
    assert model.config.vocab_size == len(tok)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert M.best_dtype("cpu") == torch.float32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert M.best_dtype("cpu") == torch.bfloat16


def test_a_local_folder_is_used_as_is(tiny_home, tmp_path):
    folder = M.resolve_model(M.TINY_MODEL, tiny_home)
    assert M.resolve_model(str(folder), tmp_path) == folder
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        M.resolve_model(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        M.resolve_model("./models/missing", tmp_path)


def test_too_big_hub_model_fails_with_how_to_pick_a_local_one(tmp_path):
    with pytest.raises(ModelError) as err:
        M.resolve_model("meta-llama/Meta-Llama-3.1-70B-Instruct", tmp_path)
    msg = str(err.value)
    assert "70B" in msg and "local:" in msg and "--model smollm2-135m-instruct" in msg


def test_unknown_hub_id_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelError, match="hub is unreachable"):
        M.resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct", tmp_path)


def test_adapter_must_be_a_peft_folder(tiny_home, tmp_path):
    with pytest.raises(ModelError, match="not a peft adapter folder"):
        M.load_causal_lm(M.TINY_MODEL, tiny_home, adapter=tmp_path)


@pytest.mark.slow
def test_default_model_is_smollm2_and_answers(tiny_home):
    import torch

    model, tok = M.load_causal_lm(None, tiny_home, dtype=torch.float32)
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert "quantization_config" not in json.loads(
        (M.resolve_model(None, tiny_home) / "config.json").read_text()
    )
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    enc = tok(
        tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False),
        return_tensors="pt",
        add_special_tokens=False,
    )
    out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, enc["input_ids"].shape[1] :])
