from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import tiny_model
from maeum.classify import DEFAULT_MODEL, METADATA_KEY, EmotionClassifier, ModelInfo, list_models
from maeum.errors import ConfigError, ModelError, UnknownNameError
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec


def _tiny_model(
    path: Path, meta: str | None, size: int = 8, channels: int = 1, k: int = 3, output: str = "logits"
) -> Path:
    """A real ONNX graph: global average of the input times fixed weights per class."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", k])
    w = helper.make_tensor("w", TensorProto.FLOAT, [channels, k], np.linspace(-1, 1, channels * k).tolist())
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["z"]),
    ]
    nodes.append(
        helper.make_node("Softmax", ["z"], ["y"])
        if output == "probabilities"
        else helper.make_node("Identity", ["z"], ["y"])
    )
    model = helper.make_model(
        helper.make_graph(nodes, "tiny", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, meta
    onnx.save(model, str(path))
    return path


def _info(size: int = 8, labels: tuple[str, ...] = ("a", "b", "c"), output: str = "logits") -> ModelInfo:
    template = np.array([[2.5, 3], [5.5, 3], [4, 4.5], [3, 6], [5, 6]])
    return ModelInfo("tiny", labels, InputSpec(size, "gray", (0.5,), (0.5,)), template, output, {"note": "x"})


def test_metadata_round_trip(tmp_path: Path) -> None:
    info = _info()
    clf = EmotionClassifier(_tiny_model(tmp_path / "m.onnx", info.to_metadata()))
    assert clf.labels == ("a", "b", "c")
    assert clf.info.input == info.input
    np.testing.assert_allclose(clf.info.template, info.template)
    assert clf.info.extra == {"note": "x"}
    probs = clf.predict(np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8))
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)  # logits were soft-maxed


def test_model_without_metadata_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no 'maeum' metadata"):
        EmotionClassifier(_tiny_model(tmp_path / "m.onnx", None))


@pytest.mark.parametrize(
    "meta",
    [
        "not json",
        json.dumps({"labels": ["a"]}),
        json.dumps({**json.loads(_info().to_metadata()), "output": "votes"}),
        json.dumps({**json.loads(_info().to_metadata()), "labels": ["a", "a", "b"]}),
    ],
)
def test_malformed_metadata_is_refused(tmp_path: Path, meta: str) -> None:
    with pytest.raises(ModelError):
        EmotionClassifier(_tiny_model(tmp_path / "m.onnx", meta))


def test_metadata_disagreeing_with_the_graph_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="disagrees"):
        EmotionClassifier(_tiny_model(tmp_path / "m.onnx", _info(size=16).to_metadata(), size=8))


def test_labels_that_do_not_match_the_output_are_refused(tmp_path: Path) -> None:
    path = _tiny_model(tmp_path / "m.onnx", _info().to_metadata(), k=4)  # 4 outputs, 3 labels
    with pytest.raises(ModelError, match="outputs 4 classes but its metadata names 3 labels"):
        EmotionClassifier(path)
    model = onnx.load(str(path))  # the class count left open in the declared output: onnxruntime infers it
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "K"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="outputs 4 classes"):
        EmotionClassifier(path)


def test_missing_unreadable_and_unknown_models(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        EmotionClassifier(tmp_path / "nope.onnx")
    with pytest.raises(ModelError, match="is a folder"):
        EmotionClassifier(tmp_path)
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(ModelError, match=r"cannot load.*damaged or not an ONNX model"):
        EmotionClassifier(tmp_path / "junk.onnx")
    (tmp_path / "best.pt").write_bytes(b"PK\x03\x04 a torch checkpoint")
    with pytest.raises(ModelError, match=r"is a training checkpoint; export it first: maeum export .*best.pt"):
        EmotionClassifier(tmp_path / "best.pt")
    with pytest.raises(UnknownNameError, match="ferplus-resnet-s"):
        EmotionClassifier("no-such-model")


def test_bundled_model_metadata() -> None:
    assert DEFAULT_MODEL in list_models()
    info = EmotionClassifier().info
    assert info.labels == FERPLUS7
    assert info.input == InputSpec(64, "gray", (0.5,), (0.5,))
    lm = info.template
    assert lm.shape == (5, 2) and lm[0, 1] == pytest.approx(lm[1, 1])  # level eyes
    assert lm[0, 0] + lm[1, 0] == pytest.approx(64, abs=0.01)  # centred


def test_bundled_model_is_trained(shared: Path) -> None:
    """On 700 FER+ test faces the bundled model must be far above chance (1/7)."""
    import csv

    from PIL import Image

    root = shared / "data" / "ferplus"
    faces, labels = [], []
    with (root / "fer2013new.csv").open() as f:
        for row in csv.DictReader(f):
            if row["Usage"] != "PrivateTest" or not row["Image name"]:
                continue
            votes = [int(row[c]) for c in (*FERPLUS7, "contempt", "unknown", "NF")]
            top = int(np.argmax(votes))
            if top < 7:
                faces.append(np.asarray(Image.open(root / "FER2013Test" / row["Image name"]).convert("L")))
                labels.append(top)
            if len(faces) == 700:
                break
    probs = EmotionClassifier().predict(np.stack(faces))
    accuracy = float((probs.argmax(1) == np.array(labels)).mean())
    assert accuracy > 0.75, accuracy


@pytest.fixture(scope="module")
def ferplus_test_faces(shared: Path) -> np.ndarray:
    """The first 20 FER+ Test crops (48x48 gray uint8)."""
    from PIL import Image

    files = sorted((shared / "data" / "ferplus" / "FER2013Test").glob("*.png"))[:20]
    return np.stack([np.asarray(Image.open(f).convert("L")) for f in files])


def test_crops_of_another_size_are_resized_to_the_model_s_input(ferplus_test_faces: np.ndarray) -> None:
    from maeum.preprocess import resize_crops

    clf = EmotionClassifier()  # 64 px; FER+ crops are 48 px
    resized = resize_crops(ferplus_test_faces, 64)
    assert resized.shape == (20, 64, 64)
    np.testing.assert_array_equal(clf.predict(ferplus_test_faces), clf.predict(resized))
    with pytest.raises(ValueError, match="square crops"):
        clf.predict(ferplus_test_faces[:, :, :40])


def test_predict_many_batches_and_mirrors_like_predict(ferplus_test_faces: np.ndarray, tmp_path: Path) -> None:
    faces = ferplus_test_faces
    clf = EmotionClassifier(tiny_model(tmp_path / "tiny.onnx"))  # a mirror changes its answers
    plain = clf.predict(faces)
    np.testing.assert_allclose(clf.predict_many(faces, batch_size=7), plain, atol=1e-6)
    mirrored = clf.predict_many(faces, batch_size=7, mirror=True)
    np.testing.assert_allclose(mirrored, (plain + clf.predict(faces[:, :, ::-1].copy())) / 2, atol=1e-6)
    assert not np.allclose(mirrored, plain, atol=1e-3)
    assert clf.predict_many(faces[:0]).shape == (0, len(FERPLUS7))


def test_runs_hold_256_images_by_default_mirrors_included(ferplus_test_faces: np.ndarray) -> None:
    default, fast = EmotionClassifier(), EmotionClassifier("ferplus-resnet-s-fast")
    assert (default.batch_size, fast.batch_size) == (256, 256)  # the mirror pass runs on the unsure faces only
    faces = np.concatenate([ferplus_test_faces] * 14)  # 280 faces: two runs
    np.testing.assert_allclose(default.predict(faces), default.predict(faces, batch_size=len(faces)), atol=1e-6)


def test_the_bundled_model_mirrors_the_faces_it_is_unsure_of(ferplus_test_faces: np.ndarray) -> None:
    faces = ferplus_test_faces
    clf = EmotionClassifier()
    assert not clf.info.mirrored and clf.flip_below == clf.info.flip_below == 0.55
    single, mirror = clf.predict(faces, mirror=False), clf.predict(faces[:, :, ::-1].copy(), mirror=False)
    unsure = single.max(1) < 0.55
    assert 0 < unsure.sum() < len(faces)  # these 20 faces hold both kinds
    served = clf.predict(faces)
    np.testing.assert_allclose(served[unsure], (single[unsure] + mirror[unsure]) / 2, atol=1e-6)
    np.testing.assert_allclose(served[~unsure], single[~unsure], atol=1e-6)
    np.testing.assert_allclose(served.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(clf.predict(faces, mirror=True), (single + mirror) / 2, atol=1e-6)
    clf.flip_below = 2.0  # every face
    np.testing.assert_allclose(clf.predict(faces), (single + mirror) / 2, atol=1e-6)
    clf.flip_below = None  # none
    np.testing.assert_allclose(clf.predict(faces), single, atol=1e-6)


def test_the_fast_bundled_model_is_the_same_file_without_the_mirror_gate(ferplus_test_faces: np.ndarray) -> None:
    faces = ferplus_test_faces
    default, fast = EmotionClassifier(), EmotionClassifier("ferplus-resnet-s-fast")
    assert "ferplus-resnet-s-fast" in list_models() and fast.path == default.path
    assert fast.info.name == "ferplus-resnet-s-fast" and fast.flip_below is None and fast.info.flip_below is None
    assert fast.info.input == default.info.input and fast.info.labels == default.info.labels
    assert (
        fast.info.extra["ferplus_test_majority_accuracy"]
        == default.info.extra["single_pass"]["ferplus_test_majority_accuracy"]
    )  # its scores are the single pass's
    assert "single_pass" not in fast.info.extra and "tta" not in fast.info.extra
    np.testing.assert_allclose(fast.predict(faces), default.predict(faces, mirror=False), atol=1e-6)
    assert not np.allclose(fast.predict(faces), default.predict(faces), atol=1e-3)


def test_a_mirror_gate_in_the_metadata_must_be_a_probability(tmp_path: Path) -> None:
    base = {"name": "g", "labels": ["a", "b", "c"], "input": {"size": 8, "color": "gray", "mean": [0.5], "std": [0.5]}}
    base |= {"template": [[0, 0]] * 5, "output": "logits", "tta": "flip-gated"}
    for bad in (None, "0.5", 0, 1.5):
        path = _tiny_model(tmp_path / f"g{bad}.onnx", json.dumps(base | {"flip_below": bad}))
        with pytest.raises(ModelError, match="flip_below must be a probability"):
            EmotionClassifier(path)
    assert (
        EmotionClassifier(_tiny_model(tmp_path / "ok.onnx", json.dumps(base | {"flip_below": 0.6}))).flip_below == 0.6
    )


def test_the_bundled_int8_model_answers_as_its_graph_does_without_integer_kernels(
    ferplus_test_faces: np.ndarray,
) -> None:
    """With integer fusion off, onnxruntime computes the int8 graph's rounding in float: the reference.
    On x86 CPUs without VNNI, maeum's sessions keep int8 exact even for files with full 8-bit
    weights (the bundled model as first exported strayed by up to 0.16 on these faces there)."""
    import onnxruntime as ort

    from maeum.classify import resolve_model
    from maeum.preprocess import resize_crops, to_model_input

    clf = EmotionClassifier()
    faces = resize_crops(ferplus_test_faces, clf.info.input.size)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    plain = ort.InferenceSession(str(resolve_model(DEFAULT_MODEL)), options, providers=["CPUExecutionProvider"])
    reference = plain.run(None, {plain.get_inputs()[0].name: to_model_input(faces, clf.info.input)})[0]
    np.testing.assert_allclose(clf.predict(faces, mirror=False), reference, atol=0.02)  # the graph: one pass


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_a_thread_count_below_one_or_not_whole_is_refused(threads: object) -> None:
    with pytest.raises(ConfigError, match="threads must be a whole number of 1 or more"):
        EmotionClassifier(DEFAULT_MODEL, threads=threads)  # type: ignore[arg-type]


def test_crops_in_the_wrong_container_or_type_are_refused_with_what_to_pass(ferplus_test_faces: np.ndarray) -> None:
    clf = EmotionClassifier()
    rgb = np.repeat(ferplus_test_faces[..., None], 3, axis=3)  # (20, 48, 48, 3)
    with pytest.raises(TypeError, match=r"np\.stack\(crops\)"):
        clf.classify(list(rgb))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"one crop of shape \(48, 48, 3\); pass faces\[None\]"):
        clf.classify(rgb[0])
    with pytest.raises(TypeError, match="must be uint8, got float32"):  # before Pillow's resize could fail on it
        clf.predict(rgb.astype(np.float32))
    with pytest.raises(TypeError, match="bundled model's name"):
        EmotionClassifier(None)  # type: ignore[arg-type]
    # A batch of gray crops is (N, S, S) too, and is still read as one.
    assert [e.label for e in clf.classify(rgb[:1])] == [e.label for e in clf.classify(ferplus_test_faces[:1])]
