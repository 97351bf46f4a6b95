"""`maeum ensemble`: ensembles of real models checked against their members by hand, failure paths, the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from PIL import Image

from conftest import EXAMPLES, tiny_model
from maeum.analyzer import Analyzer
from maeum.classify import DEFAULT_MODEL, EmotionClassifier, ModelInfo, resolve_model
from maeum.cli import main
from maeum.errors import MaeumError, ModelError
from maeum.imageio import load_image
from maeum.labels import FERPLUS7
from maeum.onnx_session import create_session
from maeum.preprocess import InputSpec, resize_crops
from maeum.training.ensemble import EnsembleError, build_ensemble

BUNDLED = EmotionClassifier(DEFAULT_MODEL).info  # gray, FER+ labels
S = BUNDLED.input.size  # its input size in pixels
PERMUTED = (*FERPLUS7[3:], *FERPLUS7[:3])  # the same labels in another order
LUMA = np.array([0.299, 0.587, 0.114], np.float32)

# torch's legacy ONNX exporter, used by maeum.training.export, warns about its own future.
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning"),
]


# -- members: the bundled model, a torch model exported in the test, tiny hand-written graphs -----------


@pytest.fixture(scope="module")
def mini64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mini-XCEPTION, random but fixed weights, 64 px RGB, mean/std 0.5, labels in PERMUTED order."""
    torch = pytest.importorskip("torch")
    from maeum.training.export import export_onnx
    from maeum.training.nets import create_model

    torch.manual_seed(0)
    model = create_model("mini_xception", num_classes=7, in_chans=3)
    # A fresh net answers nearly the same for every input: set its BatchNorm statistics on a batch of
    # noise and sharpen the head, so that its outputs differ from face to face and from class to class.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # running statistics = this batch's
    with torch.no_grad():
        model.train()(torch.rand(32, 3, 64, 64) * 2 - 1)
        model.eval().head[0].weight.mul_(5)
    info = ModelInfo(
        "mini64",
        PERMUTED,
        InputSpec(64, "rgb", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        BUNDLED.template * (64 / 48),
        "probabilities",
        {"architecture": "mini_xception", "parameters": sum(p.numel() for p in model.parameters())},
    )
    check = np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("members") / "mini64.onnx"
    export_onnx(model, info, path, check_faces=check)
    return path


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _run_float(path: Path, x: np.ndarray) -> np.ndarray:
    """A member's raw output for an already normalised float batch (N, C, S, S), in maeum's session settings
    (a plain session computes int8 differently on CPUs without VNNI: see onnx_session.py)."""
    session = create_session(path)
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]


# -- real faces ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fer_faces(shared: Path) -> np.ndarray:
    """24 FER+ test crops, 48 px gray uint8 (N, 48, 48)."""
    folder = shared / "data" / "ferplus" / "FER2013Test"
    files = sorted(folder.glob("*.png"))[:24]
    return np.stack([np.asarray(Image.open(f).convert("L")) for f in files])


@pytest.fixture(scope="module")
def photo_faces(analyzer: Analyzer) -> np.ndarray:
    """Faces of the example photos aligned at 64 px RGB onto the bundled template, and their mirrors."""
    crops = []
    for name in ("astronaut.jpg", "grace_hopper.jpg"):
        image = load_image(EXAMPLES / name)
        for face in analyzer.detect(image):
            crops.append(analyzer.aligner(image, np.asarray(face.landmarks), BUNDLED.template * (64 / S), 64))
    assert len(crops) == 2
    crops += [c[:, ::-1] for c in crops]
    return np.ascontiguousarray(np.stack(crops))


# -- ensembles of real models ---------------------------------------------------------------------------


