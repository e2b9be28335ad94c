"""Smoke tests: egs/commonvoice and egs/covost2 run.sh on tiny corpora in the published
layouts, with the tiny wav2vec2 preset and a tiny random BERT as the ``hf:`` teacher; and their
``--dry-run`` on missing inputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]

SENTENCES = [
    ("De vis zwemt naar huis.", "The fish swims home."),
    ("Waar is de uitgang?", "Where is the exit?"),
    ("Ik ben geen krab.", "I am not a crab."),
    ("Deze pijp is te smal.", "This pipe is too narrow."),
    ("We moeten het staal duwen.", "We have to push the steel."),
    ("Kijk naar die oude schelp.", "Look at that old shell."),
    ("Het water is koud.", "The water is cold."),
    ("Zwem naar links.", "Swim to the left."),
]
SPLITS = ["train"] * 5 + ["dev", "test", "test"]
CV_HEADER = (
    "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\t"
    "gender\taccents\tvariant\tlocale\tsegment"
)

TINY = """
recipe:
  speech_langs: [{lang}]
  text_langs: [{text_langs}]
  synth_langs: []
data:
  train: [data/{corpus}_{lang}_train]
  dev: [data/{corpus}_{lang}_dev]
  target_fields: [{fields}]
  max_batch_seconds: 4
model:
  source: tiny
loss:
  weights: {{cosine: 1.0, infonce: 0.5}}
eval:
  field: {eval_field}
max_steps: 3
eval_every: 3
save_every: 3
log_every: 1
"""


def make_cv(root: Path, locale: str = "nl", *, covost: bool = False) -> Path:
    """``root/<locale>`` with two readings of every sentence as MP3 (48 and 32 kHz), the split
    TSVs and validated.tsv; with ``covost`` also ``covost_v2.<locale>_en.tsv``."""
    loc = root / locale
    rows: dict[str, list[str]] = {"train": [], "dev": [], "test": [], "validated": []}
    covost_rows = ["path\tsentence\ttranslation\tsplit"]
    n = 0
    for i, ((text, en), split) in enumerate(zip(SENTENCES, SPLITS, strict=True)):
        for spk, sr in (("a" * 64, 48000), ("b" * 64, 32000)):
            n += 1
            name = f"common_voice_{locale}_{n}.mp3"
            t = np.arange(int((0.5 + 0.05 * i) * sr)) / sr
            wav = 0.3 * np.sin(2 * np.pi * (150 + 30 * i) * t) * (1 + 0.5 * np.sin(7 * t))
            (loc / "clips").mkdir(parents=True, exist_ok=True)
            sf.write(loc / "clips" / name, wav.astype(np.float32), sr, format="MP3")
            line = f"{spk}\t{name}\ts{i}\t{text}\t\t2\t0\t\t\t\t\t{locale}\t"
            rows[split].append(line)
            rows["validated"].append(line)
            covost_rows.append(f"{name}\t{text}\t{en}\t{split}")
    for name, lines in rows.items():
        (loc / f"{name}.tsv").write_text("\n".join([CV_HEADER, *lines]) + "\n", encoding="utf-8")
    if covost:
        (loc / f"covost_v2.{locale}_en.tsv").write_text(
            "\n".join(covost_rows) + "\n", encoding="utf-8"
        )
    return root


def make_tiny_bert(path: Path) -> Path:
    """A random 2-layer BERT (hidden 32) with a word-level vocabulary of the sentences."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w.strip(".?,").lower() for s in SENTENCES for t in s for w in t.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "?", *words]
    path.mkdir(parents=True)
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("teacher") / "tiny-bert")


def _egs(tmp_path: Path, corpus: str, config: str) -> Path:
    """A copy of the recipe layout whose data/ and exp/ live in ``tmp_path``."""
    egs = tmp_path / "egs" / corpus
    (egs / "conf").mkdir(parents=True)
    for name in ("run.sh", "path.sh"):
        (egs / name).symlink_to(REPO / "egs" / corpus / name)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    (egs / "conf" / "tiny.yaml").write_text(config, encoding="utf-8")
    return egs


