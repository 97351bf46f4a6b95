"""`maeum export --tta --int8`: flip test-time augmentation inside the graph, and int8 quantization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maeum.classify import EmotionClassifier, ModelInfo
from maeum.cli import main
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

GRAY48 = InputSpec.from_dict({"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def faces(small_ferplus: Path) -> dict[str, np.ndarray]:
    from maeum.training import ferplus

    return {split: ferplus.load_split(small_ferplus, split).images for split in ("train", "valid")}


def _decisive_net() -> torch.nn.Module:
    """An untrained resnet_s whose classifier is scaled up, so its answers differ clearly from face to face."""
    from maeum.training.nets import create_model

    torch.manual_seed(0)
    net = create_model("resnet_s", num_classes=len(FERPLUS7), in_chans=1, img_size=48).eval()
    with torch.no_grad():
        net.head[3].weight.mul_(1000)
    return net


def _info() -> ModelInfo:
    return ModelInfo(name="net", labels=FERPLUS7, input=GRAY48, template=np.zeros((5, 2)), output="probabilities")


def test_flip_tta_in_the_graph_is_the_mean_over_the_face_and_its_mirror(faces, tmp_path: Path) -> None:
    from maeum.training.export import export_onnx

    net, valid = _decisive_net(), faces["valid"]
    export_onnx(net, _info(), tmp_path / "plain.onnx", valid)
    export_onnx(net, _info(), tmp_path / "flip.onnx", valid, flip=True)
    plain, flip = EmotionClassifier(tmp_path / "plain.onnx"), EmotionClassifier(tmp_path / "flip.onnx")
    mirrored = np.ascontiguousarray(valid[:, :, ::-1])
    np.testing.assert_allclose(flip.predict(valid), plain.predict(valid, mirror=True), atol=1e-5)
    np.testing.assert_allclose(flip.predict(mirrored), flip.predict(valid), atol=1e-5)
    assert np.abs(plain.predict(mirrored) - plain.predict(valid)).max() > 0.1  # without it, a mirror changes answers


def test_an_int8_export_agrees_with_torch_and_a_badly_calibrated_one_is_refused(faces, tmp_path: Path) -> None:
    from maeum.training.export import export_onnx

    net = _decisive_net()
    report = export_onnx(net, _info(), tmp_path / "int8.onnx", faces["valid"], int8_faces=faces["train"])
    assert report["clear_top1_agreement"] >= 0.95 and report["max_abs_diff"] > 1e-4  # rounded, yet the same answers
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in onnx.load(tmp_path / "int8.onnx").graph.node}

    # Activation ranges measured on blank crops clip real faces: the check fails and writes nothing.
    blank = np.zeros((64, 48, 48), np.uint8)
    with pytest.raises(RuntimeError, match="disagrees with torch"):
        export_onnx(net, _info(), tmp_path / "blank.onnx", faces["valid"], int8_faces=blank)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"]


def _int8_weights(path: Path) -> list[np.ndarray]:
    constants = onnx.load(str(path)).graph.initializer
    return [onnx.numpy_helper.to_array(t) for t in constants if t.data_type == onnx.TensorProto.INT8]


def _plain_and_reference(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The file's answers in a plain onnxruntime session (its integer kernels), and with integer fusion
    off, where onnxruntime computes the int8 graph's rounding in float: the reference."""
    import onnxruntime as ort

    answers = []
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        answers.append(session.run(None, {"input": x})[0])
    return answers[0], answers[1]


@pytest.mark.parametrize("model", ["export", "ferplus-resnet-s"])
def test_int8_weights_use_seven_bits_so_any_onnxruntime_session_computes_them_exactly(
    model: str, faces, tmp_path: Path
) -> None:
    """On x86 CPUs without VNNI, onnxruntime's fast kernel adds pairs of uint8 x int8 products in
    saturating 16 bits: exact only while weights stay within 64 in size (2 x 255 x 64 < 32,768)."""
    from maeum.classify import resolve_model
    from maeum.preprocess import resize_crops, to_model_input
    from maeum.training.export import export_onnx

    if model == "export":
        path, spec, crops = tmp_path / "int8.onnx", GRAY48, faces["valid"]
        export_onnx(_decisive_net(), _info(), path, crops, int8_faces=faces["train"])
    else:
        path = resolve_model(model)
        spec = EmotionClassifier(path).info.input
        crops = resize_crops(faces["valid"], spec.size)
    weights = _int8_weights(path)
    assert weights and max(int(np.abs(w).max()) for w in weights) == 64  # the 7-bit range, used to its end
    plain, reference = _plain_and_reference(path, to_model_input(crops, spec))
    np.testing.assert_allclose(plain, reference, atol=0.02)


