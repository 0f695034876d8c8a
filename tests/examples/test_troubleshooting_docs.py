"""The troubleshooting pages quote what ``capf-lab --fault NAME`` prints and logs: check the quotes against a real run.

Each page under ``docs/reference-app/troubleshooting/`` reproduces one fault. Its "Reproduce it" section quotes the end
of the run's summary, and "The lab's logs" quotes CAPF's trace and the RA's ``error.log``. The test runs the lab with
that fault (two phones, EC keys, in-process through the CLI) and requires every quoted line, after the few
normalisations below, to be a line of the real output. Lines a run legitimately changes are normalised, not skipped:
phone names, the lab folder, ports, timestamps, process ids, connection numbers, counts that follow the number of
phones, and the resolver's wording for a failed name lookup.

The IIS excerpts are not checked: they quote "the first 8 of N requests", and which requests come first, and how many
there are, depend on the number of phones and on how their sessions interleave; and an IIS line (method, path,
status, with the port and time taken normalised) would match almost any run. The diagnostics' full text output further
down comes from separate ``capf logs analyze`` / ``certsrv check`` runs and is not checked here either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from click.testing import CliRunner

from capf_online_ca.faults import FAULTS
from capf_online_ca.lab import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference-app" / "troubleshooting"
PHONES = 2

_FENCE = re.compile(r"^```text\n(.*?)^```", re.MULTILINE | re.DOTALL)
_PLACEHOLDER = re.compile(r"^\s*\[\.\.\. .*\]$")  # "[... these two lines for each phone]"
_DOC_LAB = re.compile(r"\blab/\d{8}-\d{6}\b")  # the docs' lab folder, "lab/20261127-022813"

# What varies between runs, each replaced by a fixed token in the docs' lines and in the real output alike.
_COMMON: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bSEP00AB\d{8}\b"), "SEP<phone>"),
    (re.compile(r"\blocalhost:\d+"), "localhost:<port>"),
    (re.compile(r"\.invalid:\d+"), ".invalid:<port>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b"), "<timestamp>"),  # certificate validity, the local clock
    # getaddrinfo's message for the unresolvable name differs between resolvers ("Name or service not known",
    # "Temporary failure in name resolution"); the lab passes it through in parentheses.
    (re.compile(r"(name resolution failed for \S+) \([^)]*\)"), r"\1 (<resolver message>)"),
]
# The summary's counts that follow --phones: the phones run ("0/20" in the docs, "0/2" here) and the requests AD CS
# counted when it saw any. The phones installed, the LSCs that chain and "handled 0 requests" stay checked as quoted.
_SUMMARY: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(\d+)/\d+ phones installed"), r"\1/<phones> phones installed"),
    (re.compile(r"^AD CS handled [1-9]\d* requests"), "AD CS handled <n> requests"),
]
# The RA's error.log: nginx's time stamp, process id and connection number, libest's access-log time stamp.
_ERROR_LOG: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#0: (\*\d+ )?"), r"<time> [\1] <pid>#0: <conn>"),
    (re.compile(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"), "[<time>]"),
]
_TRACE_TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \|")  # CAPF's trace: "02:28:14.529 |   debug 2:SEP…"


def _page_for_each_fault() -> dict[str, Path]:
    pages: dict[str, Path] = {}
    for page in sorted(DOCS.glob("*.md")):
        for name in re.findall(r"^uv run capf-lab --fault (\S+)$", page.read_text(), re.MULTILINE):
            assert name not in pages, f"{name} is reproduced on {pages[name].name} and {page.name}"
            pages[name] = page
    return pages


PAGES = _page_for_each_fault()


def test_every_fault_has_exactly_one_page() -> None:
    assert sorted(PAGES) == sorted(FAULTS)


def _normalise(line: str, lab: str, rules: Iterable[tuple[re.Pattern[str], str]]) -> str:
    line = line.rstrip().replace(lab, "<lab>") if lab else line.rstrip()
    line = _DOC_LAB.sub("<lab>", line)
    for pattern, replacement in [*_COMMON, *rules]:
        line = pattern.sub(replacement, line)
    return line


def _blocks_after(text: str, marker: str) -> list[str]:
    """The ```text blocks of the section that starts with the line containing ``marker`` (up to the next ##)."""
    start = text.index(marker)
    end = text.find("\n## ", start)
    return _FENCE.findall(text[start : end if end >= 0 else len(text)])


def _missing(quoted: str, real: set[str], normalise: Callable[[str], str]) -> list[str]:
    lines = [line for line in quoted.splitlines() if line.strip() and not _PLACEHOLDER.match(line)]
    assert lines, "an empty quote checks nothing"
    return [line for line in lines if normalise(line) not in real]


def _run(name: str, folder: Path) -> str:
    # A wide COLUMNS: rich wraps long lines at the console width; the pages quote each printed line unwrapped.
    result = CliRunner().invoke(
        cli,
        ["--folder", str(folder), "--phones", str(PHONES), "--key", "ec", "--fault", name],
        env={"COLUMNS": "100000"},
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("name", list(FAULTS))
def test_page_quotes_what_the_lab_prints_and_logs(name: str, tmp_path: Path) -> None:
    text = PAGES[name].read_text()
    output = _run(name, tmp_path)
    lab = str(tmp_path.resolve())

    # "Reproduce it": the end of the run.
    (summary,) = _blocks_after(text, "The run ends with")
    real = {_normalise(line, lab, _SUMMARY) for line in output.splitlines()}
    missing = _missing(summary, real, lambda line: _normalise(line, "", _SUMMARY))
    assert not missing, (
        f"{PAGES[name].name} quotes lines the lab did not print:\n"
        + "\n".join(missing)
        + ("\n--- the lab printed:\n" + output)
    )
    # The lines naming the problem ids, verbatim.
    printed = output.splitlines()
    for prefix in ("capf logs analyze: ", "certsrv check: "):
        (quoted,) = [line for line in summary.splitlines() if line.startswith(prefix)]
        assert quoted in printed, (quoted, [line for line in printed if line.startswith(prefix)])
    # Every phone got the two lines the placeholder stands for.
    details = [line for line in summary.splitlines() if line.startswith(("  SEP", "    CAPF: "))]
    assert len(details) == 2
    for line in details:
        assert sum(_normalise(p, lab, ()) == _normalise(line, "", ()) for p in printed) == PHONES, line

    # "The lab's logs": CAPF's trace without its time stamps, the RA's error.log.
    logs = _blocks_after(text, "## The lab's logs")
    trace_quote, startup_quote, request_quote = logs[0], logs[1], logs[2]
    assert all(_TRACE_TIME.match(line) for line in trace_quote.splitlines())
    trace = {
        _normalise(_TRACE_TIME.sub("", line), lab, ())
        for line in (tmp_path / "capf00000001.txt").read_text().splitlines()
    }
    missing = _missing(trace_quote, trace, lambda line: _normalise(_TRACE_TIME.sub("", line), "", ()))
    assert not missing, f"{PAGES[name].name} quotes CAPF trace lines the lab did not write:\n" + "\n".join(missing)
    error_log = {_normalise(line, lab, _ERROR_LOG) for line in (tmp_path / "error.log").read_text().splitlines()}
    for quote in (startup_quote, request_quote):
        missing = _missing(quote, error_log, lambda line: _normalise(line, "", _ERROR_LOG))
        assert not missing, f"{PAGES[name].name} quotes error.log lines the RA did not write:\n" + "\n".join(missing)
