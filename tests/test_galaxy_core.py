"""Galaxy clumps (issue #13): generator truth, post-processing, metrics, checkpoints, the
pipeline end to end on a few images (seconds)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from glue_ssclump.core.errors import SSClumpError
from glue_ssclump.core.galaxy import (
    DEFAULT_MODEL_PATH,
    Candidates,
    GalaxyError,
    GalaxyImage,
    aperture_fluxes,
    baseline_clumps,
    build_detector,
    class_agnostic_nms,
    count,
    detect_clumps,
    evaluate,
    host_mask,
    image_from_planes,
    load_default_model,
    load_galaxy_checkpoint,
    lupton_rgb,
    match,
    merge_close,
    plot_evaluation,
    read_galaxy_image,
    save_galaxy_checkpoint,
    synth_galaxies,
    synth_galaxy,
    train_detector,
    write_gri_fits,
)
from glue_ssclump.core.galaxy.evaluate import average_precision
from glue_ssclump.core.galaxy.postprocess import inside_mask
from glue_ssclump.core.galaxy.train import augment, targets_from_truth
from glue_ssclump.core.progress import Cancelled, Progress

CATALOGUE_COLUMNS = ["clump_id", "x", "y", "x_min", "y_min", "x_max", "y_max", "ra", "dec",
                     "score", "class", "class_id", "flux_ratio"]


@pytest.fixture(scope="module")
def galaxies():
    """Three synthetic galaxies of a seed no model was trained on."""
    return list(synth_galaxies(3, seed=4242))


@pytest.fixture(scope="module")
def tiny_model(galaxies):
    """A detector trained for two steps: untrained weights, but a working pipeline."""
    torch.manual_seed(0)
    model, history = train_detector(galaxies, epochs=1, batch_size=2, crop=96, seed=1,
                                    device="cpu")
    return model, history


# --- generator -------------------------------------------------------------------------
def test_synth_truth_is_consistent():
    image, truth = synth_galaxy(7, n_clumps=3, n_stars=1)
    fwhm = truth.meta["psf_fwhm_pix"]
    assert image.planes.shape == (3, 200, 200) and image.planes.dtype == np.float32
    assert image.rgb.shape == (200, 200, 3) and image.rgb.dtype == np.uint8
    assert image.psf_fwhm_pix == pytest.approx(fwhm)
    assert list(truth["class"]) == ["clump"] * 3 + ["odd"]
    assert list(truth["class_id"]) == [1, 1, 1, 2]
    assert np.allclose(truth["flux_ratio"], truth["flux_r"] / truth.meta["host_flux_r"])
    clumps = truth[truth["class"] == "clump"]
    assert np.all((clumps["flux_ratio"] >= 0.003 * 0.8) & (clumps["flux_ratio"] <= 0.2))
    # clumps blue, stars on the (redder) stellar locus
    assert clumps["g_r"].max() <= 0.3 < truth[truth["class"] == "odd"]["g_r"].min() + 1e-9
    # boxes centred on the sources, half-side one FWHM (>= 3 px)
    h = max(fwhm, 3.0)
    assert np.allclose((truth["x_min"] + truth["x_max"]) / 2, truth["x"], atol=1e-3)
    assert np.allclose(truth["x_max"] - truth["x"], h, atol=1e-3)
    # sources separated by at least 2 FWHM
    xy = np.c_[truth["x"], truth["y"]]
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    assert d[np.triu_indices(len(xy), 1)].min() >= 2 * fwhm - 1e-6
    for k in ("x", "y", "x_min"):
        assert truth[k].unit == "pix"


def test_synth_is_deterministic_per_seed_and_index():
    a = list(synth_galaxies(2, seed=3))
    b = list(synth_galaxies(2, seed=3))
    c = list(synth_galaxies(2, seed=4))
    assert np.array_equal(a[1][0].planes, b[1][0].planes)
    assert not np.array_equal(a[0][0].planes, a[1][0].planes)
    assert not np.array_equal(a[0][0].planes, c[0][0].planes)


def test_synth_injected_flux_is_recovered_by_aperture_photometry():
    # a bright clump: its aperture flux (1.125 FWHM, 3-5 FWHM annulus) is its truth flux
    # within what a Moffat's wings outside the aperture lose (the paper's 1.03 correction
    # assumes a Gaussian); faint clumps are biased up by the host's light gradient
    ratios = []
    for seed in range(40):
        image, truth = synth_galaxy(seed, n_clumps=1, n_stars=0)
        if truth["flux_ratio"][0] < 0.05:
            continue
        flux = aperture_fluxes(image.planes[1], truth["x"], truth["y"], image.psf_fwhm_pix)
        ratios.append(flux[0] / truth["flux_r"][0])
        if len(ratios) == 4:
            break
    assert len(ratios) == 4 and 0.7 < np.median(ratios) < 1.2


def test_lupton_rgb_is_monotonic_and_uint8():
    planes = np.zeros((3, 20, 20), np.float32)
    planes += np.random.default_rng(0).normal(0, 1, planes.shape).astype(np.float32)
    planes[:, 5, 5] += 50
    planes[:, 10, 10] += 500
    rgb = lupton_rgb(planes)
    assert rgb.dtype == np.uint8 and rgb.shape == (20, 20, 3)
    assert rgb[10, 10].sum() > rgb[5, 5].sum() > rgb[0, 0].sum()


# --- post-processing ------------------------------------------------------------------
def test_nms_is_class_agnostic_at_iou_0_2():
    # IoU of [0,10]x[0,10] with [3,0]..[13,10] = 70/130 = 0.54; with a 7-px shift 0.18
    base = [0, 0, 10, 10]
    cands = Candidates([base, [3, 0, 13, 10], [7.5, 0, 17.5, 10]], [0.9, 0.8, 0.7],
                       [1, 2, 1])
    kept = class_agnostic_nms(cands, 0.2)
    assert list(kept.scores) == [0.9, 0.7]  # the odd one (label 2) suppressed by a clump
    # IoU 0.25 (> 0.2) suppressed, 0.15 kept
    a = Candidates([[0, 0, 10, 10], [6, 0, 16, 10]], [0.9, 0.5], [1, 1])  # IoU 40/160
    b = Candidates([[0, 0, 10, 10], [7.4, 0, 17.4, 10]], [0.9, 0.5], [1, 1])  # 26/174
    assert len(class_agnostic_nms(a, 0.2)) == 1
    assert len(class_agnostic_nms(b, 0.2)) == 2


def test_merge_within_one_fwhm_odd_wins():
    fwhm = 5.0
    cands = Candidates([[0, 0, 8, 8], [4, 0, 12, 8], [40, 40, 48, 48]], [0.6, 0.9, 0.5],
                       [1, 2, 1])
    merged = merge_close(cands, fwhm)
    assert len(merged) == 2
    first = merged.take(np.array([0]))
    assert first.labels[0] == 2 and first.scores[0] == 0.9
    assert (first.x[0], first.y[0]) == (6.0, 4.0)  # midpoint of the two centroids
    assert list(first.boxes[0]) == [0, 0, 12, 8]  # union
    # 1.2 FWHM apart: kept apart
    far = Candidates([[0, 0, 8, 8], [6, 0, 14, 8]], [0.6, 0.9], [1, 1])
    assert len(merge_close(far, fwhm)) == 2


def test_segmentation_cut_keeps_the_host_and_drops_the_sky():
    image, truth = synth_galaxy(11, n_clumps=0, n_stars=0)
    mask = host_mask(image)
    ny, nx = mask.shape
    assert mask[ny // 2, nx // 2] and not mask[2, 2] and not mask[-3, -3]
    cands = Candidates([[95, 95, 105, 105], [0, 0, 8, 8]], [0.9, 0.9], [1, 1])
    kept = inside_mask(cands, mask)
    assert len(kept) == 1 and kept.x[0] == 100


# --- metrics --------------------------------------------------------------------------
def _det(rows):
    return Table(rows=rows, names=("x", "y", "score", "class", "flux_ratio"),
                 dtype=(float, float, float, "U5", float))


def _truth(rows):
    return Table(rows=rows, names=("x", "y", "class", "flux_ratio"),
                 dtype=(float, float, "U5", float))


def test_match_radius_is_0_75_fwhm_and_one_to_one():
    idx = match([10.7, 10.0, 30.0], [10, 10, 30], [0.5, 0.9, 0.8], [10.0, 30.85], [10.0, 30],
                radius=0.75)
    # highest score takes the truth; the second detection on it is unmatched; 0.85 > 0.75
    assert list(idx) == [-1, 0, -1]


def test_count_completeness_purity_by_class_and_flux():
    fwhm = 4.0
    truth = _truth([(10, 10, "clump", 0.05), (50, 50, "clump", 0.01), (80, 80, "odd", 0.2),
                    (120, 120, "clump", 0.10)])
    det = _det([(10.5, 10, 0.9, "clump", 0.05),    # TP
                (80, 81, 0.8, "clump", 0.2),       # on a star: FP for 'clump'
                (120, 119, 0.4, "odd", 0.1),       # clump found as odd: missed for 'clump'
                (160, 160, 0.2, "clump", 0.04)])   # nothing there: FP (below 0.3)
    c = count([det], [truth], [fwhm], klass="clump", score_min=0.3)
    assert (c["n_truth"], c["n_found"], c["n_det"], c["n_tp"]) == (3, 1, 2, 1)
    assert c["completeness"] == pytest.approx(1 / 3) and c["purity"] == pytest.approx(0.5)
    a = count([det], [truth], [fwhm], klass="any", score_min=0.0)
    assert (a["n_truth"], a["n_found"], a["n_det"], a["n_tp"]) == (4, 3, 4, 3)
    f = count([det], [truth], [fwhm], klass="clump", score_min=0.0, flux_min=0.03)
    # truths >= 3 %: (10,10) and (120,120); detections measured >= 3 %: three 'clump' ones
    assert (f["n_truth"], f["n_found"], f["n_det"], f["n_tp"]) == (2, 1, 3, 1)
    empty = count([_det([])], [_truth([])], [fwhm])
    assert np.isnan(empty["completeness"]) and np.isnan(empty["purity"])


def test_average_precision_of_a_hand_curve():
    curve = [{"completeness": 0.5, "purity": 1.0}, {"completeness": 0.8, "purity": 0.5},
             {"completeness": float("nan"), "purity": 1.0}]
    assert average_precision(curve) == pytest.approx(0.5 * 1.0 + 0.3 * 0.5)


# --- checkpoints ----------------------------------------------------------------------
def test_checkpoint_round_trip_half_precision(tmp_path):
    model = build_detector()
    path = save_galaxy_checkpoint(tmp_path / "m.pt", model, {"note": "x"})
    loaded = load_galaxy_checkpoint(path)
    assert loaded.arch == "mobilenet_v3_fpn" and loaded.metadata["note"] == "x"
    a, b = model.net.state_dict(), loaded.net.state_dict()
    key = "roi_heads.box_predictor.cls_score.weight"
    assert b[key].dtype == torch.float32
    assert torch.allclose(a[key], b[key], atol=1e-3, rtol=1e-3)
    assert not loaded.net.training


def test_checkpoint_dataparallel_state_dict(tmp_path):
    model = build_detector()
    state = {"module." + k: v for k, v in model.net.state_dict().items()}
    torch.save({"model_state_dict": state, "epoch": 3}, tmp_path / "dp.pt")
    loaded = load_galaxy_checkpoint(tmp_path / "dp.pt")
    key = "roi_heads.box_predictor.bbox_pred.weight"
    assert torch.equal(loaded.net.state_dict()[key], model.net.state_dict()[key])


def test_resnet50_is_the_papers_torchvision_model():
    model = build_detector("resnet50_fpn")
    assert model.net.roi_heads.box_predictor.cls_score.out_features == 3
    assert model.net.transform.min_size == (800,)
    assert model.net.rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,), (512,))


def test_checkpoint_bad_files(tmp_path):
    with pytest.raises(GalaxyError, match="does not exist"):
        load_galaxy_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(GalaxyError, match="not a readable PyTorch file"):
        load_galaxy_checkpoint(tmp_path / "junk.pt")
    good = save_galaxy_checkpoint(tmp_path / "good.pt", build_detector())
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(GalaxyError, match="corrupted or truncated"):
        load_galaxy_checkpoint(tmp_path / "trunc.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(GalaxyError, match="refused for safety"):
        load_galaxy_checkpoint(tmp_path / "module.pt")
    state = build_detector().net.state_dict()
    five = dict(state)
    five["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(5, 256)
    torch.save(five, tmp_path / "five.pt")
    with pytest.raises(GalaxyError, match="5 classes"):
        load_galaxy_checkpoint(tmp_path / "five.pt")
    nan = dict(state)
    nan["roi_heads.box_head.fc6.weight"] = torch.full_like(nan["roi_heads.box_head.fc6.weight"],
                                                           float("nan"))
    torch.save(nan, tmp_path / "nan.pt")
    with pytest.raises(GalaxyError, match="NaN"):
        load_galaxy_checkpoint(tmp_path / "nan.pt")
    torch.save({"a": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(GalaxyError, match="unknown network"):
        load_galaxy_checkpoint(tmp_path / "other.pt")
    assert issubclass(GalaxyError, SSClumpError)


# --- reading images -------------------------------------------------------------------
def _wcs() -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [100.5, 100.5]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    return w


def test_read_fits_three_files_cube_and_png(tmp_path, galaxies):
    g = galaxies[0][0]
    image = GalaxyImage(g.planes, g.rgb, _wcs(), g.psf_fwhm_pix)
    cube = write_gri_fits(tmp_path / "gal.fits", image)
    back = read_galaxy_image(cube)
    assert np.array_equal(back.planes, image.planes)
    assert back.psf_fwhm_pix == pytest.approx(image.psf_fwhm_pix)
    assert back.wcs is not None and back.wcs.wcs.crval[0] == pytest.approx(150.0)
    header = _wcs().to_header()
    names = []
    for band, plane in zip("gri", image.planes, strict=True):
        names.append(tmp_path / f"{band}.fits")
        fits.PrimaryHDU(plane, header=header).writeto(names[-1])
    three = read_galaxy_image(names, psf_fwhm_pix=4.0)
    assert np.array_equal(three.planes, image.planes) and three.psf_fwhm_pix == 4.0
    assert three.wcs is not None
    # PNG: row 0 of the file is row 0 of rgb (the top row)
    from PIL import Image

    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[0, 5] = 255
    Image.fromarray(rgb).save(tmp_path / "g.png")
    png = read_galaxy_image(tmp_path / "g.png")
    assert png.planes is None and png.wcs is None and png.rgb.shape == (40, 30, 3)
    assert png.rgb[0, 5].tolist() == [255, 255, 255]


def test_read_bad_inputs(tmp_path, galaxies):
    with pytest.raises(GalaxyError, match="does not exist"):
        read_galaxy_image(tmp_path / "none.fits")
    (tmp_path / "a.fits").write_text("not fits")
    with pytest.raises(GalaxyError, match="not a readable FITS"):
        read_galaxy_image(tmp_path / "a.fits")
    fits.PrimaryHDU(np.zeros((20, 20), np.float32)).writeto(tmp_path / "one.fits")
    with pytest.raises(GalaxyError, match="got 2 files"):
        read_galaxy_image([tmp_path / "one.fits"] * 2)
    with pytest.raises(GalaxyError, match="1 plane"):
        read_galaxy_image(tmp_path / "one.fits")
    fits.PrimaryHDU(np.zeros((4, 20, 20), np.float32)).writeto(tmp_path / "four.fits")
    with pytest.raises(GalaxyError, match="shape"):
        read_galaxy_image(tmp_path / "four.fits")
    fits.PrimaryHDU(np.zeros((30, 30), np.float32)).writeto(tmp_path / "other.fits")
    with pytest.raises(GalaxyError, match="differ in shape"):
        read_galaxy_image([tmp_path / "one.fits", tmp_path / "one.fits",
                           tmp_path / "other.fits"])
    fits.PrimaryHDU(np.full((3, 20, 20), np.nan, np.float32)).writeto(tmp_path / "nan.fits")
    with pytest.raises(GalaxyError, match="no finite pixel"):
        read_galaxy_image(tmp_path / "nan.fits")
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(GalaxyError, match="PNG / JPEG"):
        read_galaxy_image(tmp_path / "x.png")
    with pytest.raises(GalaxyError, match="FWHM"):
        image_from_planes(galaxies[0][0].planes, psf_fwhm_pix=-1)


# --- training, detection, evaluation --------------------------------------------------
def test_augment_keeps_boxes_on_their_sources():
    img = torch.zeros(3, 50, 40)
    img[:, 10, 30] = 1.0  # a source at x=30, y=10
    target = {"boxes": torch.tensor([[27.0, 7.0, 33.0, 13.0]]), "labels": torch.tensor([1])}
    rng = np.random.default_rng(0)
    for _ in range(12):
        out, t = augment(img, target, rng)
        y, x = np.unravel_index(int(out[0].argmax()), out[0].shape)
        b = t["boxes"][0].numpy()
        assert ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) == (x, y)
    out, t = augment(img, target, rng, crop=20)
    assert out.shape == (3, 20, 20) and len(t["boxes"]) <= 1


def test_training_cancels_through_progress(galaxies):
    progress = Progress(cancel_event=threading.Event())
    progress.cancel()
    with pytest.raises(Cancelled):
        train_detector(galaxies[:2], epochs=1, batch_size=2, crop=64, progress=progress,
                       device="cpu")


def test_pipeline_end_to_end(tmp_path, galaxies, tiny_model):
    model, history = tiny_model
    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    assert model.metadata["training"]["n_images"] == 3
    image, truth = galaxies[0]
    image = GalaxyImage(image.planes, image.rgb, _wcs(), image.psf_fwhm_pix)
    table = detect_clumps(image, model, score_min=0.0, device="cpu")
    assert table.colnames == CATALOGUE_COLUMNS
    assert table["x"].unit == "pix" and table["ra"].unit == "deg"
    assert table.meta["psf_fwhm_pix"] == pytest.approx(image.psf_fwhm_pix)
    assert table.meta["model"]["arch"] == "mobilenet_v3_fpn"
    if len(table):
        assert list(table["clump_id"]) == list(range(1, len(table) + 1))
        assert np.all(np.isfinite(table["ra"]))
        assert set(table["class"]) <= {"clump", "odd"}
    base = baseline_clumps(image)
    assert base.colnames == CATALOGUE_COLUMNS
    images, truths = [g[0] for g in galaxies[:1]], [g[1] for g in galaxies[:1]]
    ev = evaluate(images, truths, model, thresholds=(0.0, 0.5))
    eb = evaluate(images, truths, method="baseline", thresholds=(0.0, 0.5))
    assert [c["threshold"] for c in ev.curve] == [0.0, 0.5]
    assert eb.summary["all"]["n_truth"] == sum(int((t["class"] == "clump").sum())
                                               for t in truths)
    assert "flux_ge_0.03" in ev.summary and len(ev.bins) == 4
    png = plot_evaluation([ev, eb], tmp_path / "ev.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    targets = targets_from_truth(truth)
    assert targets["boxes"].shape == (len(truth), 4)


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.exists(), reason="default model not built yet")
def test_default_model_finds_a_bright_clump():
    assert DEFAULT_MODEL_PATH.stat().st_size < 20 * 2**20
    model = load_default_model(device="cpu")
    found = tried = 0
    for seed in range(900, 960):
        image, truth = synth_galaxy(seed, n_clumps=1, n_stars=0)
        if truth["flux_ratio"][0] < 0.05:  # a clump well above the paper's 3 % cut
            continue
        table = detect_clumps(image, model, device="cpu")
        idx = match(table["x"], table["y"], table["score"], truth["x"], truth["y"],
                    0.75 * image.psf_fwhm_pix)
        tried += 1
        found += int((idx >= 0).any() and table["class"][idx >= 0][0] == "clump")
        if tried == 3:
            break
    assert tried == 3 and found == 3
