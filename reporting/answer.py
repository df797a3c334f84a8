"""The answer: the questions a carry-over spec asks, each answered in one sentence generated from its table, so that
the words can only say what the CIs say. A spec's optional field

    "answer": [{"question": "Does densification coax neural collapse?",
                "clauses": [{"contrast": "sliding − vanilla: log10 train Tr Σ_W / Tr Σ_B",
                             "subject": "sliding's Tr Σ_W / Tr Σ_B on the training images",
                             "−": "is smaller than vanilla's", "0": "is not detectably different from vanilla's",
                             "+": "is larger than vanilla's",
                             "meaning": {"−": "densification coaxes NC1-type collapse"}}, ...]}, ...]

names, for each contrast of the table, what each direction of its CI would say, and optionally what it would mean
where every dataset agrees (written before the runs). A clause
reads each dataset's direction ('+', '−', '0': the CI at its family's level lies above, below or around 0) and prints
the words of that direction with the estimate and its CI; a dataset without the pairs for a CI leaves the clause
"not yet". A contrast on a log10 scale is printed as the ratio it estimates: 10^(mean of the log differences), a ratio
of geometric means, with its CI in the same terms.
"""
from typing import NamedTuple

from reporting.stats import level_text

DIRECTIONS = ("+", "−", "0")  # the words a clause holds, one per direction of a CI


class Reading(NamedTuple):
    """One dataset's reading of one contrast, as its table has it."""
    n: int  # pairs
    mean: float  # mean paired difference A − B (of log10 values where `log10`)
    lo: float  # its CI at the family's level (NaN: none)
    hi: float
    level: float  # the family's Bonferroni level
    direction: str | None  # '+', '−', '0'; None: fewer than 2 pairs
    points: bool  # accuracy, in % points
    log10: bool  # scored on the log10 of a metric
    says: str = ""  # the verdict of the folder's table (`stats.judge`)


def estimate(r: Reading) -> str:
    """The estimate and its CI as a clause prints them: "+1.11 points, 98.8 % CI [+0.21, +2.01]", "+0.338, 99.2 % CI
    [+0.272, +0.405]", or for a log10 contrast "a ratio of 0.045, 99.2 % CI 0.021 to 0.093"."""
    level = level_text(r.level)
    if r.log10:
        return f"a ratio of {10 ** r.mean:.2g}, {level} CI {10 ** r.lo:.2g} to {10 ** r.hi:.2g}"
    d = 2 if r.points else 3
    return f"{r.mean:+.{d}f}{' points' if r.points else ''}, {level} CI [{r.lo:+.{d}f}, {r.hi:+.{d}f}]"


def clause(spec: dict, readings: dict[str, Reading | None], replication: dict[str, str] | None = None) -> str:
    """One clause: the spec's subject, then per dataset the words of its direction with the estimate; datasets that
    read alike share the words ("on both datasets"). `readings` is {dataset: its Reading, or None where the folder
    has no finished pair yet}; `replication`, {dataset: the replication verdict} where the contrast is replicated."""
    pending = [f"{ds}: {r.n if r else 0} pairs" for ds, r in readings.items() if r is None or r.direction is None]
    if pending:
        return f"{spec['subject']}: not yet ({'; '.join(pending)})"
    dirs = {r.direction for r in readings.values()}
    numbers = {ds: f"{ds}: {estimate(r)}" for ds, r in readings.items()}
    if len(dirs) == 1:
        every = "both datasets" if len(readings) == 2 else f"all {len(readings)} datasets"
        d = dirs.pop()
        text = f"{spec['subject']} {spec[d]} on {every} ({'; '.join(numbers.values())})"
        if d in spec.get("meaning", {}):
            text += f": {spec['meaning'][d]}"
    else:
        parts = [f"{spec[r.direction]} on {ds} ({estimate(r)})" for ds, r in readings.items()]
        text = f"{spec['subject']} " + ", ".join(parts[:-1]) + f" and {parts[-1]}"
    if replication:
        text += " — against the earlier seed: " + ", ".join(f"{v} on {ds}" for ds, v in replication.items())
    return text


def answer_section(questions: list[dict], readings: dict[str, dict[str, Reading | None]],
                   replications: dict[str, dict[str, str]], source: str) -> list[str]:
    """The "## The answer" section: one bullet per question, its clauses joined into one sentence. `readings` is
    {contrast name: {dataset: Reading or None}}, `replications` {contrast name: {dataset: verdict}}; `source` names
    the spec in the lead line. A clause naming a contrast the table lacks raises ValueError."""
    unknown = [c["contrast"] for q in questions for c in q["clauses"] if c["contrast"] not in readings]
    if unknown:
        raise ValueError(f"answer: no contrast named {', '.join(map(repr, unknown))} in every dataset's "
                         "contrasts.json; name one of " + ", ".join(map(repr, readings)))
    L = ["## The answer", "",
         f"Generated from the table below by `report.py --SUMMARY={source}`: each clause prints the words that the "
         "spec's \"answer\" gives to the direction of its contrast's CI (at its family's level) on each dataset, and "
         "what that direction means where every dataset shares it. A ratio is 10 to the mean paired difference of log10 values (a ratio of geometric means).", ""]
    for q in questions:
        said = [clause(c, readings[c["contrast"]], replications.get(c["contrast"])) for c in q["clauses"]]
        sentence = "; ".join(said)
        L.append(f"- **{q['question']}** {sentence[:1].upper()}{sentence[1:]}.")
    return L
