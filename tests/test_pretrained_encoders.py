"""Transformer encoders: tiny models built from configs, saved to folders, loaded back
through VIDA's own loaders (no download anywhere)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tests.conftest import run_cli
from vida import open_catalog
from vida.encoders import get_encoder
from vida.encoders.audio import Projection, split_segments
from vida.store import FeatureStore

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 64, "image_size": 32, "patch_size": 8}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """ViT (with its image processor), DINOv2 (without: the fallback path), CLIP and
    VideoMAE, random weights, each in its own folder."""
    from transformers import (
        CLIPConfig,
        CLIPModel,
        Dinov2Config,
        Dinov2Model,
        VideoMAEConfig,
        VideoMAEModel,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    root = tmp_path_factory.mktemp("tiny-vision")
    torch.manual_seed(0)
    ViTModel(ViTConfig(**TINY), add_pooling_layer=False).save_pretrained(root / "tiny-vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "tiny-vit")
    Dinov2Model(Dinov2Config(**{k: v for k, v in TINY.items() if k != "intermediate_size"},
                             mlp_ratio=2)).save_pretrained(root / "tiny-dinov2")
    CLIPModel(CLIPConfig(
        text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "intermediate_size": 32, "vocab_size": 99},
        vision_config={k: TINY[k] for k in TINY}, projection_dim=8)
    ).save_pretrained(root / "tiny-clip")
    VideoMAEModel(VideoMAEConfig(**TINY, num_frames=4, tubelet_size=2)).save_pretrained(
        root / "tiny-videomae")
    return root


def frames(b=2, t=6, size=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (b, t, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("family", ["vit", "dinov2", "clip"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_image_backbones_shapes_determinism_and_batching(tiny_models, family, pooling):
    folder = tiny_models / f"tiny-{family}"
    encoder = get_encoder(f"hf-image:{folder}?pooling={pooling}", n_frames=6, device="cpu",
                          batch_size=4)
    assert encoder.name == f"tiny-{family}-{pooling}" and encoder.shape == (6, 32)
    assert encoder.params["model"] == str(folder) and encoder.params["pooling"] == pooling
    assert encoder.params["revision"].startswith("sha256:")
    x = frames()
    out = encoder.encode(x)
    assert out.shape == (2, 6, 32) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, encoder.encode(x))  # deterministic
    singles = np.concatenate([encoder.encode(x[i:i + 1]) for i in range(2)])
    np.testing.assert_allclose(out, singles, rtol=1e-4, atol=1e-5)  # batch = N single calls
    assert not np.allclose(out[0, 0], out[0, 1])  # different frames, different vectors


def test_cls_and_mean_pooling_differ_and_revision_follows_the_weights(tiny_models):
    x = frames(1, 3)
    cls = get_encoder(f"hf-image:{tiny_models / 'tiny-vit'}", n_frames=3, device="cpu")
    mean = get_encoder(f"hf-image:{tiny_models / 'tiny-vit'}?pooling=mean", n_frames=3,
                       device="cpu")
    assert not np.allclose(cls.encode(x), mean.encode(x))
    other = get_encoder(f"hf-image:{tiny_models / 'tiny-dinov2'}", n_frames=3, device="cpu")
    assert other.params["revision"] != cls.params["revision"]


@pytest.mark.parametrize("render", ["hsv", "xy"])
def test_flow_through_the_same_backbone(tiny_models, render):
    encoder = get_encoder(f"hf-flow:{tiny_models / 'tiny-vit'}?render={render}", n_frames=4,
                          device="cpu")
    assert encoder.modality == "flow" and encoder.name == f"tiny-vit-cls-{render}"
    assert encoder.params["render"] == render
    rng = np.random.default_rng(1)
    flow = rng.normal(0, 3, (2, 4, 40, 40, 2)).astype(np.float32)
    out = encoder.encode(flow)
    assert out.shape == (2, 4, 32)
    np.testing.assert_allclose(out, encoder.encode(flow), atol=1e-6)


def test_videomae_pools_tubelets_back_onto_the_time_steps(tiny_models):
    encoder = get_encoder(f"videomae:{tiny_models / 'tiny-videomae'}", n_frames=6,
                          device="cpu", batch_size=8)
    assert encoder.name == "tiny-videomae-tubelets"
    out = encoder.encode(frames(2, 6))
    assert out.shape == (2, 6, 32)
    # 4 sampled frames in tubelets of 2: two distinct vectors, in time order
    steps = encoder.step_tubelet(6)
    assert steps.tolist() == sorted(steps.tolist()) and set(steps.tolist()) == {0, 1}
    for t in range(6):
        np.testing.assert_allclose(out[0, t], out[0, int(np.argmax(steps == steps[t]))])
    singles = np.concatenate([encoder.encode(frames(2, 6)[i:i + 1]) for i in range(2)])
    np.testing.assert_allclose(out, singles, rtol=1e-4, atol=1e-5)


def test_cuda_path_runs_where_cuda_exists_and_says_so_where_not(tiny_models):
    spec = f"hf-image:{tiny_models / 'tiny-vit'}"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            get_encoder(spec, n_frames=2, device="cuda")
        pytest.skip("no CUDA device on this machine: the GPU path was not exercised")
    gpu = get_encoder(spec, n_frames=2, device="cuda", dtype="float16").encode(frames(1, 2))
    cpu = get_encoder(spec, n_frames=2, device="cpu").encode(frames(1, 2))
    np.testing.assert_allclose(gpu, cpu, rtol=0.05, atol=0.05)


def test_bfloat16_runs_and_is_close_to_float32(tiny_models):
    spec = f"hf-image:{tiny_models / 'tiny-vit'}"
    x = frames(1, 2)
    full = get_encoder(spec, n_frames=2, device="cpu").encode(x)
    half = get_encoder(spec, n_frames=2, device="cpu", dtype="bfloat16").encode(x)
    assert half.dtype == np.float32
    assert not np.array_equal(half, full)  # the model did run in bfloat16
    # bfloat16 keeps 8 bits of mantissa: each value within a few rounding steps (0.4 %
    # each) of float32's, the pattern intact
    assert np.abs(half - full).max() <= 0.02 * np.abs(full).max()
    assert np.corrcoef(half.ravel(), full.ravel())[0, 1] > 0.9999


def test_study_vit_is_seeded_vit_base_shaped_and_random(tiny_models):
    small = {k: v for k, v in TINY.items()}
    a = get_encoder("study-vit", n_frames=3, device="cpu", **small)
    b = get_encoder("study-vit", n_frames=3, device="cpu", **small)
    c = get_encoder("study-vit?seed=1", n_frames=3, device="cpu", **small)
    x = frames(1, 3)
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    assert not np.allclose(a.encode(x), c.encode(x))
    assert a.params["init"] == "random" and a.params["study"] is True
    same_frame = np.repeat(x[:, :1], 3, axis=1)
    out = a.encode(same_frame)
    assert not np.allclose(out[0, 0], out[0, 1])  # the temporal embedding tells steps apart
    base = get_encoder("study-vit", n_frames=18, device="cpu")
    assert base.shape == (18, 768) and base.params["patch_size"] == 16
    flow = get_encoder("study-vit-flow", n_frames=2, device="cpu", **small)
    assert flow.modality == "flow" and flow.encode(
        np.random.default_rng(0).normal(0, 2, (1, 2, 32, 32, 2)).astype(np.float32)
    ).shape == (1, 2, 32)


def wave(seconds=3.0, seed=0):
    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.2)
            + rng.normal(0, 0.02, len(t))).astype(np.float32)


@pytest.mark.parametrize("pooling", ["pooled", "cls", "mean"])
def test_ast_embeddings_per_segment(tiny_ast, pooling):
    encoder = get_encoder(f"ast:{tiny_ast}?pooling={pooling}", n_frames=6, device="cpu",
                          batch_size=4)
    assert encoder.modality == "audio" and encoder.shape == (6, 32)
    assert encoder.params["head_taggable"] is (pooling == "pooled")
    waves = np.stack([wave(seed=0), wave(seed=1)])
    out = encoder.encode(waves)
    assert out.shape == (2, 6, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out, encoder.encode(waves), atol=1e-6)
    singles = np.concatenate([encoder.encode(waves[i:i + 1]) for i in range(2)])
    np.testing.assert_allclose(out, singles, rtol=1e-4, atol=1e-5)


def test_ast_head_on_the_embedding_equals_the_full_forward_pass(tiny_ast, shared):
    """On real audio: AST's head applied to the stored pooled embedding of a segment gives
    the same top-k as ASTForAudioClassification on that segment."""
    from transformers import ASTFeatureExtractor, ASTForAudioClassification

    from vida.media.decode import decode_audio
    from vida.semantics.tagger import head_tags

    path = sorted((shared / "data/vida-example/Audio/applauding").glob("*.wav"))[0]
    real = decode_audio(path, seconds=3.0)
    encoder = get_encoder(f"ast:{tiny_ast}", n_frames=6, device="cpu")
    embedding = encoder.encode(real[None])  # [1, 6, 32]
    model = ASTForAudioClassification.from_pretrained(tiny_ast).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extractor = ASTFeatureExtractor.from_pretrained(tiny_ast)
    for t, segment in enumerate(split_segments(real, 6)):
        inputs = extractor([segment], sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            full = torch.sigmoid(model(**inputs).logits)[0].numpy()
        expected = [model.config.id2label[int(i)] for i in np.argsort(-full, kind="stable")[:5]]
        got = [label for label, _ in head_tags(str(tiny_ast), embedding[:, t:t + 1], 5)[0]]
        assert got == expected


def test_study_ast_is_a_seeded_random_projection_of_cls(tiny_ast):
    a = get_encoder(f"study-ast:{tiny_ast}", n_frames=3, device="cpu")
    b = get_encoder(f"study-ast:{tiny_ast}?seed=1", n_frames=3, device="cpu")
    x = wave()[None]
    assert a.name == "study-ast" and a.shape == (3, 128)
    assert a.params["projection"] == {"kind": "random-linear", "dim": 128, "seed": 0}
    assert not np.allclose(a.encode(x), b.encode(x))
    cls = get_encoder(f"ast:{tiny_ast}?pooling=cls", n_frames=3, device="cpu").encode(x)
    np.testing.assert_allclose(a.encode(x), cls @ a.weight + a.bias, rtol=1e-5, atol=1e-6)


def test_encode_adds_sets_fits_the_projection_on_train_only_and_tags_by_the_head(
        synthetic, tiny_ast, tiny_models):
    """`vida-batch encode` on clips already in the catalog: new sets only, PCA from the
    train split, resumable, and generated features in AST space tagged by AST's head."""
    vit = tiny_models / "tiny-vit"
    result = run_cli("encode", "--encoder", f"rgb=hf-image:{vit}",
                     "--encoder", f"audio=ast:{tiny_ast}", "--project", "8",
                     "--workers", "2", "--device", "cpu", "--no-progress", cwd=synthetic)
    assert result.returncode == 0, result.stderr
    catalog = open_catalog(synthetic / "catalog.db")
    store = FeatureStore(catalog, synthetic / "store")
    n_clips = catalog.sql("SELECT count(*) AS n FROM clips")["n"][0]
    assert len(store.keys("rgb/tiny-vit-cls")) == n_clips
    assert len(store.keys(f"audio/{tiny_ast.name}-pooled")) == n_clips
    projected = f"audio/{tiny_ast.name}-pooled-pca8"
    info = store.info(projected)
    assert info.shape == (18, 8) and info.params["projection"]["fitted_on"] == "train"
    assert catalog.sql("SELECT count(*) AS n FROM clips")["n"][0] == n_clips  # no new clips

    projection = Projection(info.params["projection"]["file"])
    train = sorted(catalog.sql("SELECT clip_key FROM clips WHERE split = 'train'")["clip_key"])
    full = store.read(f"audio/{tiny_ast.name}-pooled", train).reshape(-1, 32)
    everything = store.read(f"audio/{tiny_ast.name}-pooled",
                            sorted(store.keys(f"audio/{tiny_ast.name}-pooled"))).reshape(-1, 32)
    np.testing.assert_allclose(projection.mean, full.mean(axis=0), rtol=1e-4, atol=1e-5)
    assert not np.allclose(projection.mean, everything.mean(axis=0), atol=1e-5)
    keys = sorted(store.keys(projected))
    np.testing.assert_allclose(store.read(projected, keys), projection(store.read(
        f"audio/{tiny_ast.name}-pooled", keys)), rtol=1e-4, atol=1e-5)

    again = run_cli("encode", "--encoder", f"rgb=hf-image:{vit}", "--workers", "1",
                    "--device", "cpu", "--no-progress", cwd=synthetic)
    assert again.returncode == 0, again.stderr
    assert "0 clips encoded" in again.stdout and f"{n_clips} already done" in again.stdout

    from vida.jobs.training.generated import generate
    from vida.jobs.training.generator import GeneratorSpec, train_generator

    run_id = train_generator(catalog, store, "SELECT clip_key, class_name, split FROM clips "
                             "WHERE split IS NOT NULL", GeneratorSpec(audio=projected, epochs=1,
                                                                       hidden=16),
                             runs=str(synthetic / "runs"), progress=False)
    generated = generate(catalog, store, run_id)
    catalog.dispose()
    tagged = run_cli("tag", "--on", generated, "--source", "head", cwd=synthetic)
    assert tagged.returncode == 0, tagged.stderr
    tags = open_catalog(synthetic / "catalog.db").sql(
        "SELECT clip_key, count(*) AS n FROM audio_tags WHERE source = 'head' GROUP BY 1")
    assert len(tags) == n_clips and set(tags["n"]) == {5}


