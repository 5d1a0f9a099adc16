#!/usr/bin/env python3
"""Golden values for AxialEval metrics, from scikit-learn + numpy.

Writes Tests/AxialEvalTests/Fixtures/eval_goldens.json: small score/label arrays (ties, heavy
imbalance, all-tied scores, multi-label with unknowns (-1) and a one-valued class, multi-class with
unknowns) and sklearn's values for them. Bootstrap intervals are checked with explicit resample
index lists (the RNGs differ), using Axial's documented skip rules.

Run: "$(Tools/python-env)" Tools/goldens/make_eval_goldens.py
"""
import json
import os

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, precision_recall_curve,
                             precision_score, recall_score, roc_auc_score, roc_curve)

rng = np.random.default_rng(20240611)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "AxialEvalTests", "Fixtures", "eval_goldens.json")
THRESHOLD = 0.5


def fl(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64)]


def binary_case(name, y, s):
    y = np.asarray(y, dtype=int)
    s = np.asarray(s, dtype=np.float64)
    fpr, tpr, thr = roc_curve(y, s)
    fpr_all, tpr_all, thr_all = roc_curve(y, s, drop_intermediate=False)
    prec, rec, pthr = precision_recall_curve(y, s)
    pred = (s >= THRESHOLD).astype(int)
    assert np.isinf(thr[0]) and np.isinf(thr_all[0])
    return dict(
        name=name, labels=[int(v) for v in y], scores=fl(s),
        auroc=float(roc_auc_score(y, s)), average_precision=float(average_precision_score(y, s)),
        roc_fpr=fl(fpr), roc_tpr=fl(tpr), roc_thresholds=fl(thr[1:]),
        roc_all_fpr=fl(fpr_all), roc_all_tpr=fl(tpr_all), roc_all_thresholds=fl(thr_all[1:]),
        pr_precision=fl(prec), pr_recall=fl(rec), pr_thresholds=fl(pthr),
        threshold=THRESHOLD,
        precision=float(precision_score(y, pred, zero_division=0)),
        recall=float(recall_score(y, pred, zero_division=0)),
        f1=float(f1_score(y, pred, zero_division=0)),
        accuracy=float(accuracy_score(y, pred)),
    )


binary = []
# Ties: scores on a 0.1 grid.
y = rng.integers(0, 2, 40)
s = np.round(rng.random(40) * 0.6 + 0.35 * y, 1)
binary.append(binary_case("ties", y, s))
# Heavy imbalance: 5 positives in 60, some tied with negatives.
y = np.zeros(60, dtype=int); y[rng.choice(60, 5, replace=False)] = 1
s = np.round(rng.normal(0.3, 0.15, 60) + 0.2 * y, 2)
binary.append(binary_case("imbalanced", y, s))
# Every score tied: AUROC 0.5, AP = prevalence.
binary.append(binary_case("all_tied", [0, 1, 1, 0, 0, 1, 0], [0.7] * 7))
# sklearn's documentation example.
binary.append(binary_case("sklearn_doc", [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]))
# Continuous, no ties, logits (not probabilities).
y = rng.integers(0, 2, 25)
binary.append(binary_case("logits", y, rng.normal(0, 1, 25) + 0.8 * y))


def masked(yc, sc):
    k = (yc == 0) | (yc == 1)
    return yc[k], sc[k]


def multilabel_values(Y, S):
    C = Y.shape[1]
    auc, ap, f1 = [], [], []
    for c in range(C):
        yc, sc = masked(Y[:, c], S[:, c])
        if len(np.unique(yc)) < 2:
            auc.append(None); ap.append(None)
        else:
            auc.append(float(roc_auc_score(yc, sc))); ap.append(float(average_precision_score(yc, sc)))
        f1.append(float(f1_score(yc, (sc >= THRESHOLD).astype(int), zero_division=0)))
    valid = [a for a in auc if a is not None]
    valid_ap = [a for a in ap if a is not None]
    yr, sr = masked(Y.ravel(), S.ravel())
    return dict(
        auroc=auc, average_precision=ap,
        macro_auroc=float(np.mean(valid)) if valid else None,
        macro_average_precision=float(np.mean(valid_ap)) if valid_ap else None,
        micro_auroc=float(roc_auc_score(yr, sr)) if len(np.unique(yr)) == 2 else None,
        micro_average_precision=float(average_precision_score(yr, sr)) if len(np.unique(yr)) == 2 else None,
        f1=f1, micro_f1=float(f1_score(yr, (sr >= THRESHOLD).astype(int), zero_division=0)),
        excluded=[c for c in range(C) if auc[c] is None],
    )