def test_the_scores_of_the_written_file_reach_its_metadata_and_a_failed_scoring_leaves_nothing(
    faces, tmp_path: Path
) -> None:
    from maeum.training.export import export_onnx

    net, valid = _decisive_net(), faces["valid"]
    seen: list[np.ndarray] = []

    def score(written: EmotionClassifier) -> dict[str, float]:
        seen.append(written.predict(valid))
        return {"valid_agreement": 0.5}

    export_onnx(net, _info(), tmp_path / "scored.onnx", valid, int8_faces=faces["train"], score=score)
    written = EmotionClassifier(tmp_path / "scored.onnx")
    assert written.info.extra["valid_agreement"] == 0.5
    np.testing.assert_array_equal(seen[0], written.predict(valid))  # scored: the int8 file as written

    def broken(written: EmotionClassifier) -> dict[str, float]:
        raise KeyError("valid")

    with pytest.raises(KeyError):
        export_onnx(net, _info(), tmp_path / "unscored.onnx", valid, score=broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.onnx"]


def test_train_export_tta_int8_evaluate_card_and_analyze(small_ferplus: Path, tmp_path: Path, capsys) -> None:
    run, model = tmp_path / "run", tmp_path / "served.onnx"
    args = ["train", "--data", str(small_ferplus), "--out", str(run), "--model", "resnet_s", "--epochs", "3",
            "--batch-size", "16", "--threads", "1", "--no-bf16", "--no-tensorboard"]  # fmt: skip
    assert main(args) == 0
    assert main(["export", str(run / "best.pt"), "--out", str(tmp_path / "float.onnx")]) == 0
    assert main(["export", str(run / "best.pt"), "--out", str(model), "--tta", "--int8"]) == 0
    assert "clear answers" in capsys.readouterr().err

    served = EmotionClassifier(model)
    assert served.info.extra["tta"] == "flip" and "int8" in served.info.extra["quantization"]
    assert model.stat().st_size < 0.4 * (tmp_path / "float.onnx").stat().st_size
    # The accuracy in the metadata is the written file's own.
    from maeum.training import ferplus

    valid = ferplus.load_split(small_ferplus, "valid")
    keep = valid.majority() >= 0
    accuracy = float((served.predict(valid.images[keep]).argmax(1) == valid.majority()[keep]).mean())
    assert served.info.extra["ferplus_valid_majority_accuracy"] == round(accuracy, 4)
    assert served.info.extra["ferplus_valid_images"] == int(keep.sum())

    report = tmp_path / "eval"
    assert main(["evaluate", str(model), "--data", str(small_ferplus), "--split", "test", "--out", str(report)]) == 0
    card = tmp_path / "CARD.md"
    assert main(["card", str(model), "--report", str(report), "--run", str(run), "--out", str(card)]) == 0
    text = card.read_text(encoding="utf-8")
    assert "flip test-time augmentation in the graph" in text and "int8 (static, QDQ)" in text
    assert f"--out {model} --name run --tta --int8" in text

    capsys.readouterr()
    assert main(["analyze", str(PHOTO), "--model", str(model)]) == 0
    (found,) = json.loads(capsys.readouterr().out).values()
    assert len(found) == 1 and set(found[0]["probs"]) == set(FERPLUS7)

    # --tta gated: one pass in the graph, int8 ranges measured on the crops and their mirrors as the
    # graph above measured them, so its two passes averaged are that file's answers.
    from maeum.training.gate import FLIP_BELOW_CANDIDATES

    gated_path, cut_path = tmp_path / "gated.onnx", tmp_path / "cut.onnx"
    assert main(["export", str(run / "best.pt"), "--out", str(gated_path), "--tta", "gated", "--int8"]) == 0
    gated = EmotionClassifier(gated_path)
    assert gated.info.extra["tta"] == "flip-gated" and not gated.info.mirrored
    assert gated.flip_below in (*FLIP_BELOW_CANDIDATES, 1.0) and "mirror images" in gated.info.extra["quantization"]
    test = ferplus.load_split(small_ferplus, "test").images
    np.testing.assert_allclose(gated.predict(test, mirror=True), served.predict(test), atol=1e-5)
    single = gated.predict(valid.images[keep], mirror=False)
    accuracy = float((single.argmax(1) == valid.majority()[keep]).mean())
    assert gated.info.extra["single_pass"]["ferplus_valid_majority_accuracy"] == round(accuracy, 4)
    accuracy = float((gated.predict(valid.images[keep]).argmax(1) == valid.majority()[keep]).mean())
    assert gated.info.extra["ferplus_valid_majority_accuracy"] == round(accuracy, 4)  # served through its gate
    # The graph file exported again as gated keeps its int8 graph, the mirror pass cut out: the same file.
    assert main(["export", str(model), "--data", str(small_ferplus), "--out", str(cut_path), "--tta", "gated",
                 "--int8"]) == 0  # fmt: skip
    cut = EmotionClassifier(cut_path)
    assert cut.flip_below == gated.flip_below and cut.info.extra["quantization"] == served.info.extra["quantization"]
    assert cut.info.extra["graph_kept"] is True and "graph_kept" not in gated.info.extra
    np.testing.assert_array_equal(cut.predict(test, mirror=False), gated.predict(test, mirror=False))
    assert [w.tolist() for w in _int8_weights(cut_path)] == [w.tolist() for w in _int8_weights(model)]
    report = tmp_path / "eval-gated"
    assert (
        main(["evaluate", str(gated_path), "--data", str(small_ferplus), "--split", "test", "--out", str(report)]) == 0
    )
    assert main(["card", str(gated_path), "--report", str(report), "--run", str(run), "--out", str(card)]) == 0
    text = card.read_text(encoding="utf-8")
    assert f"below {gated.flip_below:g} are averaged with their mirror image" in text
    assert f"--out {gated_path} --name run --tta gated --int8" in text


def test_hog_svm_exports_in_int8_with_its_epsilons_kept_float(small_ferplus: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    run, model = tmp_path / "svm", tmp_path / "svm.onnx"
    args = ["train", "--data", str(small_ferplus), "--out", str(run), "--model", "hog_svm", "--labels", "majority",
            "--no-tensorboard"]  # fmt: skip
    assert main(args) == 0
    # HOG's block norm divides by sqrt(sum + epsilon): an epsilon rounded to 0 in int8 gave NaN.
    args = ["export", str(run / "best.pt"), "--out", str(model), "--int8", "--template-samples", "60"]
    assert main(args) == 0
    from maeum.training import ferplus

    blank_and_faces = np.concatenate(
        [np.zeros((1, 48, 48), np.uint8), ferplus.load_split(small_ferplus, "test").images]
    )
    probs = EmotionClassifier(model).predict(blank_and_faces)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)


def test_a_model_trained_at_64_px_on_the_ferplus_folder_exports_from_a_moved_copy_of_the_data(
    small_ferplus: Path, prepared_aihub: Path, tmp_path: Path, capsys
) -> None:
    import shutil

    from PIL import Image

    from maeum.preprocess import InputSpec
    from maeum.training import ferplus
    from maeum.training.datasets import load_training_data

    data = tmp_path / "ferplus"
    shutil.copytree(small_ferplus, data)
    # The 48 px crops are resized bilinearly to the model's input, as `maeum evaluate` resizes them.
    spec = InputSpec.from_dict({"size": 64, "color": "gray", "mean": [0.5], "std": [0.5]})
    crops = load_training_data(data, spec).splits["train"].images
    first = ferplus.load_split(data, "train").images[0]
    assert crops.shape[1:] == (64, 64)
    assert np.array_equal(crops[0], np.asarray(Image.fromarray(first).resize((64, 64), Image.Resampling.BILINEAR)))

    run, model = tmp_path / "run", tmp_path / "model.onnx"
    args = ["train", "--data", str(data), "--out", str(run), "--model", "mini_xception", "--size", "64",
            "--epochs", "1", "--batch-size", "16", "--threads", "1", "--no-bf16", "--no-tensorboard"]  # fmt: skip
    assert main(args) == 0
    moved = data.rename(tmp_path / "elsewhere")  # as on another machine than the one that trained
    capsys.readouterr()
    assert main(["export", str(run / "best.pt"), "--out", str(model), "--template-samples", "60"]) == 2
    assert f"was trained on {data}, which is not on this machine; pass --data" in capsys.readouterr().err
    assert not model.exists()
    export = ["export", str(run / "best.pt"), "--out", str(model), "--template-samples", "60", "--data", str(moved)]
    assert main([*export[:-1], str(prepared_aihub)]) == 2  # other labels: they could not score it
    assert "best.pt answers neutral, happiness" in capsys.readouterr().err and not model.exists()
    assert main(export) == 0

    served = EmotionClassifier(model)
    assert served.info.input.size == 64
    valid = ferplus.load_split(moved, "valid")
    keep = valid.majority() >= 0
    probs = served.predict(load_training_data(moved, spec).splits["val"].images[keep])
    accuracy = float((probs.argmax(1) == valid.majority()[keep]).mean())
    assert served.info.extra["ferplus_valid_majority_accuracy"] == round(accuracy, 4)


def test_a_shipped_model_exports_again_with_other_serving_options(
    small_ferplus: Path, prepared_aihub: Path, tmp_path: Path, capsys
) -> None:
    from maeum.training import ferplus

    bundled = EmotionClassifier()
    test = ferplus.load_split(small_ferplus, "test").images
    plain, served = tmp_path / "plain.onnx", tmp_path / "served.onnx"
    assert main(["export", "ferplus-resnet-s", "--out", str(plain)]) == 2
    assert "exporting ferplus-resnet-s again needs --data" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "gone.onnx"), "--data", str(small_ferplus), "--out", str(plain)]) == 2
    assert "gone.onnx: no such ONNX file" in capsys.readouterr().err
    # Trained on FER+, it cannot be checked or scored on AI Hub's crops and labels: refused, nothing written.
    assert main(["export", "ferplus-resnet-s", "--data", str(prepared_aihub), "--out", str(plain)]) == 2
    assert "was trained on ferplus data" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

    # Float, without the mirror: the same network, so its answers averaged with the mirror's are the file's.
    assert main(["export", "ferplus-resnet-s", "--data", str(small_ferplus), "--out", str(plain)]) == 0
    again = EmotionClassifier(plain)
    assert again.info.name == "ferplus-resnet-s" and not again.info.mirrored
    assert "quantization" not in again.info.extra and not _int8_weights(plain)
    assert again.info.extra["training"] == bundled.info.extra["training"]
    assert again.info.extra["exported_from"].startswith("ferplus-resnet-s (sha256 ")
    np.testing.assert_allclose(again.predict(test, mirror=True), bundled.predict(test, mirror=True), atol=0.05)
    valid = ferplus.load_split(small_ferplus, "valid")
    keep = valid.majority() >= 0
    accuracy = float((again.predict(valid.images[keep]).argmax(1) == valid.majority()[keep]).mean())
    assert again.info.extra["ferplus_valid_majority_accuracy"] == round(accuracy, 4)  # scored as written

    # From that file, served as the bundled model is: the same answers.
    args = ["export", str(plain), "--data", str(small_ferplus), "--out", str(served), "--tta", "--int8"]
    assert main([*args, "--name", "mine"]) == 0
    mine = EmotionClassifier(served)
    assert mine.info.name == "mine" and mine.info.mirrored and "7 bits" in str(mine.info.extra["quantization"])
    assert str(mine.info.extra["exported_from"]).startswith("plain.onnx (sha256 ")
    assert (mine.predict(test).argmax(1) == bundled.predict(test).argmax(1)).mean() >= 0.95
    card, report = tmp_path / "CARD.md", tmp_path / "eval"
    assert main(["evaluate", str(served), "--data", str(small_ferplus), "--split", "test", "--out", str(report)]) == 0
    assert main(["card", str(served), "--report", str(report), "--out", str(card)]) == 0
    text = card.read_text(encoding="utf-8")
    assert "**Exported again** from plain.onnx (sha256 " in text and "--out FILE --tta --int8" in text

    # The bundled int8 file exported again in int8 keeps its graph as it is: no second rounding.
    kept = tmp_path / "kept.onnx"
    args = ["export", "ferplus-resnet-s", "--data", str(small_ferplus), "--out", str(kept), "--int8"]
    assert main(args) == 0
    np.testing.assert_array_equal(EmotionClassifier(kept).predict(test), bundled.predict(test, mirror=False))
    assert EmotionClassifier(kept).flip_below is None  # no --tta: one pass
    scored = tmp_path / "eval-kept"
    assert main(["evaluate", str(kept), "--data", str(small_ferplus), "--split", "test", "--out", str(scored)]) == 0
    assert main(["card", str(kept), "--report", str(scored), "--out", str(card)]) == 0
    assert "from ferplus-resnet-s (sha256 " in (text := card.read_text(encoding="utf-8"))
    assert "its int8 graph kept as it was (`maeum export SOURCE --data DATA --out FILE --int8`)" in text


@pytest.mark.parametrize("named", ["best.pt", "run folder"])
def test_an_out_that_is_the_checkpoint_is_refused_before_any_work(
    named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--out RUN/best.pt` would replace the checkpoint with the ONNX file: refused, the checkpoint kept."""
    run = tmp_path / "run"
    run.mkdir()
    checkpoint = run / "best.pt"
    checkpoint.write_bytes(b"the weights")
    source = str(checkpoint) if named == "best.pt" else str(run)
    assert main(["export", source, "--out", str(run / ".." / "run" / "best.pt")]) == 2
    err = capsys.readouterr().err
    assert "which writing would destroy; choose another output path" in err and len(err.strip().splitlines()) == 1
    assert checkpoint.read_bytes() == b"the weights"