def test_the_bundled_model_twice_is_the_bundled_model(tmp_path: Path, fer_faces: np.ndarray) -> None:
    info = build_ensemble([DEFAULT_MODEL, DEFAULT_MODEL], tmp_path / "e.onnx")
    ensemble = EmotionClassifier(tmp_path / "e.onnx")
    assert ensemble.info.labels == FERPLUS7
    assert ensemble.info.input == InputSpec(S, "gray", (0.0,), (1.0,)) == info.input
    assert ensemble.info.output == "probabilities"
    np.testing.assert_allclose(ensemble.info.template, BUNDLED.template, atol=1e-3)
    extra = ensemble.info.extra
    assert extra["architecture"] == "ensemble"
    assert extra["parameters"] == 2 * BUNDLED.extra["parameters"]
    digest = hashlib.sha256(resolve_model(DEFAULT_MODEL).read_bytes()).hexdigest()
    assert (
        extra["members"]
        == [{"name": DEFAULT_MODEL, "file": "ferplus_resnet_s.onnx", "weight": 0.5, "sha256": digest}] * 2
    )

    # Its members' mirror gate runs outside their graph: the ensemble averages their single passes.
    got, ref = ensemble.predict(fer_faces), EmotionClassifier(DEFAULT_MODEL).predict(fer_faces, mirror=False)
    assert ensemble.flip_below is None and np.abs(got - ref).max() < 1e-5
    # The batch dimension is dynamic: one crop and many give the same answers.
    assert np.abs(ensemble.predict(fer_faces[:1]) - ref[:1]).max() < 1e-5


def test_mixed_members_are_converted_resized_reordered_and_weighted(
    tmp_path: Path, mini64: Path, photo_faces: np.ndarray
) -> None:
    """ferplus (S px gray) and mini64 (64 px RGB, labels permuted), weights 3:1, checked by hand."""
    info = build_ensemble([DEFAULT_MODEL, mini64], tmp_path / "e.onnx", weights=[3, 1], name="mixed")
    assert info.name == "mixed" and info.labels == FERPLUS7
    assert info.input == InputSpec(64, "rgb", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    np.testing.assert_allclose(info.template, BUNDLED.template * (64 / S), atol=1e-9)
    assert [m["weight"] for m in info.extra["members"]] == [0.75, 0.25]  # type: ignore[union-attr]
    got = EmotionClassifier(tmp_path / "e.onnx").predict(photo_faces)
    order = [PERMUTED.index(label) for label in FERPLUS7]

    # By hand in float: [0, 1] pixels -> gray (BT.601) -> resize 64 -> S (cv2 linear) -> (x - 0.5) / 0.5.
    x = photo_faces.astype(np.float32) / 255
    gray = np.stack([cv2.resize(g, (S, S), interpolation=cv2.INTER_LINEAR) for g in x @ LUMA])
    p_fer = _run_float(resolve_model(DEFAULT_MODEL), ((gray - 0.5) / 0.5)[:, None])
    p_mini = _run_float(mini64, ((x - 0.5) / 0.5).transpose(0, 3, 1, 2))[:, order]
    by_hand = 0.75 * p_fer + 0.25 * p_mini
    # The bundled member runs in int8: a rounding difference of 1e-7 in its input (the graph's gray
    # against numpy's) can move a value across a quantisation step and its answer by about 1e-3.
    # A wrong conversion moves it further: the channels' plain mean for gray by 1.2e-2.
    assert np.abs(got - by_hand).max() < 4e-3

    # As serving would do it: each member alone on uint8 crops resized to its size; rounding costs a little.
    small = np.stack([cv2.resize(c, (S, S), interpolation=cv2.INTER_LINEAR) for c in photo_faces])
    members = 0.75 * EmotionClassifier(DEFAULT_MODEL).predict(small)
    members += 0.25 * EmotionClassifier(mini64).predict(photo_faces)[:, order]
    assert np.abs(got - members).max() < 5e-2
    assert (got.argmax(1) == members.argmax(1)).all()
    assert not np.allclose(got, EmotionClassifier(mini64).predict(photo_faces)[:, order], atol=1e-2)


def test_weights_one_zero_give_the_first_member(tmp_path: Path, mini64: Path, photo_faces: np.ndarray) -> None:
    """mini64 first: the ensemble keeps its label order, and weights 1,0 give exactly its output."""
    build_ensemble([mini64, DEFAULT_MODEL], tmp_path / "e.onnx", weights=[1, 0])
    ensemble = EmotionClassifier(tmp_path / "e.onnx")
    assert ensemble.labels == PERMUTED
    got, ref = ensemble.predict(photo_faces), EmotionClassifier(mini64).predict(photo_faces)
    assert np.abs(got - ref).max() < 1e-5


def test_logit_member_of_an_older_opset_is_soft_maxed(tmp_path: Path, fer_faces: np.ndarray) -> None:
    """A 48 px logits model at opset 13 next to the bundled one (opset 17), at the bundled size."""
    tiny = tiny_model(tmp_path / "tiny.onnx")
    build_ensemble([DEFAULT_MODEL, tiny], tmp_path / "e.onnx", weights=[1, 1])
    faces = resize_crops(fer_faces, S)  # the ensemble's input
    got = EmotionClassifier(tmp_path / "e.onnx").predict(faces)
    # The tiny member sees the crops resized to its 48 px inside the graph (cv2's linear, in float).
    x = np.stack([cv2.resize(f, (48, 48), interpolation=cv2.INTER_LINEAR) for f in faces.astype(np.float32) / 255])
    logits = _run_float(tiny, ((x - 0.4) / 0.25)[:, None])
    by_hand = 0.5 * EmotionClassifier(DEFAULT_MODEL).predict(faces, mirror=False) + 0.5 * _softmax(logits)
    assert np.abs(got - by_hand).max() < 1e-4
    assert onnx.load(str(tmp_path / "e.onnx")).opset_import[0].version == 17


def test_a_member_framing_faces_differently_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    at_48 = BUNDLED.template * (48 / S)  # the tiny model's 48 px
    shifted = tiny_model(tmp_path / "shifted.onnx", template=at_48 + np.array([0, 4]))  # 4 of 48 px: > 5 %
    with caplog.at_level(logging.WARNING, logger="maeum"):
        build_ensemble([DEFAULT_MODEL, shifted], tmp_path / "e.onnx")
    assert "frames faces differently" in caplog.text
    caplog.clear()
    close = tiny_model(tmp_path / "close.onnx", template=at_48 + np.array([0, 1]))
    with caplog.at_level(logging.WARNING, logger="maeum"):
        build_ensemble([DEFAULT_MODEL, close], tmp_path / "e2.onnx")
    assert "frames faces differently" not in caplog.text


# -- failure paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "match"),
    [([1.0], "2 members"), ([1.0, 2.0, 3.0], "one weight per member"), ([1.0, -1.0], "non-negative"),
     ([0.0, 0.0], "all zero"), ([1.0, float("nan")], "finite")],
)  # fmt: skip
def test_bad_weights_are_refused(tmp_path: Path, weights: list[float], match: str) -> None:
    with pytest.raises(EnsembleError, match=match):
        build_ensemble([DEFAULT_MODEL, DEFAULT_MODEL], tmp_path / "e.onnx", weights=weights)
    assert not (tmp_path / "e.onnx").exists()


