"""The methods document the code and configs cite is in the repository, and every section they cite exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"docs/methods\.md section (\d+(?:\.\d+)?)")


def test_every_cited_section_of_the_methods_document_exists():
    methods = (REPO / "docs/methods.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\. ", methods, flags=re.M)) | set(
        re.findall(r"^### (\d+\.\d+) ", methods, flags=re.M)
    )
    cited = {}
    for folder in ("toolkit", "egs", "test"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".sh", ".yaml", ".md"):
                for section in CITATION.findall(path.read_text(errors="replace")):
                    cited.setdefault(section, path)
    assert cited, "nothing cites docs/methods.md"
    missing = {s: str(p) for s, p in cited.items() if s not in sections}
    assert not missing, f"cited sections missing from docs/methods.md: {missing}"


def test_nothing_cites_a_methods_file_outside_the_repository():
    stray = []
    for folder in ("toolkit", "egs"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".sh", ".yaml", ".md") and "METHODS.md" in path.read_text():
                stray.append(str(path.relative_to(REPO)))
    assert not stray


def test_the_readme_stays_a_short_reference_whose_doc_links_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme) < 12_000
    for name in re.findall(r"`(docs/[\w.-]+\.md)`", readme):
        assert (REPO / name).is_file(), name
