"""Shared hypothesis strategies and profiles of the property suite (``tests/property``).

Profiles (pick one with the environment variable ``HYPOTHESIS_PROFILE``):

``ci`` (default)  derandomised: the same examples on every run, so a CI failure reproduces;
                  no example database is written. Each test runs its base ``max_examples``.
``dev``           random examples and hypothesis' example database (``.hypothesis/``), base
                  ``max_examples``: new examples on each run, failures replayed first.
``thorough``      random examples, ten times the base ``max_examples`` of every test.

Tests do not call ``settings.load_profile``: each passes :data:`PROFILE` as the parent of its own
``@settings(PROFILE, max_examples=examples(N), deadline=None)``, so the choice reaches only this
suite and the base example count ``N`` stays written next to the test (README.md lists them).
"""

from __future__ import annotations

import os
import string

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from speechx.data.kaldi import KaldiDir, Segment

_SCALE = {"ci": 1, "dev": 1, "thorough": 10}
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile("thorough", deadline=None, print_blob=True)

PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE_NAME not in _SCALE:
    raise RuntimeError(
        f"HYPOTHESIS_PROFILE={PROFILE_NAME!r} is not a profile of tests/property; "
        f"expected one of {sorted(_SCALE)}"
    )
PROFILE = settings.get_profile(PROFILE_NAME)


def examples(base: int) -> int:
    """The ``max_examples`` of a test whose base count is ``base`` under the chosen profile."""
    return base * _SCALE[PROFILE_NAME]


# ------------------------------------------------------------------------------ text
ASCII_WS = " \t\n\r\f\v"
#: characters worth trying everywhere: quotes, backslashes, a BOM, non-ASCII spaces and line
#: separators, zero-width and combining marks, CJK, right-to-left, astral-plane
SPECIAL_CHARS = (
    '"',
    "'",
    "\\",
    "\ufeff",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\x85",
    "\x1c",
    "\u200b",
    "\u0301",
    "é",
    "中",
    "ß",
    "İ",
    "ا",
    "😀",
    "\x00",
    "{",
    "}",
)

# Every character for which str.isspace() holds is in Zs, Zl, Zp or among these controls.
_SPACE_CONTROLS = "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85"
_SPACE_CATEGORIES = ("Zs", "Zl", "Zp")


def _chars(banned: str = "", *, no_space: bool = False) -> st.SearchStrategy[str]:
    """Any character but a surrogate or one of ``banned``, with :data:`SPECIAL_CHARS` mixed in;
    ``no_space`` also leaves out every character for which ``str.isspace()`` holds."""
    cats = ("Cs", *_SPACE_CATEGORIES) if no_space else ("Cs",)
    banned += _SPACE_CONTROLS if no_space else ""
    specials = [c for c in SPECIAL_CHARS if c not in banned and not (no_space and c.isspace())]
    return st.one_of(
        st.characters(blacklist_categories=cats, blacklist_characters=banned),
        st.sampled_from(specials),
    )


#: a Kaldi id: non-empty, no character for which ``str.isspace()`` holds (what the writer
#: refuses), not starting with U+FEFF (a byte-order mark to every reader)
kaldi_ids = st.text(alphabet=_chars(no_space=True), min_size=1, max_size=8).filter(
    lambda s: not s.startswith("\ufeff")
)

#: a word of a Kaldi value: any characters but ASCII blanks (Kaldi's field separators)
kaldi_words = st.text(alphabet=_chars(ASCII_WS), min_size=1, max_size=6)

#: a Kaldi value as it reads back: words joined by one space (``""`` when empty)
kaldi_texts = st.lists(kaldi_words, max_size=5).map(" ".join)
kaldi_nonempty_texts = st.lists(kaldi_words, min_size=1, max_size=5).map(" ".join)

#: any string at all (JSON manifests keep tabs, newlines, quotes, backslashes...)
any_texts = st.text(alphabet=_chars(), max_size=20)

#: a language code usable in a ``text.<lang>`` file name
lang_codes = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_letters),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", max_size=5),
).filter(lambda s: s != "langtags")

