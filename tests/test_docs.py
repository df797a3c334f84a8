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
