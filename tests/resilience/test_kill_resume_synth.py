"""Kill and resume of the synthesis stage: ``speechx prepare synth`` (the command the recipe's
stage 2 runs) is SIGKILLed while writing an audio file, after others were written, and run
again.  The data dirs and audio must be byte-identical to an uninterrupted run, with no
truncated or temporary audio file left."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from resilience_helpers import kill_hard, start_worker, tmp_files, tree_bytes, wait_for_marker

from speechx.cli import main as cli_main
from speechx.runlock import RunLock, RunLockError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

TABLE = (
    "sent_id\tsplit\ten\tnl\n"
    "fs-aaa\ttrain\tHello there.\tHallo daar.\n"
    "fs-bbb\ttrain\tThe fish swims.\tDe vis zwemt.\n"
    "fs-ccc\tdev\tWhere is the key?\tWaar is de sleutel?\n"
    "fs-ddd\ttest\tPush the steel.\tDuw het staal.\n"
)


def _argv(root: Path) -> list[str]:
    return [
        "prepare",
        "synth",
        "--sentences",
        str(root / "table.tsv"),
        "--out-dir",
        str(root / "data"),
        "--audio-dir",
        str(root / "audio"),
        "--langs",
        "en",
        "nl",
        "--nj",
        "1",
        "--no-progress",
    ]


def test_sigkill_while_writing_audio_then_rerun_is_byte_identical(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    (root / "table.tsv").write_text(TABLE, encoding="utf-8")

    # the uninterrupted run, snapshotted, then removed: the killed run uses the same paths
    # (wav.scp holds absolute paths)
    assert cli_main(_argv(root)) == 0
    data, audio = tree_bytes(root / "data"), tree_bytes(root / "audio", skip=[".lock"])
    assert len(audio) == 8 and "synth_nl_train/wav.scp" in data
    shutil.rmtree(root / "data")
    shutil.rmtree(root / "audio")

    log = tmp_path / "worker.log"
    proc = start_worker("wav:5", tmp_path / "m", log, "speechx", *_argv(root))
    try:
        wait_for_marker(proc, tmp_path / "m", log, timeout=120)
        # the stage holds the audio dir: a second one refuses
        with pytest.raises(RunLockError, match=rf"in use by another run \(pid {proc.pid} "):
            RunLock(root / "audio", option="--audio-dir").acquire()
    finally:
        kill_hard(proc)
    partial = tmp_files(root / "audio")
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    assert len(list((root / "audio").rglob("*.wav"))) == 4, "four whole clips before the kill"
    assert not (root / "data").exists() or not list((root / "data").glob("synth_*"))

    assert cli_main(_argv(root)) == 0
    assert tmp_files(root) == []
    assert tree_bytes(root / "audio", skip=[".lock"]) == audio
    assert tree_bytes(root / "data") == data
