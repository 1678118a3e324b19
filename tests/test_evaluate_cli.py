"""``reseq evaluate`` and ``reseq dae train`` from the command line."""

from __future__ import annotations

import csv

import pytest


@pytest.fixture(scope="module")
def corpus(dev_clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-corpus")
    for name in ("px_wes_archer_die", "cyc_pingus_walker"):
        (root / name).symlink_to(dev_clips / name, target_is_directory=True)
    (root / "manifest.csv").write_text("clip,style,cyclic\npx_wes_archer_die,pixel-art,no\n"
                                       "cyc_pingus_walker,pixel-art,yes\n")
    return root


def _one_error_line(proc):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reseq: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_bad_inputs_give_one_line(run_cli, tmp_path, corpus):
    assert "does not exist" in _one_error_line(
        run_cli("evaluate", tmp_path / "missing", "-o", tmp_path / "r"))
    (tmp_path / "empty").mkdir()
    assert "no non-cyclic" in _one_error_line(
        run_cli("evaluate", tmp_path / "empty", "-o", tmp_path / "r"))
    assert "unknown metric" in _one_error_line(
        run_cli("evaluate", corpus, "--metrics", "l2,nope", "-o", tmp_path / "r"))
    assert "does not exist" in _one_error_line(
        run_cli("evaluate", corpus, "--metrics", "dae", "--dae", tmp_path / "no.pt",
                "-o", tmp_path / "r"))
    assert "SOURCES" in _one_error_line(run_cli("dae", "train", "-o", tmp_path / "d.pt"))
    assert not (tmp_path / "r").exists()


def test_evaluate_writes_a_reproducible_report(run_cli, tmp_path, corpus):
    out = tmp_path / "report"
    args = ("evaluate", corpus, "--metrics", "l2,ssim-2opt,isomap", "--size", "64", "-k", "2",
            "-q", "-o", out)
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["metric"] for r in rows] == ["l2", "ssim-2opt", "isomap-best", "isomap-global"]
    assert {r["clip"] for r in rows} == {"px_wes_archer_die"} and rows[0]["frames"] == "7"
    before = (out / "results.csv").read_bytes()
    refused = run_cli(*args)
    assert "already exists" in _one_error_line(refused)
    again = run_cli(*args, "--force")
    assert again.returncode == 0, again.stderr
    assert (out / "results.csv").read_bytes() == before
    assert (out / "fig7b_boxplot.png").stat().st_size > 1000


def test_dae_train_checkpoint_and_resume(run_cli, tmp_path, dev_clips):
    import torch

    out = tmp_path / "dae.pt"
    src = dev_clips / "cyc_kenney_zombie_walk"
    args = ("dae", "train", src, "-o", out, "--batch-size", "2", "--checkpoint-every", "1",
            "--size", "64", "-q")
    first = run_cli(*args, "--steps", "2")
    assert first.returncode == 0, first.stderr
    assert "trained on 8 frames" in first.stdout
    assert torch.load(out, weights_only=True)["step"] == 2
    assert "already exists" in _one_error_line(run_cli(*args, "--steps", "3"))
    resumed = run_cli(*args, "--steps", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["step"] == 3 and len(ckpt["losses"]) == 3