def _run(egs: Path, tmp_path: Path, *args: str) -> tuple[int, str]:
    import subprocess

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        ["./run.sh", "--config", "conf/tiny.yaml", *args],
        cwd=egs,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


CASES = {
    "commonvoice": dict(lang="nl", text_langs="nl", fields="text", eval_field="text"),
    "covost2": dict(lang="nl", text_langs="en, nl", fields="text, text.en", eval_field="text.en"),
}


@pytest.mark.slow  # about 50 s each on 2 cores
@pytest.mark.parametrize("corpus", sorted(CASES))
def test_recipe_end_to_end(corpus: str, tmp_path: Path, teacher_dir: Path) -> None:
    cv = make_cv(tmp_path / "cv-corpus", covost=corpus == "covost2")
    egs = _egs(tmp_path, corpus, TINY.format(corpus=corpus, **CASES[corpus]))
    teacher = f"hf:{teacher_dir}"

    # --dry-run before anything exists: the corpus is found, the data dirs are still to come
    rc, out = _run(egs, tmp_path, "--corpus-dir", str(cv), "--teacher", teacher, "--dry-run")
    assert rc == 0, out
    assert "dry run: everything is in place" in out and "stage 1/2 writes it" in out
    assert not (egs / "exp").exists() and not (egs / "data").exists()

    rc, out = _run(egs, tmp_path, "--corpus-dir", str(cv), "--teacher", teacher, "--nj", "1")
    assert rc == 0, out[-4000:]
    for stage in (1, 3, 4, 5, 6):
        assert f"Stage {stage}:" in out
    assert "Stage 2:" not in out  # no synth_langs
    model = egs / "exp" / "tiny" / "model"
    assert (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    doc = json.loads((egs / "exp" / "tiny" / "results" / "retrieval.json").read_text())
    pairs = {(r["query"], r["target"]) for r in doc["results"]}
    assert ("speech:nl", "text:nl" if corpus == "commonvoice" else "text:en") in pairs
    for row in doc["results"]:
        assert row["n_queries"] > 0 and 0.0 <= row["recall@1"] <= row["recall@5"] <= 1.0

    # with the data dirs written, the dry run validates them
    rc, out = _run(egs, tmp_path, "--corpus-dir", str(cv), "--teacher", teacher, "--dry-run")
    assert rc == 0 and f"ok      data dir data/{corpus}_nl_train: valid" in out, out


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_dry_run_names_what_is_missing(corpus: str, tmp_path: Path) -> None:
    egs = _egs(tmp_path, corpus, TINY.format(corpus=corpus, **CASES[corpus]))
    missing = tmp_path / "no-such-corpus"
    rc, out = _run(
        egs,
        tmp_path,
        "--corpus-dir",
        str(missing),
        "--teacher",
        f"hf:{tmp_path / 'LaBSE'}",
        "--train-args",
        f"model.source={tmp_path / 'xls-r-300m'}",
        "--dry-run",
    )
    assert rc == 1
    assert f"MISSING corpus {corpus}: {missing}" in out and "not found" in out
    assert f"MISSING model.source: {tmp_path / 'xls-r-300m'}" in out
    assert f"MISSING teacher: hf:{tmp_path / 'LaBSE'}: no directory at" in out
    assert "dry run: 3 problem(s) found" in out
    assert not (egs / "exp").exists()


def test_shipped_configs_dry_run_names_the_placeholders(tmp_path: Path) -> None:
    cv = make_cv(tmp_path / "cv", covost=True)
    for corpus in ("commonvoice", "covost2"):
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        import subprocess

        proc = subprocess.run(
            [str(REPO / "egs" / corpus / "run.sh"), "--corpus-dir", str(cv), "--speech-langs", "nl"]
            + ["--dry-run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        assert "MISSING model.source: /path/to/wav2vec2-xls-r-300m" in out
        assert "MISSING teacher: hf:/path/to/LaBSE" in out
        assert "parses (distill config)" in out
