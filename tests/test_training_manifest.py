"""`maeum train` reads what `maeum data prepare` writes, and the export drops into `maeum analyze`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maeum.classify import EmotionClassifier
from maeum.cli import main
from maeum.data.records import AIHUB7, DataError

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def manifest(prepared_aihub: Path) -> Path:
    return prepared_aihub


def test_train_export_analyze_on_a_prepared_manifest(manifest: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", str(manifest), "--out", str(run), "--model", "mini_xception", "--epochs", "2",
            "--batch-size", "8", "--size", "64", "--color", "rgb", "--no-bf16"]  # fmt: skip
    assert main(args) == 0
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    assert state["labels"] == list(AIHUB7) and state["dataset"] == "aihub"
    assert len((run / "metrics.csv").read_text().splitlines()) == 3  # header + 2 epochs

    model = tmp_path / "aihub.onnx"
    assert main(["export", str(run / "best.pt"), "--out", str(model)]) == 0
    capsys.readouterr()
    photo = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
    assert main(["analyze", str(photo), "--model", str(model), "--lang", "ko"]) == 0
    result = json.loads(capsys.readouterr().out)
    (faces,) = result.values()
    assert EmotionClassifier(model).info.name == "run"  # named after the run folder
    assert set(faces[0]["probs"]) == {"기쁨", "당황", "분노", "불안", "상처", "슬픔", "중립"}


def test_resume_with_other_labels_is_refused(manifest: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import TrainConfig, train

    run = tmp_path / "run"
    spec = {"size": 64, "color": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3}
    train(TrainConfig(str(manifest), str(run), model="mini_xception", epochs=1, batch_size=8, input=spec, bf16=False))
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    state["labels"] = ["a", "b"]
    torch.save(state, run / "last.pt")
    with pytest.raises(ValueError, match="labels"):
        train(TrainConfig(str(manifest), str(run), model="mini_xception", epochs=2, batch_size=8, input=spec))


def test_a_manifest_without_a_val_split_is_refused(manifest: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from maeum.preprocess import InputSpec
    from maeum.training.datasets import load_training_data

    table = pq.read_table(manifest / "manifest.parquet")
    table = table.filter(table.column("split").to_numpy(zero_copy_only=False) != "val")
    (tmp_path / "images").symlink_to(manifest / "images")
    pq.write_table(table, tmp_path / "manifest.parquet")
    with pytest.raises(DataError, match="val split is empty"):
        load_training_data(
            tmp_path, InputSpec.from_dict({"size": 64, "color": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3})
        )