def test_encode_records_a_clip_whose_source_is_gone_and_goes_on(synthetic, tiny_models):
    from sqlalchemy import text

    catalog = open_catalog(synthetic / "catalog.db")
    first = catalog.sql("SELECT clip_key, source_uri FROM clips ORDER BY clip_key LIMIT 1")
    gone = synthetic / "moved-away.mp4"  # the clip's media went away after ingest
    with catalog.transaction() as session:
        session.execute(text("UPDATE clips SET source_uri = :u WHERE clip_key = :k"),
                        {"u": str(gone), "k": first["clip_key"][0]})
    catalog.dispose()
    result = run_cli("encode", "--encoder", f"rgb=hf-image:{tiny_models / 'tiny-vit'}",
                     "--workers", "1", "--device", "cpu", "--no-progress", cwd=synthetic)
    assert result.returncode == 0, result.stderr
    catalog = open_catalog(synthetic / "catalog.db")
    failures = catalog.sql("SELECT feature_set, clip_key, error FROM feature_failures")
    assert failures["feature_set"].tolist() == ["rgb/tiny-vit-cls"] and len(failures) == 1
    store = FeatureStore(catalog, synthetic / "store")
    n_clips = catalog.sql("SELECT count(*) AS n FROM clips")["n"][0]
    assert len(store.keys("rgb/tiny-vit-cls")) == n_clips - 1
    status = catalog.sql(f"SELECT status FROM clips WHERE clip_key = "
                         f"'{failures['clip_key'][0]}'")["status"][0]
    assert status != "failed"  # the clip's other features are fine


def test_encode_recomputes_flow_the_way_ingest_recorded_it(tmp_path):
    from tests.media_factory import write_video
    from vida.jobs.data.encode import flow_method_of

    (tmp_path / "media" / "waving").mkdir(parents=True)
    write_video(tmp_path / "media" / "waving" / "a.mp4", n_frames=20, fps=6)
    result = run_cli("ingest", str(tmp_path / "media"), "--flow", "dis", "--frames", "4",
                     "--workers", "1", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    catalog = open_catalog(tmp_path / "catalog.db", create=True)
    assert flow_method_of(catalog, "rgb/hog-color") == "dis"