def test_other_label_sets_are_refused(tmp_path: Path) -> None:
    other = tiny_model(tmp_path / "other.onnx", labels=(*FERPLUS7[:6], "contempt"))
    with pytest.raises(EnsembleError, match=r"other\.onnx.*lacks \['fear'\], adds \['contempt'\]"):
        build_ensemble([DEFAULT_MODEL, other], tmp_path / "e.onnx")


def test_unusable_members_are_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"member 2 .*nope\.onnx.*not found"):
        build_ensemble([DEFAULT_MODEL, tmp_path / "nope.onnx"], tmp_path / "e.onnx")
    bare = tiny_model(tmp_path / "bare.onnx", labels=None)
    with pytest.raises(ModelError, match=r"bare\.onnx has no 'maeum' metadata"):
        build_ensemble([bare, DEFAULT_MODEL], tmp_path / "e.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00 not a protobuf \xff" * 10)
    with pytest.raises(ModelError, match=r"junk\.onnx as an ONNX model"):
        build_ensemble([DEFAULT_MODEL, tmp_path / "junk.onnx"], tmp_path / "e.onnx")
    with pytest.raises(MaeumError, match="unknown model 'no-such-model'"):
        build_ensemble([DEFAULT_MODEL, "no-such-model"], tmp_path / "e.onnx")
    with pytest.raises(EnsembleError, match="at least two"):
        build_ensemble([DEFAULT_MODEL], tmp_path / "e.onnx")
    assert not any(tmp_path.glob("e*.onnx")) and not any(tmp_path.glob(".*tmp*"))


