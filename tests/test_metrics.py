"""Binary metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glue_ssclump.core.metrics import (
    accuracy,
    auc,
    binary_report,
    confusion,
    f1,
    nmi,
    precision,
    recall,
    roc_curve,
    roc_elbow,
)


def test_balanced_case():
    y = [1, 1, 1, 0, 0, 0, 1, 0]
    p = [1, 0, 1, 1, 0, 0, 1, 0]  # TP 3, FN 1, FP 1, TN 3
    assert confusion(y, p) == {"tp": 3, "fp": 1, "tn": 3, "fn": 1}
    assert precision(y, p) == pytest.approx(0.75)
    assert recall(y, p) == pytest.approx(0.75)
    assert f1(y, p) == pytest.approx(0.75)
    assert accuracy(y, p) == pytest.approx(0.75)


def test_precision_differs_from_recall():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([1, 1, 1, 1, 0])  # TP 2, FP 2, FN 0, TN 1
    assert precision(y, p) == pytest.approx(0.5)
    assert recall(y, p) == pytest.approx(1.0)
    assert f1(y, p) == pytest.approx(2 / 3)
    assert accuracy(y, p) == pytest.approx(0.6)
    # class 1 is the positive class: swapping the roles changes P and R
    assert precision(1 - y, 1 - p) == pytest.approx(1.0)
    assert recall(1 - y, 1 - p) == pytest.approx(1 / 3)


def test_zero_division_is_zero():
    y = [1, 0, 1]
    none_predicted = [0, 0, 0]
    assert precision(y, none_predicted) == 0.0
    assert recall(y, none_predicted) == 0.0
    assert f1(y, none_predicted) == 0.0
    no_positives = [0, 0, 0]
    assert recall(no_positives, [1, 0, 0]) == 0.0
    assert precision(no_positives, [0, 0, 0]) == 0.0
    assert f1(no_positives, no_positives) == 0.0
    assert accuracy(no_positives, no_positives) == 1.0
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])


def test_bool_inputs_and_validation():
    assert precision(np.array([True, False]), np.array([True, True])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="0 .* 1"):
        precision([0, 2], [0, 1])
    with pytest.raises(ValueError, match="length"):
        recall([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        auc([0, 1], [0.1, np.nan])


def _nmi_reference(a, b):
    a, b = np.asarray(a), np.asarray(b)
    n = len(a)
    ua, ub = np.unique(a), np.unique(b)
    mi = 0.0
    for x in ua:
        for y in ub:
            pxy = np.sum((a == x) & (b == y)) / n
            if pxy > 0:
                mi += pxy * math.log(pxy / (np.mean(a == x) * np.mean(b == y)))
    ha = -sum(np.mean(a == x) * math.log(np.mean(a == x)) for x in ua)
    hb = -sum(np.mean(b == y) * math.log(np.mean(b == y)) for y in ub)
    return mi / ((ha + hb) / 2)


def test_nmi():
    assert nmi([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)  # renaming is free
    assert nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    a, b = [0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1]
    assert nmi(a, b) == pytest.approx(_nmi_reference(a, b))
    assert nmi(a, b) == pytest.approx(nmi(b, a))
    with pytest.raises(ValueError, match="length"):
        nmi([0, 1], [0])


def test_roc_and_auc_hand_computed():
    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]
    fpr, tpr, thr = roc_curve(y, s)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert np.isinf(thr[0])
    np.testing.assert_allclose(thr[1:], [0.8, 0.4, 0.35, 0.1])
    assert auc(y, s) == pytest.approx(0.75)  # 3 of 4 (pos, neg) pairs ordered
    # J = 0.5 at 0.8 and at 0.35, both 0.5 from (0, 1): the higher threshold wins
    assert roc_elbow(y, s) == pytest.approx(0.8)


def test_roc_elbow_is_max_youden():
    y = [0, 0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.7, 0.6, 0.8, 0.9]
    # thresholds 0.9: J=1/3; 0.8: 2/3; 0.7: 2/3-1/4; 0.6: 1-1/4=0.75 (max); 0.3: 0.5
    assert roc_elbow(y, s) == pytest.approx(0.6)
    assert auc(y, s) == pytest.approx(11 / 12)


def test_single_class():
    assert math.isnan(auc([1, 1, 1], [0.2, 0.5, 0.9]))
    with pytest.raises(ValueError, match="both"):
        roc_curve([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="both"):
        roc_elbow([0, 0], [0.2, 0.3])
    rep = binary_report([1, 1], [0.2, 0.9])
    assert rep["P"] == 1.0 and rep["R"] == 0.5 and rep["Acc"] == 0.5
    assert math.isnan(rep["AUC"])


def test_binary_report():
    y = [0, 1, 0, 1]
    p = [0.2, 0.6, 0.5, 0.9]
    rep = binary_report(y, p)  # p >= 0.5 -> [0, 1, 1, 1]: TP 2, FP 1
    assert set(rep) == {"P", "R", "F1", "Acc", "AUC"}
    assert rep["P"] == pytest.approx(2 / 3)
    assert rep["R"] == pytest.approx(1.0)
    assert rep["F1"] == pytest.approx(0.8)
    assert rep["Acc"] == pytest.approx(0.75)
    assert rep["AUC"] == pytest.approx(1.0)
    strict = binary_report(y, p, threshold=0.55)  # -> [0, 1, 0, 1]
    assert strict["P"] == strict["R"] == strict["Acc"] == 1.0
    assert all(isinstance(v, float) for v in rep.values())
