"""The repository cites only its own design notes (docs/), and every cited note and section exists.

- No tracked file cites notes kept outside the repository: no `FINDINGS.md`, and no `shared/...`
  path except the datasets under `../shared/data` (or `$ZOO_SHARED_DATA`) that `zoo/data/local.py`,
  the benchmarks and BENCHMARKS.md read real data from.
- Every `docs/<file>.md` cited (optionally with `section N`, or `sections N and M`) exists and has
  a `## N.` heading. Inside docs/, a bare `<file>.md section N` cites a sibling note.

Reads files only (no TensorFlow): fast.
"""

import pathlib
import re
import subprocess

import pytest

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
DOCS = REPOSITORY / "docs"
THIS_FILE = pathlib.Path(__file__).resolve()

# A `shared/` path that is not under `shared/data`: notes outside the repository.
OUTSIDE_PATH = re.compile(r"(?<![\w.-])(?:\.\./|/[\w./-]*/)?shared/(?!data(?![\w.-]))[\w.*<>-]*")
OUTSIDE_NOTES = re.compile(r"\bFINDINGS\.md\b|\bFINDINGS\b(?=[\s,]+section)")
# `docs/x.md`, `docs/x.md section 3`, `docs/x.md sections 4 and 6` (`#` and line breaks between).
_SECTIONS = r"(?:[\s#*]+sections?[\s#*]+(?P<sections>\d+(?:(?:\s*,\s*|\s+and\s+|\s+to\s+)\d+)*))?"
DOCS_CITATION = re.compile(r"(?<![\w.-])docs/(?P<file>[\w./-]+?\.md)" + _SECTIONS)
SIBLING_CITATION = re.compile(r"(?<![\w./-])(?P<file>[\w-]+\.md)" + _SECTIONS)
HEADING = re.compile(r"^##\s+(\d+)\.", re.MULTILINE)


def outside_citations(text):
    """The citations in `text` of notes outside the repository (allowed data paths excluded)."""
    return [match.group(0) for pattern in (OUTSIDE_PATH, OUTSIDE_NOTES) for match in pattern.finditer(text)]


def cited_sections(match):
    sections = match.group("sections")
    return [int(number) for number in re.findall(r"\d+", sections)] if sections else []


def tracked_text_files():
    """(relative path, text) of every file git tracks that exists and reads as text."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in listing.decode().split("\0"):
        path = REPOSITORY / name
        if not name or not path.is_file() or path.resolve() == THIS_FILE:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # Binary.
            continue
        files.append((name, data.decode("utf-8", errors="replace")))
    return files


def citations(name, text):
    """(docs-relative file, [sections]) for each design-note citation in the file `name`."""
    found = [(match.group("file"), cited_sections(match)) for match in DOCS_CITATION.finditer(text)]
    if name.startswith("docs/"):
        found += [
            (match.group("file"), cited_sections(match))
            for match in SIBLING_CITATION.finditer(text)
            if (DOCS / match.group("file")).is_file()
        ]
    return found


def sections_of(path):
    return {int(number) for number in HEADING.findall(path.read_text())}


# ---------------------------------------------------------------- the rules themselves


@pytest.mark.parametrize(
    "text",
    [
        "See ../shared/data (or $ZOO_SHARED_DATA).",
        "`<repository>/../shared/data/<folder>`",
        "skips when ../shared/data/sst2 is absent",
        "sample of `../shared/data/imdb/train.csv.gz`",
        "(see `shared/data/*/SOURCE.md`)",
        "sizes as in shared/data's SOURCE.md files",
        '"--train_files=/work/shared/data/sst2/train.tsv"',
        "machines like this one are shared and their speed drifts",
        "docs/keras_tf_behaviour.md section 11",
    ],
)
def test_data_paths_and_own_docs_are_allowed(text):
    assert outside_citations(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "see shared/" + "FINDINGS.md section 1",
        "(FINDINGS" + ".md section 11: per-step medians)",
        "../shared/" + "DESIGN.md",
        "/work/shared/" + "notes/timing.md",
        "shared/" + "database.md",
    ],
)
def test_notes_outside_the_repository_are_refused(text):
    assert outside_citations(text) != []


def test_citation_pattern_reads_files_and_sections():
    text = "(docs/keras_tf_behaviour.md section 2); docs/data_flow.md; docs/a.md\n# sections 4 and 6"
    assert [(match.group("file"), cited_sections(match)) for match in DOCS_CITATION.finditer(text)] == [
        ("keras_tf_behaviour.md", [2]),
        ("data_flow.md", []),
        ("a.md", [4, 6]),
    ]


# ---------------------------------------------------------------- the repository


def test_no_tracked_file_cites_notes_outside_the_repository():
    offenders = [
        f"{name}:{text.count(chr(10), 0, text.find(citation)) + 1}: {citation}"
        for name, text in tracked_text_files()
        for citation in outside_citations(text)
    ]
    assert not offenders, "cite docs/<file>.md section N instead:\n" + "\n".join(offenders)


def test_every_cited_design_note_and_section_exists():
    problems = []
    cited = 0
    for name, text in tracked_text_files():
        for file, sections in citations(name, text):
            cited += 1
            path = DOCS / file
            if not path.is_file():
                problems.append(f"{name}: docs/{file} does not exist")
                continue
            missing = sorted(set(sections) - sections_of(path))
            if missing:
                problems.append(f"{name}: docs/{file} has no section {', '.join(map(str, missing))}")
    assert not problems, "\n".join(problems)
    assert cited, "no docs/ citations found: is the pattern still right?"


def test_design_notes_number_their_sections_in_order():
    for path in [DOCS / "keras_tf_behaviour.md", DOCS / "data_flow.md"]:
        numbers = [int(number) for number in HEADING.findall(path.read_text())]
        assert numbers == list(range(1, len(numbers) + 1)), f"{path.name}: sections {numbers}"


def test_docs_index_links_every_note():
    index = (DOCS / "README.md").read_text()
    for path in DOCS.glob("*.md"):
        if path.name != "README.md":
            assert f"({path.name})" in index, f"docs/README.md does not link {path.name}"
