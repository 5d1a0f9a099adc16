"""Goldens for AxialEval MultiLabelMetrics (PsPG's validator metrics) from scikit-learn.

Random multi-label cases with unknown (−1) entries, tied scores, a class without positives and a
class without negatives; each metric as sklearn computes it on the known entries of each class
(threshold: score > 0.5, as the reference's `threshold_to_binary`).

    python Tools/goldens/make_multilabel_metrics_goldens.py   (numpy, scikit-learn 1.9)
    → Tests/AxialEvalTests/Fixtures/multilabel_metrics.json
"""
import json, os
import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score, average_precision_score, f1_score, matthews_corrcoef

OUT = os.path.join(os.path.dirname(__file__), "../../Tests/AxialEvalTests/Fixtures/multilabel_metrics.json")


def case(rng, n, c, unknown, ties):
    y = (rng.random((n, c)) < rng.uniform(0.2, 0.6, size=c)).astype(int)
    s = np.clip(0.35 * y + rng.random((n, c)) * 0.75, 0, 1)
    if ties:
        s = np.round(s * 8) / 8                       # many equal scores, some exactly 0.5
    y[rng.random((n, c)) < unknown] = -1
    y[:, 0] = np.where(y[:, 0] == -1, -1, 0)          # class 0: no positives
    y[:, 1] = np.where(y[:, 1] == -1, -1, 1)          # class 1: no negatives
    return y, s


def metrics(y, s, thr=0.5):
    aucs, aps, f1s, mccs = [], [], [], []
    ay, ap_, apred = [], [], []
    for j in range(y.shape[1]):
        k = y[:, j] != -1
        yj, sj = y[k, j], s[k, j]
        pj = (sj > thr).astype(int)
        aucs.append(float(roc_auc_score(yj, sj)) if len(set(yj)) == 2 else None)
        aps.append(float(average_precision_score(yj, sj)) if yj.sum() > 0 else None)
        f1s.append(float(f1_score(yj, pj, zero_division=0)))
        mccs.append(float(matthews_corrcoef(yj, pj)))
        ay += list(yj); ap_ += list(sj); apred += list(pj)
    mean = lambda v: float(np.mean([x for x in v if x is not None]))
    return dict(macro_auc=mean(aucs), micro_auc=float(roc_auc_score(ay, ap_)), map=mean(aps),
                macro_f1=float(np.mean(f1s)), micro_f1=float(f1_score(ay, apred, zero_division=0)),
                mcc=float(np.mean(mccs)), class_auc=aucs, class_ap=aps)


def main():
    rng = np.random.default_rng(13)
    cases = []
    for n, c, unknown, ties in [(40, 5, 0.1, False), (25, 4, 0.0, True), (60, 7, 0.25, True), (12, 3, 0.2, False)]:
        y, s = case(rng, n, c, unknown, ties)
        cases.append(dict(labels=y.tolist(), scores=s.tolist(), expected=metrics(y, s)))
    with open(OUT, "w") as f:
        json.dump(dict(sklearn=sklearn.__version__, cases=cases), f)
    print(OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
