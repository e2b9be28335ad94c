"""Tiny synthetic fixtures for tests across speechx: sine waves, wav files, Kaldi data dirs and a
fake text teacher.

Everything here is generated on the fly, deterministic and small (a few short wavs), so that a
test can build exactly the data it needs in ``tmp_path``.

>>> d = make_kaldi_dir(tmp_path / "data")          # doctest: +SKIP
>>> KaldiDir.read(d).utt_ids                         # doctest: +SKIP
['spk1-utt1', 'spk1-utt2', 'spk2-utt3']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from speechx.data.kaldi import KaldiDir, Segment

#: Default English transcripts and their Dutch translations used by :func:`make_kaldi_dir`.
DEFAULT_TEXTS: tuple[str, ...] = (
    "the fish swims home",
    "where is the exit",
    "I am not a crab",
    "this pipe is too narrow",
    "we have to push the steel",
)
DEFAULT_TRANSLATIONS_NL: tuple[str, ...] = (
    "de vis zwemt naar huis",
    "waar is de uitgang",
    "ik ben geen krab",
    "deze pijp is te smal",
    "we moeten het staal duwen",
)


def make_sine(
    seconds: float,
    sr: int = 16000,
    *,
    freq: float = 440.0,
    amplitude: float = 0.3,
    channels: int = 1,
) -> np.ndarray:
    """A float32 sine of ``round(seconds * sr)`` samples.

    Returns:
        ``[T]`` for one channel, else ``[T, channels]`` (soundfile's layout), where channel ``c``
        has frequency ``freq * (c + 1)`` so that the channels differ.
    """
    n = int(round(seconds * sr))
    t = np.arange(n, dtype=np.float64) / sr
    cols = [amplitude * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)]
    wav = np.stack(cols, axis=1) if channels > 1 else cols[0]
    return wav.astype(np.float32)


def make_wav(
    path: str | os.PathLike,
    seconds: float = 1.0,
    sr: int = 16000,
    *,
    freq: float = 440.0,
    channels: int = 1,
    subtype: str | None = None,
    format: str | None = None,
) -> Path:
    """Write a sine to ``path`` (format from the suffix unless ``format`` is given).

    Returns:
        The path written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(
        str(p), make_sine(seconds, sr, freq=freq, channels=channels), sr, subtype, format=format
    )
    return p


def make_kaldi_dir(
    root: str | os.PathLike,
    n: int = 3,
    *,
    seconds: float | Sequence[float] = (1.0, 0.5, 0.75),
    sr: int = 16000,
    with_segments: bool = False,
    lang: str = "en",
    texts: Sequence[str] | None = None,
    translations_nl: bool = False,
) -> Path:
    """Build a small, valid Kaldi data dir with real wavs under ``root/wav``.

    Utterance ``i`` (1-based) is ``spk{1 + (i - 1) // 2}-utt{i}``: two utterances per speaker, so
    sorting by utterance and by speaker agree, as Kaldi wants.  Files written: ``wav.scp``,
    ``text``, ``utt2spk``, ``spk2utt``, ``utt2lang``, ``utt2dur``, ``utt2sent`` (``sent{i}``) and
    ``text.en`` (the English sentence, which is also the transcript); ``text.nl`` as well when
    ``translations_nl``.  With ``with_segments`` every utterance is a segment of one long
    recording ``rec1`` with 0.1 s gaps, and ``segments`` is written.

    Args:
        seconds: one duration for all, or one per utterance (cycled when shorter than ``n``).

    Returns:
        The data dir (``root``).
    """
    root = Path(root)
    if isinstance(seconds, (int, float)):
        seconds = [float(seconds)]
    durs = [float(seconds[i % len(seconds)]) for i in range(n)]
    src = list(texts) if texts is not None else list(DEFAULT_TEXTS)
    kd = KaldiDir()
    utts = [f"spk{1 + i // 2}-utt{i + 1}" for i in range(n)]
    if with_segments:
        gap = 0.1
        total = sum(durs) + gap * (n + 1)
        wav = make_wav(root / "wav" / "rec1.wav", total, sr, freq=220.0)
        kd.wav_scp["rec1"] = str(wav.resolve())
        t = gap
        for utt, d in zip(utts, durs, strict=True):
            kd.segments[utt] = Segment("rec1", round(t, 3), round(t + d, 3))
            t += d + gap
    for i, (utt, d) in enumerate(zip(utts, durs, strict=True)):
        if not with_segments:
            wav = make_wav(root / "wav" / f"{utt}.wav", d, sr, freq=220.0 * (i + 1))
            kd.wav_scp[utt] = str(wav.resolve())
        text = src[i % len(src)]
        kd.text[utt] = text
        kd.utt2spk[utt] = utt.split("-")[0]
        kd.utt2lang[utt] = lang
        kd.utt2dur[utt] = d
        kd.utt2sent[utt] = f"sent{i % len(src) + 1}"
        kd.translations.setdefault("en", {})[utt] = text
        if translations_nl:
            nl = DEFAULT_TRANSLATIONS_NL[i % len(DEFAULT_TRANSLATIONS_NL)]
            kd.translations.setdefault("nl", {})[utt] = nl
    kd.write(root)
    return root


#: Parallel lines for :func:`make_fillets_tree`: (English, Dutch, German).
FILLETS_LINES: tuple[tuple[str, str, str], ...] = (
    ("The fish swims home.", "De vis zwemt naar huis.", "Der Fisch schwimmt nach Hause."),
    ("Where is the exit?", "Waar is de uitgang?", "Wo ist der Ausgang?"),
    ("I am not a crab.", "Ik ben geen krab.", "Ich bin keine Krabbe."),
    ("This pipe is too narrow.", "Deze pijp is te smal.", "Dieses Rohr ist zu eng."),
    ("We have to push the steel.", "We moeten het staal duwen.", "Wir müssen den Stahl schieben."),
    ("Look at that old shell.", "Kijk naar die oude schelp.", "Schau dir die alte Muschel an."),
    ("The boat is sinking.", "De boot zinkt.", "Das Boot sinkt."),
    ("Can you move the chair?", "Kun jij de stoel verplaatsen?", "Kannst du den Stuhl bewegen?"),
    ("I am so tired today.", "Ik ben zo moe vandaag.", "Ich bin heute so müde."),
    ("Be careful with the glass.", "Pas op met het glas.", "Sei vorsichtig mit dem Glas."),
    ("What a strange machine.", "Wat een vreemde machine.", "Was für eine seltsame Maschine."),
    (
        "Let us try the other way.",
        "Laten we het andere pad proberen.",
        "Lass uns den anderen Weg versuchen.",
    ),
)


def make_fillets_tree(
    root: str | os.PathLike,
    *,
    n_levels: int = 2,
    n_lines: int = 30,
    lines: Sequence[tuple[str, str, str]] = FILLETS_LINES,
    seconds: float = 0.6,
) -> Path:
    """A miniature Fish Fillets NG data tree: scripts in en/nl/de and Dutch OGG voice clips.

    ``n_lines`` lines (``lines`` first, then numbered filler lines) are spread over ``n_levels``
    levels; every line gets a Dutch clip (a tone whose
    pitch depends on the line, 22.05 kHz stereo OGG like the real data).  Good enough for
    ``data_prep.fillets`` and an end-to-end recipe run on a tiny model.

    Returns:
        ``root``.
    """
    root = Path(root)
    all_lines = list(lines[:n_lines])
    for i in range(len(all_lines), n_lines):
        all_lines.append(
            (f"This is line {i}.", f"Dit is regel {i}.", f"Das ist Zeile {i}."),
        )
    per_level: dict[int, list[tuple[int, tuple[str, str, str]]]] = {}
    for i, line in enumerate(all_lines):
        per_level.setdefault(i % n_levels, []).append((i, line))
    for lvl, items in per_level.items():
        level = f"level{lvl}"
        scripts = {"en": [], "nl": [], "de": []}
        for i, (en, nl, de) in items:
            clip = f"l{lvl}-{'mv'[i % 2]}-line{i}"
            head = f'dialogId("{clip}", "font_small", "{en}")\n'
            scripts["en"].append(head)
            scripts["nl"].append(head + f'dialogStr("{nl}")\n')
            scripts["de"].append(head + f'dialogStr("{de}")\n')
            wav = make_sine(seconds + 0.05 * (i % 5), 22050, freq=200.0 + 40.0 * i, channels=2)
            out = root / "sound" / level / "nl" / f"{clip}.ogg"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(out), wav, 22050, format="OGG", subtype="VORBIS")
        for lang, parts in scripts.items():
            path = root / "script" / level / f"dialogs_{lang}.lua"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(parts), encoding="utf-8")
    return root


class AxisTeacher:
    """A fake text teacher with a known geometry: a text in ``axes`` lands on the unit vector of
    its axis (give a sentence and its translations one axis to make them each other's nearest
    neighbours), any other text on the last axis.

    It has what :func:`speechx.teachers.load_teacher` returns (``name``, ``teacher_id``, ``dim``,
    ``languages`` and ``encode``), so a test can patch the registry with it.
    """

    languages = None

    def __init__(
        self,
        axes: Mapping[str, int],
        *,
        dim: int = 8,
        name: str = "axis",
        teacher_id: str = "axis-v1",
    ) -> None:
        self.axes, self.dim, self.name, self.teacher_id = dict(axes), dim, name, teacher_id

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        """Returns float32 ``[len(texts), dim]`` one-hot rows."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, self.axes.get(text, self.dim - 1)] = 1.0
        return out
