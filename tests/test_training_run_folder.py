"""What `maeum train` and `maeum export` do to the files a user already has: run folders of another
architecture, checkpoints cut off mid-write, data paths relative to another folder, an export onto its source."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from conftest import read_metrics, tiny_config
from maeum.cli import main
from maeum.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("pyarrow")
pytest.importorskip("sklearn")

# torch's legacy ONNX exporter, used by maeum.training.export, warns about its own future.
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning"),
]


def _digests(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def network_run(prepared_aihub_32: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of mini_xception on real crops."""
    from maeum.training.trainer import train

    run = tmp_path_factory.mktemp("runs") / "mini"
    train(tiny_config(prepared_aihub_32, run, epochs=1, tensorboard=False))
    return run


def test_hog_svm_into_another_architecture_s_run_is_refused_and_the_run_kept(
    prepared_aihub_32: Path, network_run: Path
) -> None:
    from maeum.training.trainer import train

    before = _digests(network_run)
    with pytest.raises(ConfigError, match=r"last\.pt holds a mini_xception model, not hog_svm; use another --out"):
        train(tiny_config(prepared_aihub_32, network_run, model="hog_svm", tensorboard=False))
    assert _digests(network_run) == before


def test_a_fitted_hog_svm_run_is_not_fitted_again_and_keeps_its_c(
    prepared_aihub_32: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from maeum.training.trainer import train

    run = tmp_path / "svm"
    train(tiny_config(prepared_aihub_32, run, model="hog_svm", tensorboard=False))
    before = _digests(run)
    with caplog.at_level(logging.INFO, logger="maeum"):
        assert train(tiny_config(prepared_aihub_32, run, model="hog_svm", tensorboard=False)) == run / "best.pt"
    assert "hog_svm is already fitted in" in caplog.text
    assert _digests(run) == before and len(read_metrics(run)) == 1
    with pytest.raises(ConfigError, match=r"fitted with svm_c 0\.001, not 0\.1; use another --out"):
        train(tiny_config(prepared_aihub_32, run, model="hog_svm", svm_c=0.1, tensorboard=False))
    assert _digests(run) == before


def test_a_kill_while_best_pt_is_written_leaves_no_broken_best_pt(
    prepared_aihub_32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maeum.training import trainer

    def killed_while_saving(obj: object, f: str | Path, *args: object, **kwargs: object) -> None:
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")  # what a kill mid-write leaves
        raise KeyboardInterrupt

    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(trainer.torch, "save", killed_while_saving)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(tiny_config(prepared_aihub_32, run, epochs=1, tensorboard=False))
    assert not (run / "best.pt").exists() and not (run / "last.pt").exists()
    # The re-run starts over and writes whole checkpoints, which export and resume read.
    trainer.train(tiny_config(prepared_aihub_32, run, epochs=1, tensorboard=False))
    trainer.load_checkpoint(run / "best.pt")
    assert not list(run.glob("*.tmp"))


def test_export_names_the_data_path_it_misses(
    network_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.onnx"
    gone = tmp_path / "gone"
    assert main(["export", str(network_run / "best.pt"), "--out", str(out), "--data", str(gone)]) == 2
    err = capsys.readouterr().err
    assert f"--data {gone}: no such file or folder" in err and "was trained on" not in err

    # A run trained on a relative path, exported from another folder.
    state = torch.load(network_run / "best.pt", map_location="cpu", weights_only=False)
    data = Path(state["config"]["data"])
    relative = tmp_path / "relative.pt"
    torch.save({**state, "config": {**state["config"], "data": data.name}}, relative)
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(relative), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"was trained on {data.name}, a path relative to the folder `maeum train` ran in" in err
    assert f"{tmp_path} holds no {data.name}" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_exporting_a_file_again_onto_itself_is_refused(
    prepared_aihub_32: Path, network_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.onnx"
    args = ["export", str(network_run / "best.pt"), "--out", str(model), "--template-samples", "20"]
    assert main(args) == 0
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    capsys.readouterr()
    assert (
        main(["export", str(model), "--data", str(prepared_aihub_32), "--out", str(tmp_path / "." / "model.onnx")]) == 2
    )
    err = capsys.readouterr().err
    assert "is the file being exported again; write the new file under another name" in err
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before
    assert main(["export", str(model), "--data", str(tmp_path / "gone"), "--out", str(tmp_path / "again.onnx")]) == 2
    assert f"--data {tmp_path / 'gone'}: no such file or folder" in capsys.readouterr().err


def test_a_hog_svm_export_prints_no_exporter_warning(
    prepared_aihub_32: Path, tmp_path: Path, recwarn: pytest.WarningsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    from maeum.training.trainer import train

    run = tmp_path / "svm"
    train(tiny_config(prepared_aihub_32, run, model="hog_svm", tensorboard=False))
    recwarn.clear()
    assert main(["export", str(run / "best.pt"), "--out", str(tmp_path / "svm.onnx"), "--template-samples", "20"]) == 0
    assert "Constant folding" not in capsys.readouterr().err
    assert not [w for w in recwarn if "Constant folding" in str(w.message)]


def test_a_run_folder_exports_its_best_checkpoint(
    network_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from maeum.classify import EmotionClassifier

    out = tmp_path / "from_folder.onnx"
    assert main(["export", str(network_run), "--out", str(out), "--template-samples", "20"]) == 0
    assert EmotionClassifier(out).info.name == network_run.name  # named after the run, as from its best.pt
    empty = tmp_path / "empty"
    empty.mkdir()
    capsys.readouterr()
    assert main(["export", str(empty), "--out", str(tmp_path / "x.onnx")]) == 2
    assert f"{empty} is a folder without best.pt; name a run folder or its best.pt" in capsys.readouterr().err


def test_a_resume_with_other_settings_is_said_and_kept(
    prepared_aihub_32: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """config.json holds the settings of the last start; what the earlier epochs had goes into the checkpoints
    and summary.json, so the run's record is whole. Another device or folder is no change to the run."""
    import json

    from maeum.training.checkpoint import read_checkpoint
    from maeum.training.trainer import train

    run = tmp_path / "run"
    train(tiny_config(prepared_aihub_32, run, epochs=1, lr=0.1, tensorboard=False))
    assert json.loads((run / "summary.json").read_text())["resumes"] == []
    with caplog.at_level(logging.INFO, logger="maeum"):
        train(tiny_config(prepared_aihub_32, run, epochs=2, lr=0.05, workers=1, tensorboard=False))
    assert "with other settings than its first 1 epochs: epochs 1 → 2, lr 0.1 → 0.05" in caplog.text
    resumes = [{"after_epoch": 0, "changed": {"epochs": [1, 2], "lr": [0.1, 0.05]}}]
    assert json.loads((run / "summary.json").read_text())["resumes"] == resumes
    assert read_checkpoint(run / "last.pt")["resumes"] == resumes
    assert json.loads((run / "config.json").read_text())["lr"] == 0.05
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="maeum"):  # finished: the same settings again change nothing
        train(tiny_config(prepared_aihub_32, run, epochs=2, lr=0.05, tensorboard=False))
    assert "other settings" not in caplog.text
    assert json.loads((run / "summary.json").read_text())["resumes"] == resumes
