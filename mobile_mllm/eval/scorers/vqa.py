"""Short-answer VQA scores: TextVQA's VQA accuracy, ChartQA's relaxed accuracy, OCRVQA/GQA exact match.

TextVQA (and any VQA benchmark VLMEvalKit does not know): prediction and each ground truth are
normalised (newlines/tabs to spaces, punctuation, number words to digits, articles dropped,
contractions restored); ground truth *i* scores min(1, matches among the *other* ground truths / 3)
and the row scores the mean over ground truths. With the usual 10 answers, a prediction 3+
annotators gave scores 1. (With a single ground truth no "other" answer exists, so every row
scores 0: VLMEvalKit's behaviour; our synthetic suites repeat the answer ten times.)

The table (VLMEvalKit's ``ImageVQADataset.evaluate``): with a ``split`` column, one value per split
plus ``Overall``; otherwise ``Overall`` plus one value per ``category``; in percent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mobile_mllm.eval.extract import process_punctuation
from mobile_mllm.eval.report import ScoreReport, ScoreTable, table_from_dict
from mobile_mllm.eval.scorers.context import Row, ScoreContext, mean, parse_answers

__all__ = [
    "normalize_vqa_answer",
    "relaxed_correctness",
    "score_exact",
    "score_relaxed",
    "score_textvqa",
    "vqa_accuracy",
    "vqa_table",
]

_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
# The official VQA evaluation's contraction table (data, as published with the VQA dataset).
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}


def normalize_vqa_answer(answer: str) -> str:
    """VQA answer normalisation (VLMEvalKit's ``process_answer``).

    Example:
        >>> normalize_vqa_answer("The two dogs.")
        '2 dogs'
        >>> normalize_vqa_answer("dont know")
        "don't know"
    """
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    text = process_punctuation(text)
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy of one prediction against its ground truths (mean over leave-one-out subsets).

    Example:
        >>> vqa_accuracy("two", ["2"] * 3 + ["3"] * 7)
        0.9
    """
    pred = normalize_vqa_answer(prediction)
    gts = [normalize_vqa_answer(a) for a in answers]
    scores = [min(1.0, sum(g == pred for j, g in enumerate(gts) if j != i) / 3) for i in range(len(gts))]
    return mean(scores)


def relaxed_correctness(target: str, prediction: str, max_relative_change: float = 0.05) -> bool:
    """ChartQA's relaxed match: numbers within 5 % (``%`` means /100), other text exact (case-insensitive).

    Example:
        >>> relaxed_correctness("40", "41.5")
        True
    """

    def to_float(text: str) -> float | None:
        try:
            return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            return None

    p, t = to_float(prediction), to_float(target)
    if p is not None and t:
        return abs(p - t) / abs(t) <= max_relative_change
    return prediction.lower() == target.lower()


def vqa_table(rows: Sequence[Row], scores: Sequence[float], columns: Sequence[str]) -> ScoreTable:
    """The VQA families' one-row table: per split + Overall, or Overall + per category, in percent."""
    values: dict[str, float] = {}
    if "split" in columns:
        for sp in sorted({str(r.get("split")) for r in rows}):
            values[sp] = mean(s for s, r in zip(scores, rows) if str(r.get("split")) == sp) * 100
        values["Overall"] = mean(scores) * 100
    else:
        values["Overall"] = mean(scores) * 100
        if "category" in columns:
            for c in sorted({str(r.get("category")) for r in rows}):
                values[c] = mean(s for s, r in zip(scores, rows) if str(r.get("category")) == c) * 100
    return table_from_dict("acc", values)


def score_rows(
    rows: Sequence[Row],
    columns: Sequence[str],
    ctx: ScoreContext,
    dataset_type: str,
    row_score: Callable[[str, list[str]], float],
) -> ScoreReport:
    """Score each row with ``row_score(prediction, answers)`` and build the VQA table and details."""
    preds = [str(r.get("prediction")) for r in rows]
    answers = [parse_answers(r.get("answer")) for r in rows]
    scores = [row_score(p, a) for p, a in zip(preds, answers)]
    table = vqa_table(rows, scores, columns)
    details = ScoreTable(
        name="details",
        columns=("index", "answer", "prediction", "score"),
        rows=tuple((r.get("index"), r.get("answer"), p, s) for r, p, s in zip(rows, preds, scores)),
    )
    return ScoreReport(dataset_type, ctx.dataset_name, {"Overall": table.rows[0][table.columns.index("Overall")]}, (table,), details)


def score_textvqa(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """TextVQA (VQA accuracy): the default for VQA benchmarks."""
    return score_rows(rows, columns, ctx, "textvqa", vqa_accuracy)


def score_relaxed(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """ChartQA: best relaxed match over the ground truths."""
    return score_rows(
        rows, columns, ctx, "chartqa", lambda p, gts: max(float(relaxed_correctness(g, p.strip())) for g in gts)
    )


def score_exact(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """OCRVQA / GQA: best exact match (stripped, case-insensitive) over the ground truths."""
    return score_rows(
        rows, columns, ctx, "ocrvqa", lambda p, gts: max(float(g.strip().lower() == p.strip().lower()) for g in gts)
    )
