"""``reseq evaluate`` and ``reseq dae train`` from the command line.

One case runs the installed ``reseq`` script in a subprocess; the others call the same click
group in-process (click's CliRunner), which goes through the same error handling.
"""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from reseq.cli import main


@pytest.fixture(scope="module")
def corpus(dev_clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-corpus")
    for name in ("px_wes_archer_die", "cyc_pingus_walker"):
        (root / name).symlink_to(dev_clips / name, target_is_directory=True)
    (root / "manifest.csv").write_text("clip,style,cyclic\npx_wes_archer_die,pixel-art,no\n"
                                       "cyc_pingus_walker,pixel-art,yes\n")
    return root


def _one_error_line(returncode: int, stderr: str) -> str:
    assert returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reseq: error:"), stderr
    assert "Traceback" not in stderr
    return lines[0]


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_missing_corpus_from_the_installed_script(run_cli, tmp_path):
    proc = run_cli("evaluate", tmp_path / "missing", "-o", tmp_path / "r")
    assert "does not exist" in _one_error_line(proc.returncode, proc.stderr)
    assert not (tmp_path / "r").exists()


def test_bad_inputs_give_one_line(tmp_path, corpus):
    def error(*args):
        r = invoke(*args)
        return _one_error_line(r.exit_code, r.stderr)

    (tmp_path / "empty").mkdir()
    assert "no non-cyclic" in error("evaluate", tmp_path / "empty", "-o", tmp_path / "r")
    assert "unknown metric" in error("evaluate", corpus, "--metrics", "l2,nope",
                                     "-o", tmp_path / "r")
    assert "does not exist" in error("evaluate", corpus, "--metrics", "dae", "--dae",
                                     tmp_path / "no.pt", "-o", tmp_path / "r")
    assert "SOURCES" in error("dae", "train", "-o", tmp_path / "d.pt")
    assert not (tmp_path / "r").exists()


def test_evaluate_writes_a_reproducible_report(tmp_path, corpus):
    out = tmp_path / "report"
    args = ("evaluate", corpus, "--metrics", "l2,ssim-2opt,isomap", "--size", "64", "-k", "2",
            "-q", "-o", out)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["metric"] for r in rows] == ["l2", "ssim-2opt", "isomap-best", "isomap-global"]
    assert {r["clip"] for r in rows} == {"px_wes_archer_die"} and rows[0]["frames"] == "7"
    before = (out / "results.csv").read_bytes()
    refused = invoke(*args)
    assert "already exists" in _one_error_line(refused.exit_code, refused.stderr)
    again = invoke(*args, "--force")
    assert again.exit_code == 0, again.output
    assert (out / "results.csv").read_bytes() == before
    assert (out / "fig7b_boxplot.png").stat().st_size > 1000


def test_dae_train_checkpoint_and_resume(tmp_path, dev_clips):
    import torch

    out = tmp_path / "dae.pt"
    args = ("dae", "train", dev_clips / "cyc_kenney_zombie_walk", "-o", out, "--batch-size",
            "2", "--checkpoint-every", "1", "--size", "64", "-q")
    first = invoke(*args, "--steps", "2")
    assert first.exit_code == 0, first.output
    assert "trained on 8 frames" in first.stdout
    assert torch.load(out, weights_only=True)["step"] == 2
    resumed = invoke(*args, "--steps", "3", "--resume")
    assert resumed.exit_code == 0, resumed.output
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["step"] == 3 and len(ckpt["losses"]) == 3
