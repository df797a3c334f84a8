"""Results table and figures, generated from the run logs and nothing else.

    python report.py results/mnist-250        # or: python mnist_top.py --REPORT_ONLY=True
    python report.py results/mnist-250-ablations --PAIR_WITH=results/mnist-250   # also pair with another folder
    python report.py --SUMMARY=results/hofer-row.json   # one table of paired comparisons across folders

Reads `runs/*/{config,final}.json` and `log.jsonl` (`records`), writes `table.md` (`folder_table`), `per_split.png`,
`accuracy.png`, `collapse.png` and `deaths.png` beside them (and a sweep figure per sweep; `figures`): the modules of
`reporting/`. Runs are grouped by regulariser (and β / lr where several were run; `groups`); paired comparisons use
the splits two groups share (same split ⇒ same initialisation and batches; `compare`). Without --PAIR_WITH, a folder
is paired with those its `study.json` names (the study's own --PAIR_WITH), relative to the working directory. A
--SUMMARY spec is a table of rows (`summary`), a size curve (`size_curve`) or a carry-over (`carry_over`).
"""
import signal
import sys
from pathlib import Path

from common.runs import ReportError, read_study
from reporting import carry_over
from reporting.figures import size_curve_figure, write_figures
from reporting.folder_table import write_table
from reporting.records import check_shared_images, load_runs, read_summary_spec
from reporting.size_curve import write_size_curve
from reporting.summary import write_summary

USAGE = ("usage: python report.py RESULTS_DIR [--PAIR_WITH=OTHER_DIR[,OTHER_DIR...]]\n"
         "       python report.py --SUMMARY=SPEC.json\n"
         "  for example: python report.py results/mnist-250-ablations --PAIR_WITH=results/mnist-250")


def write_report(out: Path, pair_with=()) -> str:
    """Table and figures for every run under `out`, paired also with the finished runs of the folders `pair_with`
    (none given: those of `out`'s study.json); returns a one-line summary."""
    runs = load_runs(out)
    if not runs:
        return f"report: no runs under {out}"
    remove_stale_temporaries(out)
    folders = ([Path(o) for o in pair_with if o]
               or [Path(o) for o in read_study(out).get("pair_with", []) if o])  # relative to the working directory
    folders = [f for f in folders if f.resolve() != Path(out).resolve()]  # itself: its runs are already its groups
    missing = [f for f in folders if not (f / "runs").is_dir()]  # named, never silently dropped
    paired_in = [r for other in folders for r in load_runs(other, prefix=other.name)]  # the table names unfinished ones
    check_shared_images(runs + paired_in)  # across the folders too: a run's images are those of its split and seed
    table = write_table(out, runs, paired_in, missing)
    paired_in = [r for r in paired_in if r["final"]]
    figs = write_figures(out, runs, paired_in) if any(r["log"] for r in runs) else []
    return f"report: {table}; figures: {', '.join(p.name for p in figs) or 'none'}"


def remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files (`runs.atomic_write`: .<name>.<pid>.tmp.<suffix>) that a report killed mid-write
    left in `out`; a live process's own are left alone."""
    for tmp in Path(out).glob(".*.*.tmp.*"):
        pid = tmp.name.split(".")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            tmp.unlink(missing_ok=True)


def write_any_summary(spec_path: Path) -> str:
    """A --SUMMARY spec: rows of paired comparisons across folders (`summary.write_summary`), a size curve
    (`size_curve.write_size_curve`, with its figure) or a carry-over across datasets (`carry_over.write_carry_over`);
    returns what was written. One ReportError where the spec is not a JSON object (`records.read_summary_spec`), or not of
    the form its kind takes."""
    spec = read_summary_spec(spec_path)
    if carry_over.KEY in spec:
        return str(carry_over.write_carry_over(spec_path))
    if "size_curve" not in spec:
        return str(write_summary(spec_path))
    table, curve = write_size_curve(spec_path)
    figure = size_curve_figure(spec_path, curve, [tuple(g) for g in spec.get("gaps", [])])
    return f"{table}, {figure.name}"


def parse_args(argv: list[str]) -> dict:
    """The command line: `RESULTS_DIR [--PAIR_WITH=a,b ...]` or `--SUMMARY=SPEC.json ...` (where a --SUMMARY is
    given, only summaries are written). Returns dict(summaries, out, pair_with); SystemExit with the usage or
    what is missing where the arguments are of neither form or name no such file or folder."""
    summaries = [a.split("=", 1)[1] for a in argv if a.startswith("--SUMMARY=")]
    for spec in summaries:
        if not Path(spec).is_file():
            sys.exit(f"--SUMMARY: no such file {spec} (a JSON list of rows; see results/hofer-row.json)")
    if summaries:
        return dict(summaries=[Path(s) for s in summaries], out=None, pair_with=[])
    pair = [a.split("=", 1)[1] for a in argv if a.startswith("--PAIR_WITH=")]
    rest = [a for a in argv if not a.startswith("--PAIR_WITH=")]
    if len(rest) != 1:
        sys.exit(USAGE)
    if not Path(rest[0]).is_dir():
        sys.exit(f"no such results folder: {rest[0]} (give a folder holding runs/, such as results/mnist-250)")
    others = [o for p in pair for o in p.split(",") if o]
    missing = [o for o in others if not (Path(o) / "runs").is_dir()]
    if missing:
        sys.exit(f"--PAIR_WITH: no runs/ folder in {', '.join(missing)}")
    if any(Path(o).resolve() == Path(rest[0]).resolve() for o in others):
        sys.exit(f"--PAIR_WITH names {rest[0]} itself: its runs are already in its table; name other folders")
    return dict(summaries=[], out=Path(rest[0]), pair_with=others)


def main(argv: list[str]) -> int:
    """Write what the command line asks for (see `parse_args`) and print where."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill runs the cleanup of the file being written
    try:
        for spec in args["summaries"]:
            print(f"summary: {write_any_summary(spec)}")
        if args["out"] is not None:
            print(write_report(args["out"], args["pair_with"]))
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the report is not finished. Each of its files is replaced whole or not at all, so table.md "
              "(and every figure) is the last complete one; run the same command again", file=sys.stderr)
        return 130
    except OSError as e:  # a read-only folder, a full disk
        print(f"error: cannot write the report ({e.strerror or type(e).__name__}: {e.filename}); make the folder "
              "writable or free space, then run the same command again (the runs' files are untouched)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
