"""JSONL manifests: KaldiDir -> manifest -> KaldiDir is the identity (any unicode, quotes,
backslashes, newlines, any finite float bit-exact), writes are byte-identical, and a Kaldi dir
converted to a manifest and back is the same files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.data.kaldi import KaldiDir
from speechx.data.manifest import (
    kaldi_to_manifest,
    manifest_to_kaldi,
    read_manifest,
    write_manifest,
)

from .conftest import PROFILE, examples, kaldi_dirs


def _files(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())}


def _float_bits(kd: KaldiDir) -> list[str]:
    """Every float of ``kd`` as its exact hex form (``-0.0`` and ``0.0`` differ)."""
    out = [f"{u}:{v.hex()}" for u, v in sorted(kd.utt2dur.items())]
    for u, s in sorted(kd.segments.items()):
        out += [f"{u}:{s.start.hex()}", f"{u}:{s.end.hex()}"]
    return out


@settings(PROFILE, max_examples=examples(150), deadline=None)
@given(kaldi_dirs(kaldi_exact=False), st.sampled_from(["m.jsonl", "m.jsonl.gz"]))
def test_manifest_round_trip_is_identity_and_byte_identical(
    tmp_path_factory: pytest.TempPathFactory, kd: KaldiDir, name: str
) -> None:
    base = tmp_path_factory.mktemp("manifest")
    path = write_manifest(kd, base / name)
    back = read_manifest(path)
    assert back == kd
    assert _float_bits(back) == _float_bits(kd)
    assert all(math.isfinite(v) for v in back.utt2dur.values())
    again = write_manifest(back, base / f"again-{name}")
    assert again.read_bytes() == path.read_bytes()


@settings(PROFILE, max_examples=examples(60), deadline=None)
@given(kaldi_dirs())
def test_kaldi_dir_to_manifest_and_back_gives_the_same_files(
    tmp_path_factory: pytest.TempPathFactory, kd: KaldiDir
) -> None:
    base = tmp_path_factory.mktemp("manifest")
    src = kd.write(base / "src")
    manifest = kaldi_to_manifest(src, base / "m.jsonl")
    dst = manifest_to_kaldi(manifest, base / "dst")
    assert _files(dst) == _files(src)
    assert read_manifest(manifest) == kd
