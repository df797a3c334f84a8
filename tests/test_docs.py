"""The documents: short, with every relative link resolving, and speaking of no one machine."""
import re
from pathlib import Path


DOCS = ["README.md", "RESULTS.md", "results/README.md", "benchmarks/README.md"]


def test_the_readme_is_short_and_no_document_speaks_of_one_machine():
    root = Path(__file__).resolve().parents[1]
    assert len((root / "README.md").read_text().splitlines()) <= 200
    for doc in DOCS:
        text = (root / doc).read_text()
        assert "../shared" not in text and "device tool" not in text.lower(), doc


def test_every_relative_link_of_the_documents_exists():
    root = Path(__file__).resolve().parents[1]
    for doc in DOCS:
        path = root / doc
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{doc}: {target}"


def test_the_readmes_answer_is_the_one_generated_from_the_confirmatory_tables():
    """README opens its results with the answer that `report.py --SUMMARY=results/confirm-carry-over.json` writes from
    the run logs (`answer.answer_section`): the same bullets, word for word, so that README can say nothing else."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    start, end = "<!-- the answer, as results/confirm-carry-over.md generates it -->", "<!-- end of the answer -->"
    assert readme.count(start) == 1 and readme.count(end) == 1
    shown = readme[readme.index(start) + len(start):readme.index(end)].strip().splitlines()
    generated = (root / "results/confirm-carry-over.md").read_text().split("## The answer")[1].split("\n## ")[0]
    assert shown == [l for l in generated.splitlines() if l.startswith("- **")] and len(shown) >= 3
