"""Tests of Kaldi-style splitting (speechx.data.split), job arrays and their launchers
(speechx.parallel, recipes/utils/run.sh and slurm.sh), and the teacher cache under concurrent
writer processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from speechx.data import KaldiDir
from speechx.data.kaldi import write_mapping
from speechx.data.split import combine_data_dirs, split_data_dir
from speechx.errors import DataDirError
from speechx.parallel import JobError, job_env, merge_embeddings, run_jobs, substitute_job
from speechx.testing import make_kaldi_dir

REPO = Path(__file__).resolve().parents[1]
RUN_SH = REPO / "recipes" / "utils" / "run.sh"
SLURM_SH = REPO / "recipes" / "utils" / "slurm.sh"


def _files(d: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = make_kaldi_dir(
        tmp_path / "data",
        7,
        seconds=(2.0, 0.2, 0.3, 0.3, 0.25, 0.5, 0.4),
        with_segments=True,
        translations_nl=True,
    )
    kd = KaldiDir.read(d)
    write_mapping(d / "spk2gender", [(s, "f") for s in kd.spk2utt])  # a per-speaker extra
    write_mapping(d / "utt2num_frames", [(u, str(10 * i)) for i, u in enumerate(kd.utt_ids)])
    (d / "frame_shift").write_text("0.01\n")  # not keyed by ids: copied into every part
    return d


def test_split_and_combine_round_trip(data_dir: Path, tmp_path: Path) -> None:
    kd = KaldiDir.read(data_dir)
    parts = split_data_dir(data_dir, 3)
    assert parts == [data_dir / "split3" / str(i) for i in (1, 2, 3)]
    pieces = [KaldiDir.read(p) for p in parts]
    assert [len(p) for p in pieces] == [2, 2, 3]  # balanced by count
    # contiguous runs of the sorted ids, so concatenation is the dir's order
    assert [u for p in pieces for u in p.utt_ids] == kd.utt_ids
    for p, piece in zip(parts, pieces, strict=True):
        assert set(piece.text) == set(piece.utt2spk) == set(piece.segments)
        assert set(piece.translations["nl"]) == set(piece.utt2spk)
        assert set(piece.wav_scp) == {s.recording_id for s in piece.segments.values()}
        assert (p / "frame_shift").read_text() == "0.01\n"
        genders = (p / "spk2gender").read_text().split()[::2]
        assert set(genders) == set(piece.utt2spk.values())
        assert len((p / "utt2num_frames").read_text().splitlines()) == len(piece)
    combined = combine_data_dirs(list(reversed(parts)), tmp_path / "combined")
    assert _files(combined) == _files(data_dir)  # every file back, byte for byte


def test_split_by_duration_balances_seconds(data_dir: Path) -> None:
    parts = split_data_dir(data_dir, 2, by="duration")
    durs = [sum(KaldiDir.read(p).utt2dur.values()) for p in parts]
    assert [len(KaldiDir.read(p)) for p in parts] == [1, 6]  # the long first one alone
    assert durs == pytest.approx([2.0, 1.95])
    assert [len(KaldiDir.read(p)) for p in split_data_dir(data_dir, 7, by="duration")] == [1] * 7


def test_split_is_reused_until_the_dir_changes(data_dir: Path) -> None:
    parts = split_data_dir(data_dir, 2)
    stamp = (parts[0] / "text").stat().st_mtime_ns
    assert split_data_dir(data_dir, 2) == parts
    assert (parts[0] / "text").stat().st_mtime_ns == stamp  # not rewritten
    kd = KaldiDir.read(data_dir)
    first = kd.utt_ids[0]
    kd.text[first] = "a changed transcript"
    kd.write(data_dir)
    split_data_dir(data_dir, 2)
    assert KaldiDir.read(parts[0]).text[first] == "a changed transcript"
    split_data_dir(data_dir, 2, by="duration")  # another mode re-splits too
    assert len(KaldiDir.read(parts[0])) == 1
    with pytest.raises(DataDirError, match="into 8 parts"):
        split_data_dir(data_dir, 8)


def test_combine_refuses_conflicting_values(tmp_path: Path) -> None:
    a = make_kaldi_dir(tmp_path / "a", 2)
    b = make_kaldi_dir(tmp_path / "b", 2, texts=["other words", "more"])
    with pytest.raises(DataDirError, match=r"wav.scp: id 'spk1-utt1' is .*a.* but .*b"):
        combine_data_dirs([a, b], tmp_path / "c")


def test_run_jobs_locally_and_failure_names_the_log(tmp_path: Path) -> None:
    assert substitute_job(["a/JOB", "x"], 3) == ["a/3", "x"]
    assert job_env(2, {"OMP_NUM_THREADS": "8"})["OMP_NUM_THREADS"] == "4"
    code = "import os, sys; print('job', sys.argv[1], os.environ['OMP_NUM_THREADS'])"
    logs = run_jobs(
        [sys.executable, "-c", code, "JOB"],
        3,
        tmp_path / "log" / "t.JOB.log",
        env=job_env(3, {**os.environ, "OMP_NUM_THREADS": "3"}),
    )
    assert [p.name for p in logs] == ["t.1.log", "t.2.log", "t.3.log"]
    text = logs[1].read_text()
    assert text.startswith("# ") and "job 2 1\n" in text and "# Ended (code 0)" in text
    fail = "import sys; sys.exit(3 if sys.argv[1] == '2' else 0)"
    with pytest.raises(JobError, match=r"1 of 3 jobs failed; see .*f\.2\.log") as exc:
        run_jobs([sys.executable, "-c", fail, "JOB"], 3, tmp_path / "log" / "f.JOB.log")
    assert exc.value.logs == [tmp_path / "log" / "f.2.log"]
    assert "# Ended (code 3)" in (tmp_path / "log" / "f.2.log").read_text()
    with pytest.raises(JobError, match="must contain JOB"):
        run_jobs(["true"], 2, tmp_path / "log" / "x.log")


def test_run_sh_launcher(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
    run_jobs(
        [sys.executable, "-c", code, f"{out}.JOB", "JOB"],
        3,
        tmp_path / "log" / "w.JOB.log",
        cmd=f"{RUN_SH} --max-jobs-run 2",
    )
    assert [Path(f"{out}.{i}").read_text() for i in (1, 2, 3)] == ["1", "2", "3"]
    fail = "import sys; sys.exit(int(sys.argv[1]) == 3)"
    with pytest.raises(JobError, match=r"see .*f\.3\.log"):
        run_jobs([sys.executable, "-c", fail, "JOB"], 3, tmp_path / "f.JOB.log", cmd=str(RUN_SH))
    proc = subprocess.run(
        [RUN_SH, "JOB=1:2", tmp_path / "g.JOB.log", "false"], capture_output=True, text=True
    )
    assert proc.returncode == 1 and f"2 / 2 failed, log is in {tmp_path}/g.1.log" in proc.stderr


FAKE_SBATCH = """\
#!/usr/bin/env bash
# Records its arguments, then runs the batch script once per array task, as SLURM would.
printf '%s\\n' "$@" > "$FAKE_SBATCH_ARGS"
prev=""; array=""
for a in "$@"; do [ "$prev" = --array ] && array=$a; prev=$a; done
range=${array%%%*}
for ((i = ${range%-*}; i <= ${range#*-}; i++)); do SLURM_ARRAY_TASK_ID=$i bash "${!#}"; done
echo 4242
"""


def test_slurm_sh_builds_the_sbatch_array(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_SBATCH_ARGS": str(tmp_path / "args.txt"),
    }
    code = "import os, sys; print('task', sys.argv[1], 'threads', os.environ['OMP_NUM_THREADS'])"
    cmd = f"{SLURM_SH} --mem 8G --gpus 1 --num-threads 4 --max-jobs-run 2 --time 1:00:00"
    logs = run_jobs(
        [sys.executable, "-c", code, "JOB with space"],
        3,
        tmp_path / "exp" / "log" / "embed.JOB.log",
        cmd=cmd,
        env=env,
    )
    args = (tmp_path / "args.txt").read_text().splitlines()
    script = tmp_path / "exp" / "log" / "q" / "embed.sh"
    assert args[-1] == str(script)
    joined = " ".join(args[:-1])
    for opt in (
        "--wait",
        "--array 1-3%2",
        "--mem 8G",
        "--gres gpu:1",
        "--cpus-per-task 4",
        "--time 1:00:00",
        "--job-name embed",
        f"--output {tmp_path}/exp/log/q/embed.%a.out",
    ):
        assert opt in joined, opt
    assert "task 2 with space threads 4" in logs[1].read_text()
    env["SBATCH"] = "false"  # sbatch itself fails: the logs never got written
    with pytest.raises(JobError, match=r"exited 1.*embed\.1\.log"):
        run_jobs(["true"], 2, tmp_path / "exp2" / "embed.JOB.log", cmd=str(SLURM_SH), env=env)


WRITER = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    from speechx.teachers.cache import CachedTeacher

    class Fake:
        name = teacher_id = "fake-v1"
        dim = 4
        languages = None
        def encode(self, texts, batch_size=64, show_progress=None):
            out = []
            for t in texts:
                seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
                v = np.random.default_rng(seed).standard_normal(4)
                out.append(v / np.linalg.norm(v))
            return np.array(out, dtype=np.float32)

    cache = CachedTeacher(Fake(), sys.argv[1], shard_size=3, max_shards=4)
    texts = [f"sentence {i}" for i in range(int(sys.argv[2]), int(sys.argv[3]))]
    for start in range(0, len(texts), 5):
        cache.encode(texts[start : start + 5])
    """
)


def test_teacher_cache_is_safe_with_concurrent_writer_processes(tmp_path: Path) -> None:
    """Two processes fill one cache dir at once (overlapping texts, small shards, compaction
    in both): every text is then in the cache exactly as the teacher gives it."""
    cache_dir = tmp_path / "cache"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(cache_dir), a, b])
        for a, b in (("0", "60"), ("30", "90"))
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    from speechx.teachers.cache import CachedTeacher

    ns: dict = {}
    exec(WRITER.split("cache = ")[0], ns)  # the same Fake teacher class
    fake = ns["Fake"]()
    cache = CachedTeacher(fake, cache_dir)
    texts = [f"sentence {i}" for i in range(90)]
    assert all(t in cache for t in texts)
    got = cache.encode(texts)
    assert cache.misses == 0
    np.testing.assert_array_equal(got, fake.encode(texts))


def test_merge_embeddings_checks_ids(tmp_path: Path) -> None:
    for i, ids in enumerate((["a", "b"], ["c"]), start=1):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "ids.txt").write_text("".join(f"{x}\n" for x in ids))
        np.save(d / "embeddings.npy", np.full((len(ids), 3), i, dtype=np.float32))
    out = merge_embeddings([tmp_path / "1", tmp_path / "2"], tmp_path / "m", expected_ids="abc")
    assert (out / "ids.txt").read_text() == "a\nb\nc\n"
    assert np.load(out / "embeddings.npy")[:, 0].tolist() == [1, 1, 2]
    with pytest.raises(JobError, match="row 0 is 'c', expected 'a'"):
        merge_embeddings([tmp_path / "2", tmp_path / "1"], tmp_path / "m", expected_ids="abc")
    with pytest.raises(JobError, match="'c' is in more than one part"):
        merge_embeddings([tmp_path / "2", tmp_path / "2"], tmp_path / "m")
