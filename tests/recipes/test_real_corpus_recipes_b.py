"""Smoke tests: egs/fleurs and egs/librispeech from start to end on miniature corpora written in
the upstream layouts, with the ``tiny`` model preset; plus their ``--dry-run`` on a missing corpus.

The real configs (conf/xlsr_labse.yaml: XLS-R and LaBSE from local dirs) are checked by the dry
run, which must name the placeholder paths it cannot find.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechx.testing import make_wav

REPO = Path(__file__).resolve().parents[2]

EN = [
    "The cat sleeps on the warm roof.",
    "It is raining in the mountains today.",
    "Where is the nearest railway station?",
    "The museum opens at nine in the morning.",
    "Children play football in the park.",
    "The river flooded the old bridge.",
    "She bought fresh bread at the market.",
    "The train to the capital is late.",
    "Scientists found water on the moon.",
    "The library closes early on Sundays.",
    "He plays the piano every evening.",
    "The new road will open next year.",
]
NL = [
    "De kat slaapt op het warme dak.",
    "Het regent vandaag in de bergen.",
    "Waar is het dichtstbijzijnde treinstation?",
    "Het museum gaat om negen uur 's ochtends open.",
    "Kinderen spelen voetbal in het park.",
    "De rivier overstroomde de oude brug.",
    "Zij kocht vers brood op de markt.",
    "De trein naar de hoofdstad is laat.",
    "Wetenschappers vonden water op de maan.",
    "De bibliotheek sluit vroeg op zondag.",
    "Hij speelt elke avond piano.",
    "De nieuwe weg gaat volgend jaar open.",
]
SPLIT_OF = ["train"] * 8 + ["dev"] * 2 + ["test"] * 2


def make_fleurs(root: Path) -> Path:
    """nl_nl and en_us in the release layout: headerless TSVs + audio/<split>/*.wav."""
    for config, texts in (("nl_nl", NL), ("en_us", EN)):
        for split in ("train", "dev", "test"):
            lines = []
            for i, (t, s) in enumerate(zip(texts, SPLIT_OF, strict=True)):
                if s != split:
                    continue
                fname = f"{config[:2]}{1000 + i}.wav"
                make_wav(root / config / "audio" / split / fname, 0.4 + 0.05 * i, freq=200 + 40 * i)
                norm = t.lower().rstrip(".?")
                lines.append(
                    f"{i + 1}\t{fname}\t{t}\t{norm}\t{'|'.join(norm.split())} |\t8000\tMALE"
                )
            (root / config / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def make_librispeech(root: Path) -> Path:
    """LibriSpeech/{train-clean-100,dev-clean,test-clean}/<spk>/<chapter>/ with FLAC + trans."""
    for i, (t, split) in enumerate(zip(EN, SPLIT_OF, strict=True)):
        subset = {"train": "train-clean-100", "dev": "dev-clean", "test": "test-clean"}[split]
        spk, chapter = str(100 + i % 3), "200"
        d = root / "LibriSpeech" / subset / spk / chapter
        utt = f"{spk}-{chapter}-{i:04d}"
        make_wav(d / f"{utt}.flac", 0.4 + 0.05 * i, freq=200 + 40 * i, format="FLAC")
        with open(d / f"{spk}-{chapter}.trans.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{utt} {t.upper().rstrip('.?')}\n")
    return root


def tiny_config(corpus: str, langs: list[str]) -> str:
    train = ", ".join(f"data/{corpus}_{lang}_train" for lang in langs)
    return f"""
recipe:
  speech_langs: [{", ".join(langs)}]
  text_langs: [en, nl]
  synth_langs: []
  teacher: use-multilingual
data:
  train: [{train}]
  dev: [data/{corpus}_{langs[0]}_dev]
  teacher_id: use-multilingual-v3
  target_fields: [text, text.en]
  max_batch_seconds: 8
model:
  source: tiny
loss:
  weights: {{cosine: 1.0, infonce: 0.5}}
eval:
  field: text.en
max_steps: 3
eval_every: 3
save_every: 3
log_every: 1
"""


def _egs(tmp_path: Path, corpus: str, config: str | None) -> Path:
    """A copy of egs/<corpus> whose data/ and exp/ live in tmp_path (scripts are symlinks)."""
    egs = tmp_path / "egs" / corpus
    (egs / "conf").mkdir(parents=True)
    for f in (REPO / "egs" / corpus).glob("*.sh"):
        (egs / f.name).symlink_to(f)
    for f in (REPO / "egs" / corpus / "conf").glob("*.yaml"):
        (egs / "conf" / f.name).symlink_to(f)
    (tmp_path / "recipes").symlink_to(REPO / "recipes")
    if config is not None:
        (egs / "conf" / "tiny.yaml").write_text(config, encoding="utf-8")
    return egs


def _run(egs: Path, tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "SPEECHX_CACHE": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [f"./{script}", *args], cwd=egs, env=env, capture_output=True, text=True, timeout=900
    )


def _check_results(egs: Path, expected: set[tuple[str, str, str]]) -> dict:
    model = egs / "exp" / "tiny" / "model"
    assert (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    doc = json.loads((egs / "exp" / "tiny" / "results" / "retrieval.json").read_text())
    pairs = {(r["set"], r["query"], r["target"]) for r in doc["results"]}
    assert expected <= pairs, pairs
    for row in doc["results"]:
        assert 0.0 <= row["recall@1"] <= row["recall@10"] <= 1.0 and row["n_queries"] > 0
    return doc


@pytest.mark.slow  # about 60 s on 2 cores
def test_fleurs_recipe_end_to_end(tmp_path: Path) -> None:
    corpus = make_fleurs(tmp_path / "fleurs")
    egs = _egs(tmp_path, "fleurs", tiny_config("fleurs", ["nl", "en"]))
    proc = _run(egs, tmp_path, "run.sh", "--config", "conf/tiny.yaml", "--corpus-dir", str(corpus))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage in (1, 3, 4, 5, 6):
        assert f"Stage {stage}:" in proc.stdout
    assert "Stage 2:" not in proc.stdout  # no synthesis for a real corpus
    _check_results(
        egs,
        {
            ("fleurs_nl_test", "speech:nl", "text:en"),
            ("fleurs_nl_test", "speech:nl", "speech:en"),  # n-way: the shared sentence ids
        },
    )
    # XTREME-S: nl speech against the English test keys padded with the en train texts
    (egs / "news.txt").write_text("A sentence nobody said.\nAnother distractor.\n")
    proc = _run(
        egs, tmp_path, "run_xtreme_s.sh", "--config", "conf/tiny.yaml",
        "--distractors", "data/fleurs_en_train news.txt",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((egs / "exp" / "tiny" / "results_xtreme_s" / "retrieval.json").read_text())
    (row,) = [r for r in doc["results"] if r.get("protocol") == "xtreme-s"]
    assert row["query"] == "speech:nl" and row["target"] == "text:en+distractors"
    assert row["n_distractors"] == 10 and row["pool_size"] == 2 + 10


@pytest.mark.slow  # about 40 s on 2 cores
def test_librispeech_recipe_end_to_end(tmp_path: Path) -> None:
    corpus = make_librispeech(tmp_path / "corpus")
    config = tiny_config("librispeech", ["en"]).replace("text.en", "text")
    egs = _egs(tmp_path, "librispeech", config)
    proc = _run(egs, tmp_path, "run.sh", "--config", "conf/tiny.yaml", "--corpus-dir", str(corpus))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = _check_results(egs, {("librispeech_en_test", "speech:en", "text:en")})
    assert all(r["n_queries"] == 2 for r in doc["results"] if r["query"] == "speech:en")


@pytest.mark.parametrize("corpus", ["fleurs", "librispeech"])
def test_dry_run_names_what_is_missing(tmp_path: Path, corpus: str) -> None:
    check = REPO / "recipes" / "distill.sh"
    if "dry_run" not in check.read_text():
        pytest.skip("recipes/distill.sh has no --dry-run yet")
    egs = _egs(tmp_path, corpus, None)
    missing = tmp_path / "no_such_corpus"
    proc = _run(egs, tmp_path, "run.sh", "--corpus-dir", str(missing), "--dry-run")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert str(missing) in out  # where it looked
    assert "/path/to/wav2vec2-xls-r-300m" in out and "/path/to/LaBSE" in out  # the placeholders
