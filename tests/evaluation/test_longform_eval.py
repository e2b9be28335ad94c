"""speechx.evaluation.longform on a hand-made index and truth table: rows, JSON, summary, plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechx.audio_search import AudioIndex, AudioIndexConfig, MergeConfig, Recording
from speechx.data.spans import PlacedUtterance, read_truth, write_truth
from speechx.errors import EvaluationError
from speechx.evaluation.longform import evaluate_longform
from speechx.retrieval import EmbeddingIndex

DIM = 8


def axis(i: int) -> np.ndarray:
    v = np.full(DIM, 0.05, np.float32)
    v[i] = 1.0
    return v / np.linalg.norm(v)


# windows: (recording number, start, end, embedding axis)
WINDOWS = [
    (0, 0.0, 2.0, 5),
    (0, 2.0, 4.5, 0),  # query q0 is 2.0-4.5 in r0
    (0, 4.5, 7.0, 6),  # a distractor
    (1, 0.0, 3.0, 1),  # query q1 is 0.5-3.0 in r1: the window starts 0.5 s early
    (1, 3.0, 6.0, 2),  # query q2 is 3.0-6.0 in r1
    (1, 6.0, 8.0, 7),
]


def make_index(seconds: float = 10.0) -> AudioIndex:
    emb = np.stack([axis(a) for *_, a in WINDOWS])
    return AudioIndex(
        AudioIndexConfig(window=3.0, hop=1.0, boundaries="energy"),
        [Recording("r0", "/r0.wav", 7.0), Recording("r1", "/r1.wav", 8.0)],
        np.array([w[0] for w in WINDOWS]),
        np.array([w[1] for w in WINDOWS]),
        np.array([w[2] for w in WINDOWS]),
        EmbeddingIndex.build(emb, backend="exact"),
        model="toy",
        teacher="toy-teacher",
        seconds=seconds,
    )


def truth() -> list[PlacedUtterance]:
    def q(utt, rec, s, e, src, en, nl=None):  # noqa: ANN001, ANN202
        texts = {"text.en": en, **({"text.nl": nl} if nl else {})}
        return PlacedUtterance(utt, rec, s, e, "query", src, "en", utt, texts=texts)

    return [
        q("q0", "r0", 2.0, 4.5, "synth_en_test", "zero", "nul"),
        q("q1", "r1", 0.5, 3.0, "fillets_nl_test", "one", "een"),
        q("q2", "r1", 3.0, 6.0, "fillets_nl_test", "two"),  # no Dutch text
        PlacedUtterance("d0", "r0", 4.5, 7.0, "distractor", "synth_en_test", texts={"text": "x"}),
    ]


class ToyTeacher:
    teacher_id = "toy-teacher"
    dim = DIM
    table = {"zero": 0, "one": 1, "two": 2, "nul": 0, "een": 6}  # "een" finds the distractor

    def encode(self, texts, batch_size: int = 64, show_progress=None):  # noqa: ANN001, ANN201
        return np.stack([axis(self.table[t]) for t in texts])


def test_rows_json_summary_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results"
    (out).mkdir()
    (out / "summary.md").write_text("# Results\n\nother sections stay\n")
    write_truth(tmp_path / "truth.tsv", truth())
    path = evaluate_longform(
        make_index(),
        read_truth(tmp_path / "truth.tsv"),
        out,
        teacher=ToyTeacher(),
        query_langs=["en", "nl"],
        merge=MergeConfig(span="best"),
        model_name="toy-model",
    )
    doc = json.loads(path.read_text())
    assert (doc["task"], doc["split"], doc["model"], doc["teacher"]) == (
        "longform",
        "test",
        "toy-model",
        "toy-teacher",
    )
    en, nl = doc["results"]
    assert en["query"] == "text:en" and en["n_queries"] == 3 and en["n_missing"] == 0
    assert en["hit@1"] == 1.0 and en["hit@1_centre"] == 1.0 and en["mrr@10"] == 1.0
    assert en["n_timed"] == 3
    assert en["median_start_error"] == 0.0 and en["mean_start_error"] == pytest.approx(
        0.5 / 3, abs=1e-4
    )
    assert en["by_source"]["fillets_nl_test"]["n_queries"] == 2
    assert nl["query"] == "text:nl" and nl["n_queries"] == 2 and nl["n_missing"] == 1
    assert nl["hit@1"] == 0.5  # "een" lands on the distractor
    ix = doc["index"]
    assert ix["recordings"] == 2 and ix["windows"] == 6 and ix["boundaries"] == "energy"
    assert ix["hours"] == pytest.approx(15 / 3600, abs=1e-4)
    assert ix["hours_per_hour"] == pytest.approx(15 / 10, abs=0.01)
    assert doc["merge"]["span"] == "best" and doc["iou"] == 0.5
    summary = (out / "summary.md").read_text()
    assert "other sections stay" in summary and "## Long-form search" in summary
    assert "| text:nl | 2 | 0.500 |" in summary
    assert (out / "longform_hit_vs_iou.png").stat().st_size > 1000
    hits = [json.loads(x) for x in (out / "longform_hits.jsonl").read_text().splitlines()]
    assert len(hits) == 5 and hits[0]["truth"] == ["r0", 2.0, 4.5]
    assert hits[0]["hits"][0]["recording"] == "r0"


def test_errors(tmp_path: Path) -> None:
    rows = truth()
    with pytest.raises(EvaluationError, match="no query has text in 'fr'"):
        evaluate_longform(make_index(), rows, tmp_path, teacher=ToyTeacher(), query_langs=["fr"])
    stray = [*rows, PlacedUtterance("q9", "r9", 0.0, 1.0, "query", "x", texts={"text.en": "zero"})]
    with pytest.raises(EvaluationError, match="does not hold recording.*r9"):
        evaluate_longform(make_index(), stray, tmp_path, teacher=ToyTeacher())
    with pytest.raises(EvaluationError, match="no query rows"):
        evaluate_longform(make_index(), rows[3:], tmp_path, teacher=ToyTeacher())


def test_spoken_queries(tmp_path: Path) -> None:
    """speech:alt: the alternative rendering goes through the encoder (a fake one here)."""
    import soundfile as sf

    rows = []
    for r in truth():
        alt = tmp_path / f"{r.utt}.wav"
        sf.write(str(alt), np.full(1600, 0.1 * (int(r.utt[1]) + 1), np.float32), 16000)
        rows.append(
            PlacedUtterance(**{**r.__dict__, "alt_utt": f"nl-{r.utt}", "alt_lang": "nl"})
            if r.role == "distractor"
            else PlacedUtterance(
                **{**r.__dict__, "alt_utt": f"nl-{r.utt}", "alt_lang": "nl", "alt_audio": str(alt)}
            )
        )

    class LevelEncoder:
        """Embeds a constant signal of level 0.1 * (i + 1) as axis i."""

        sample_rate, embed_dim = 16000, DIM

        def encode(self, inputs, batch_size: int = 8, show_progress=None):  # noqa: ANN001, ANN201
            return np.stack([axis(int(round(x[0][0] * 10)) - 1) for x in inputs])

    path = evaluate_longform(
        make_index(), rows, tmp_path, teacher=ToyTeacher(), encoder=LevelEncoder()
    )
    speech = json.loads(path.read_text())["results"][1]
    assert speech["query"] == "speech:alt" and speech["n_queries"] == 3
    assert speech["hit@1_centre"] == 1.0 and speech["alt_langs"] == {"nl": 3}