def test_an_out_that_is_a_member_is_refused_and_the_member_kept(
    tmp_path: Path, mini64: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    member = tmp_path / "member.onnx"
    member.write_bytes(mini64.read_bytes())
    before = hashlib.sha256(member.read_bytes()).hexdigest()
    code = main(["ensemble", DEFAULT_MODEL, str(member), "--out", str(tmp_path / "." / "member.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "is member 2" in err and "another name" in err and len(err.strip().splitlines()) == 1
    assert hashlib.sha256(member.read_bytes()).hexdigest() == before
    assert EmotionClassifier(member).info.extra.get("architecture") != "ensemble"


def test_an_out_that_is_a_member_named_by_its_bundled_name_is_refused(
    tmp_path: Path, mini64: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`maeum ensemble ferplus-resnet-s B.onnx --out <the bundled file>` would replace the shipped model."""
    import types

    import maeum.classify

    bundled = tmp_path / "models"  # a copy of the package's models folder, so a failure harms no real file
    bundled.mkdir()
    shipped = bundled / resolve_model(DEFAULT_MODEL).name
    shipped.write_bytes(resolve_model(DEFAULT_MODEL).read_bytes())
    monkeypatch.setattr(maeum.classify, "resources", types.SimpleNamespace(files=lambda _: bundled))
    before = hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert main(["ensemble", DEFAULT_MODEL, str(mini64), "--out", str(shipped)]) == 2
    err = capsys.readouterr().err
    assert f"is member 1 ({DEFAULT_MODEL})" in err and len(err.strip().splitlines()) == 1
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == before


# -- the command line -----------------------------------------------------------------------------------


def test_cli_ensemble_then_analyze(capsys: pytest.CaptureFixture[str], tmp_path: Path, mini64: Path) -> None:
    out = tmp_path / "e.onnx"
    code = main(["ensemble", DEFAULT_MODEL, str(mini64), "--out", str(out), "--weights", "2,1", "--name", "duo"])
    _, err = capsys.readouterr()
    assert code == 0 and out.is_file()
    assert "duo" in err and "mini64" in err and "64x64 rgb" in err and "weight 0.667" in err

    photo = str(EXAMPLES / "astronaut.jpg")
    code = main(["analyze", photo, "--model", str(out), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and len(data[photo]) == 1
    probs = data[photo][0]["probs"]
    assert list(probs) == list(FERPLUS7) and sum(probs.values()) == pytest.approx(1, abs=1e-3)
    assert data[photo][0]["label"] in FERPLUS7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([DEFAULT_MODEL], "at least two models"),
        ([DEFAULT_MODEL, DEFAULT_MODEL, "--weights", "1,x"], "separated by commas"),
        ([DEFAULT_MODEL, DEFAULT_MODEL, "--weights", "1,2,3"], "one per model"),
        ([DEFAULT_MODEL, DEFAULT_MODEL, "--weights", "0,0"], "all zero"),
        ([DEFAULT_MODEL, DEFAULT_MODEL, "--weights=-1,2"], "negative"),
        ([DEFAULT_MODEL, "missing.onnx"], "missing.onnx not found"),
    ],
)
def test_cli_errors_exit_2_with_a_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    code = main(["ensemble", *args, "--out", str(tmp_path / "e.onnx")])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "e.onnx").exists()


def test_cli_negative_weights_get_a_hint_then_the_real_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:  # argparse reads "-1,2" as an option, not as the value
        main(["ensemble", DEFAULT_MODEL, DEFAULT_MODEL, "--weights", "-1,2", "--out", "e.onnx"])
    assert exit_info.value.code == 2
    assert "(a value starting with '-' is written --weights=-1,2)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a value simply left out gets no such hint
        main(["ensemble", DEFAULT_MODEL, DEFAULT_MODEL, "--weights"])
    assert "expected one argument\n" in capsys.readouterr().err