# Multi-label: 30 patients x 4 classes, ~15% unknown, class 3 has only negatives among known labels.
P, C = 30, 4
Y = (rng.random((P, C)) < np.array([0.5, 0.3, 0.15, 0.0])).astype(int)
Y[rng.random((P, C)) < 0.15] = -1
S = np.clip(np.round(rng.random((P, C)) * 0.7 + 0.3 * (Y == 1), 2), 0, 1)
ml = dict(labels=Y.tolist(), scores=[fl(r) for r in S], threshold=THRESHOLD, **multilabel_values(Y, S))
# Without the one-valued class, the plain sklearn calls apply directly (no unknowns in this slice).
Yk, Sk = np.where(Y[:, :3] < 0, 0, Y[:, :3]), S[:, :3]
ml["sklearn_direct_macro"] = float(roc_auc_score(Yk, Sk, average="macro"))
ml["sklearn_direct_micro"] = float(roc_auc_score(Yk, Sk, average="micro"))
ml["sklearn_direct_ap_macro"] = float(average_precision_score(Yk, Sk, average="macro"))
ml["sklearn_direct_ap_micro"] = float(average_precision_score(Yk, Sk, average="micro"))

# Bootstrap with explicit resamples: Axial's rules (skip undefined per metric; macro needs every
# class of the point macro defined), numpy percentile (linear).
B = 40
resamples = [rng.integers(0, P, P) for _ in range(B)]
point_set = [c for c in range(C) if ml["auroc"][c] is not None]
acc = {k: [] for k in ["macro_auroc", "micro_auroc", "macro_ap", "micro_ap"]}
per_auc = [[] for _ in range(C)]; per_ap = [[] for _ in range(C)]
for idx in resamples:
    v = multilabel_values(Y[idx], S[idx])
    for c in range(C):
        if v["auroc"][c] is not None:
            per_auc[c].append(v["auroc"][c]); per_ap[c].append(v["average_precision"][c])
    if all(v["auroc"][c] is not None for c in point_set):
        acc["macro_auroc"].append(np.mean([v["auroc"][c] for c in point_set]))
        acc["macro_ap"].append(np.mean([v["average_precision"][c] for c in point_set]))
    if v["micro_auroc"] is not None:
        acc["micro_auroc"].append(v["micro_auroc"]); acc["micro_ap"].append(v["micro_average_precision"])


def ci(vals):
    if not vals:
        return None
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)), len(vals)]


bootstrap = dict(
    resamples=[[int(i) for i in r] for r in resamples],
    auroc=[ci(v) for v in per_auc], average_precision=[ci(v) for v in per_ap],
    macro_auroc=ci(acc["macro_auroc"]), micro_auroc=ci(acc["micro_auroc"]),
    macro_average_precision=ci(acc["macro_ap"]), micro_average_precision=ci(acc["micro_ap"]),
)

# Multi-class (staging I..IV): softmax probabilities, 36 patients, 3 unknown.
K, N = 4, 36
yk = rng.integers(0, K, N)
logits = rng.normal(0, 1, (N, K)); logits[np.arange(N), yk] += 1.0
probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
ymc = yk.copy(); ymc[rng.choice(N, 3, replace=False)] = -1
kn = ymc >= 0
mc = dict(
    class_index=[int(v) for v in ymc], scores=[fl(r) for r in probs],
    auroc=fl(roc_auc_score(ymc[kn], probs[kn], multi_class="ovr", average=None)),
    macro_auroc=float(roc_auc_score(ymc[kn], probs[kn], multi_class="ovr", average="macro")),
    micro_auroc=float(roc_auc_score(ymc[kn], probs[kn], multi_class="ovr", average="micro")),
    average_precision=fl(average_precision_score(np.eye(K)[ymc[kn]], probs[kn], average=None)),
    argmax_f1=fl(f1_score(ymc[kn], probs[kn].argmax(1), average=None, labels=list(range(K)), zero_division=0)),
    accuracy=float(accuracy_score(ymc[kn], probs[kn].argmax(1))),
)

pct_values = fl(rng.normal(0, 1, 17))
percentiles = dict(values=pct_values, q=[0, 2.5, 25, 50, 97.5, 100],
                   expected=[float(np.percentile(pct_values, q)) for q in [0, 2.5, 25, 50, 97.5, 100]])

doc = dict(sklearn_version=sklearn.__version__, numpy_version=np.__version__,
           binary=binary, multilabel=ml, bootstrap=bootstrap, multiclass=mc, percentiles=percentiles)
with open(OUT, "w") as f:
    json.dump(doc, f, indent=None, separators=(",", ":"))
print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")
