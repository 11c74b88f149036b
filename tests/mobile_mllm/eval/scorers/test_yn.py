"""Y/N families (default, MME, HallusionBench, POPE) against hand-computed numbers."""

from __future__ import annotations

import pytest

from mobile_mllm.eval.scorers.context import ScoreContext
from mobile_mllm.eval.scorers.hallusion import score_hallusion
from mobile_mllm.eval.scorers.mme import score_mme
from mobile_mllm.eval.scorers.pope import score_pope
from mobile_mllm.eval.scorers.yn import score_default

CTX = ScoreContext(dataset_name="t")


def test_default_yes_no_accuracy() -> None:
    rows = [
        {"index": "1", "answer": "Yes", "prediction": "Yes, it is.", "category": "a"},
        {"index": "2", "answer": "No", "prediction": "yes", "category": "a"},
        {"index": "3", "answer": "No", "prediction": "No.", "category": "b"},
        {"index": "4", "answer": "Yes", "prediction": "Yes and no", "category": "b"},  # Unknown: wrong
    ]
    report = score_default(rows, ("index", "answer", "prediction", "category"), CTX)
    assert report.tables[0].as_records() == [{"Overall": 50.0, "a": 50.0, "b": 50.0}]
    assert [d[4] for d in report.details.rows] == ["Yes", "Yes", "No", "Unknown"]


def mme_row(i: int, cat: str, image: str, answer: str, pred: str) -> dict:
    return {"index": str(i), "category": cat, "image_path": image, "answer": answer, "prediction": pred}


def test_mme_acc_plus_acc_per_category_and_sums() -> None:
    rows = [
        # color: image 1 both right, image 2 one right -> acc 3/4 = 75, acc+ 1/2 = 50 -> 125
        mme_row(1, "color", "c1.jpg", "Yes", "Yes"), mme_row(2, "color", "c1.jpg", "No", "No"),
        mme_row(3, "color", "c2.jpg", "Yes", "Yes"), mme_row(4, "color", "c2.jpg", "No", "Yes"),
        # OCR: both wrong -> 0
        mme_row(5, "OCR", "o1.jpg", "Yes", "No"), mme_row(6, "OCR", "o1.jpg", "No", "Yes"),
        # code_reasoning: both right -> 200
        mme_row(7, "code_reasoning", "r1.png", "Yes", "yes"), mme_row(8, "code_reasoning", "r1.png", "No", "no"),
    ]
    report = score_mme(rows, ("index", "category", "image_path", "answer", "prediction"), CTX)
    main = report.tables[0].as_records()[0]
    assert main["color"] == pytest.approx(125.0)
    assert main["OCR"] == 0.0
    assert main["code_reasoning"] == 200.0
    assert main["perception"] == pytest.approx(125.0)
    assert main["reasoning"] == 200.0
    cats = {r["category"]: (r["acc"], r["acc_plus"]) for r in report.tables[1].as_records()}
    assert cats["color"] == (75.0, 50.0)
    assert any("missing" in n for n in report.notes)  # 8 perception categories absent from this file


def h_row(index: str, cat: str, l2: str, answer: str, pred: str) -> dict:
    return {"index": index, "category": cat, "l2-category": l2, "answer": answer, "prediction": pred}


def test_hallusion_groups_by_l2_category_set_figure_and_question() -> None:
    rows = [
        # l2 'chart', set 0: figure 0 has q0, q1; figure 1 has q0, q1.
        h_row("VS_chart_x_0_0_0", "VS", "chart", "Yes", "Yes"),
        h_row("VS_chart_x_0_0_1", "VS", "chart", "No", "No"),
        h_row("VS_chart_x_0_1_0", "VD", "chart", "No", "Yes"),  # wrong
        h_row("VS_chart_x_0_1_1", "VD", "chart", "Yes", "Yes"),
        # l2 'map', set 0, figure 0, q0: same set/figure/question ids as above but another l2: own group
        h_row("VS_map_x_0_0_0", "VS", "map", "Yes", "Yes"),
    ]
    cols = ("index", "category", "l2-category", "answer", "prediction")
    report = score_hallusion(rows, cols, CTX)
    lines = {r["split"]: r for r in report.tables[0].as_records()}
    # aAcc 4/5; figures: chart_0_0 ok, chart_0_1 fail, map_0_0 ok -> 2/3; questions: chart_0_q0 (fig0 ok, fig1 wrong) fail,
    # chart_0_q1 ok, map_0_q0 ok -> 2/3
    assert lines["Overall"]["aAcc"] == pytest.approx(80.0)
    assert lines["Overall"]["fAcc"] == pytest.approx(200 / 3)
    assert lines["Overall"]["qAcc"] == pytest.approx(200 / 3)
    # category VS: rows 1, 2, 5 all right -> 100/100/100 (groups keyed by l2, not category)
    assert (lines["VS"]["aAcc"], lines["VS"]["fAcc"], lines["VS"]["qAcc"]) == (100.0, 100.0, 100.0)
    # category VD: rows 3 (wrong) and 4 (right): one figure group (chart_0_1) -> 0; question groups q0 fail, q1 ok
    assert (lines["VD"]["aAcc"], lines["VD"]["fAcc"], lines["VD"]["qAcc"]) == (50.0, 0.0, 50.0)
    assert lines["map"]["aAcc"] == 100.0
    assert report.headline["Overall"] == pytest.approx((80 + 200 / 3 + 200 / 3) / 3)


def test_pope_explodes_multi_category_rows() -> None:
    rows = [
        {"index": "1", "category": "adversarial,popular", "answer": "Yes", "prediction": "Yes"},  # TP in both
        {"index": "2", "category": "adversarial", "answer": "No", "prediction": "Yes"},  # FP
        {"index": "3", "category": "popular", "answer": "Yes", "prediction": "No"},  # FN
        {"index": "4", "category": "random", "answer": "No", "prediction": "No"},  # TN
    ]
    report = score_pope(rows, ("index", "category", "answer", "prediction"), CTX)
    lines = {r["split"]: r for r in report.tables[0].as_records()}
    # Overall counts row 1 twice: TP 2, FP 1, FN 1, TN 1 -> P = R = 2/3, F1 = 2/3, acc 3/5
    assert lines["Overall"]["Overall"] == pytest.approx(200 / 3)
    assert lines["Overall"]["precision"] == pytest.approx(200 / 3)
    assert lines["Overall"]["recall"] == pytest.approx(200 / 3)
    assert lines["Overall"]["acc"] == pytest.approx(60.0)
    # adversarial: rows 1 (TP), 2 (FP): P 0.5, R 1, F1 2/3, acc 0.5
    assert lines["adversarial"]["Overall"] == pytest.approx(200 / 3)
    assert lines["adversarial"]["acc"] == 50.0
    # random: only a TN -> P, R, F1 are 0 by the zero-denominator rule; acc 100
    assert (lines["random"]["Overall"], lines["random"]["acc"]) == (0.0, 100.0)
    assert list(lines) == ["Overall", "adversarial", "popular", "random"]