#: times at millisecond resolution (what Kaldi's ``%.3f`` keeps exactly)
ms_times = st.integers(0, 10_000_000).map(lambda ms: ms / 1000)
#: any finite float (manifests keep them bit-exact)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def kaldi_dirs(draw: st.DrawFn, *, kaldi_exact: bool = True) -> KaldiDir:
    """A :class:`KaldiDir` with valid ids, every recording used, optional mappings.

    With ``kaldi_exact`` every value is what a Kaldi file gives back (words joined by one space,
    times and durations in milliseconds); otherwise values are arbitrary strings and floats,
    which only a JSONL manifest keeps as they are.
    """
    text = kaldi_texts if kaldi_exact else any_texts
    word = kaldi_nonempty_texts if kaldi_exact else any_texts.filter(bool)
    time = ms_times if kaldi_exact else finite_floats
    utts = draw(st.lists(kaldi_ids, min_size=1, max_size=6, unique=True))
    kd = KaldiDir()
    if draw(st.booleans()):
        recs = draw(st.lists(kaldi_ids, min_size=1, max_size=3, unique=True))
        for u in utts:
            rec = draw(st.sampled_from(recs))
            kd.segments[u] = Segment(rec, draw(time), draw(time))
            kd.wav_scp.setdefault(rec, draw(word))
    else:
        for u in utts:
            kd.wav_scp[u] = draw(word)
    speakers = draw(st.lists(kaldi_ids, min_size=1, max_size=3, unique=True))
    for u in utts:
        kd.utt2spk[u] = draw(st.sampled_from(speakers))
        if draw(st.booleans()):
            kd.text[u] = draw(text)
        if draw(st.booleans()):
            kd.utt2lang[u] = draw(st.sampled_from(["nl", "en", "zh", "pt-BR"]))
        if draw(st.booleans()):
            kd.utt2dur[u] = draw(time)
        if draw(st.booleans()):
            kd.utt2sent[u] = draw(kaldi_ids)
        if draw(st.booleans()):
            kd.langtags[u] = draw(text)
    for lang in draw(st.lists(lang_codes, max_size=3, unique=True)):
        chosen = draw(st.lists(st.sampled_from(utts), min_size=1, unique=True))
        kd.translations[lang] = {u: draw(text) for u in chosen}
    return kd


# ------------------------------------------------------------------- ASR scoring text
#: a small vocabulary, so that references and hypotheses share words (hits, substitutions)
VOCAB = ("de", "vis", "zwemt", "the", "fish", "Straße", "naïve", "don't", "ça", "日本")
#: a word for WER: no character for which ``str.isspace()`` holds (jiwer and speechx would
#: split it differently), from the vocabulary half of the time
asr_words = st.one_of(
    st.sampled_from(VOCAB),
    st.text(alphabet=_chars(no_space=True), min_size=1, max_size=5),
)

# CJK characters by block: (first, last) code points, each block also inside speechx's ranges
CJK_BLOCKS = {
    "han": (0x4E00, 0x9FFF),
    "hiragana": (0x3041, 0x3096),
    "katakana": (0x30A1, 0x30FA),
    "hangul": (0xAC00, 0xD7A3),
    "han-ext-a": (0x3400, 0x4DBF),
    "hangul-jamo": (0x1100, 0x11FF),
    "compat-jamo": (0x3131, 0x318E),
    "halfwidth-katakana": (0xFF66, 0xFF9F),
    "kana-voicing": (0x3099, 0x309A),
}
#: common CJK characters (Han, kana, Hangul syllables) plus the rarer blocks
cjk_chars = st.one_of(
    *(st.integers(lo, hi).map(chr) for lo, hi in CJK_BLOCKS.values()),
    st.sampled_from("中文我喜欢编程日本語ですカタカナ한국어"),
)
latin_words = st.one_of(
    st.sampled_from(("python", "ok", "cookie", "ik", "wil", "een", "Hello", "world")),
    st.text(alphabet=st.sampled_from(string.ascii_lowercase + "éüß"), min_size=1, max_size=6),
)


# ------------------------------------------------------------------------- embeddings
def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``n`` random float32 unit vectors of dimension ``dim``."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


seeds = st.integers(0, 2**32 - 1)
