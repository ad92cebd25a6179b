"""Check that a model card's numbers come from committed reports of the weights it ships.

Usage::

    python -m manet.eval.provenance_check manet/weights/MODEL_CARD.md

A report is cited as a backquoted path followed by the sha256 of the report file (at least 8 hex
digits), optionally with what it evaluated when that is not the shipped weights::

    `runs/eval/lite.json` (sha256 1a2b3c4d5e6f)                              the shipped weights
    `runs/eval/baseline.json` (sha256 1a2b3c4d5e6f, matching baseline)       --matching-baseline
    `runs/eval/v1.json` (sha256 1a2b3c4d5e6f, weights sha256 9f8e7d6c)       other weights

For every citation the report must exist, still have the cited digest, be committed (inside a git
checkout; ``--allow-uncommitted`` skips this while a card is being written), and record in its
``provenance`` the weights the citation names: by default the sha256 of the shipped file
(``manet/weights/manet_lite.safetensors`` under ``--root``, or ``--weights``). Any other
backquoted ``FOLDER/NAME.json`` path (no wildcards) outside code blocks is a citation without a
digest, and fails. Code
blocks are skipped, so a card can show the format in one. Exit status: 0 all good, 1 a problem
(each printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manet.provenance import SHIPPED_WEIGHTS_NAME, efficientnet_weights, file_sha256

_FENCE = re.compile(r"^ {0,3}```.*?^ {0,3}```", re.MULTILINE | re.DOTALL)
_CITATION = re.compile(r"`(?P<path>[^`\s]+\.json)`\s*\(sha256\s+(?P<digest>[0-9a-fA-F]{8,64})(?P<rest>[^)]*)\)")
_JSON_PATH = re.compile(r"`(?P<path>[^`\s*?]+/[^`\s*?/]+\.json)`")  # a file in a folder, no wildcards
_OTHER_WEIGHTS = re.compile(r"^weights\s+sha256\s+(?P<digest>[0-9a-fA-F]{8,64})$")
MATCHING_BASELINE = "matching baseline"


@dataclass(frozen=True)
class Citation:
    """One cited report: ``path`` (relative to the root), the report file's ``digest`` prefix, and
    what it evaluated: ``shipped``, ``matching-baseline`` or ``weights`` (then ``weights_digest``)."""

    path: str
    digest: str
    expects: str
    weights_digest: str | None = None
    line: int = 0


def parse_citations(text: str) -> tuple[list[Citation], list[str]]:
    """The citations of a card, and the problems of its malformed ones (a ``.json`` path without
    a digest, or a qualifier that is neither ``matching baseline`` nor ``weights sha256 HEX``)."""
    # Blank out code blocks but keep their newlines, so line numbers stay right.
    prose = _FENCE.sub(lambda match: "\n" * match.group(0).count("\n"), text)
    citations, problems, cited_spans = [], [], []
    for match in _CITATION.finditer(prose):
        line = prose.count("\n", 0, match.start()) + 1
        cited_spans.append(match.span("path"))
        qualifier = match.group("rest").strip().lstrip(",").strip()
        other = _OTHER_WEIGHTS.match(qualifier)
        if not qualifier:
            citations.append(Citation(match.group("path"), match.group("digest").lower(), "shipped", line=line))
        elif qualifier.lower() == MATCHING_BASELINE:
            citations.append(Citation(match.group("path"), match.group("digest").lower(), "matching-baseline",
                                      line=line))
        elif other is not None:
            citations.append(Citation(match.group("path"), match.group("digest").lower(), "weights",
                                      other.group("digest").lower(), line))
        else:
            problems.append(f"line {line}: {match.group('path')}: unknown qualifier {qualifier!r}; use "
                            f"'{MATCHING_BASELINE}' or 'weights sha256 HEX', or nothing for the shipped weights")
    for match in _JSON_PATH.finditer(prose):
        if match.span("path") not in cited_spans:
            line = prose.count("\n", 0, match.start()) + 1
            problems.append(f"line {line}: {match.group('path')} is cited without its digest: write "
                            f"`{match.group('path')}` (sha256 FIRST-12-HEX-DIGITS-OF-THE-REPORT)")
    return citations, problems


def _git(root: Path, *arguments: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "-C", str(root), *arguments], capture_output=True, text=True, check=False,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


def in_git_checkout(root: Path) -> bool:
    done = _git(root, "rev-parse", "--is-inside-work-tree")
    return done is not None and done.returncode == 0 and done.stdout.strip() == "true"


def committed(root: Path, path: str) -> bool:
    """Whether ``path`` is tracked and its working copy equals HEAD's."""
    tracked = _git(root, "ls-files", "--error-unmatch", "--", path)
    unchanged = _git(root, "diff", "--quiet", "HEAD", "--", path)
    return bool(tracked and tracked.returncode == 0 and unchanged and unchanged.returncode == 0)


def _expected(citation: Citation, shipped: str, backbone: str | None) -> tuple[str | None, str]:
    """(the weights digest the report must record, how to name those weights)."""
    if citation.expects == "matching-baseline":
        return backbone, "the installed EfficientNet-Lite0 weights (matching baseline)"
    if citation.expects == "weights":
        return citation.weights_digest, f"weights sha256 {citation.weights_digest}"
    return shipped, f"the shipped weights ({shipped[:12]})"


def check_citation(citation: Citation, root: Path, shipped: str, backbone: str | None,
                   require_committed: bool) -> list[str]:
    """The problems of one citation (empty when it holds)."""
    where = f"line {citation.line}: {citation.path}"
    path = root / citation.path
    if not path.is_file():
        return [f"{where}: no such report under {root}"]
    problems = []
    actual = file_sha256(path)
    if not actual.startswith(citation.digest):
        problems.append(f"{where}: the report's sha256 is {actual[:12]}, the card cites {citation.digest}: "
                        "the report changed since it was cited; cite the new digest if its numbers are the card's")
    if require_committed and not committed(root, citation.path):
        problems.append(f"{where}: not committed (or changed since): commit it with the card")
    try:
        record: Any = json.loads(path.read_text(encoding="utf-8")).get("provenance") or {}
    except (ValueError, AttributeError):
        return [*problems, f"{where}: not a JSON report of `manet eval --report`"]
    weights = record.get("weights") or {}
    recorded = weights.get("sha256")
    wanted, name = _expected(citation, shipped, backbone)
    if recorded is None:
        problems.append(f"{where}: records no weights digest (written before reports recorded provenance, or "
                        "of a random model): rerun `manet eval --report` and cite the new report")
    elif citation.expects == "matching-baseline" and weights.get("kind") != "matching-baseline":
        problems.append(f"{where}: cited as the matching baseline, but it evaluated {weights.get('kind')} weights")
    elif wanted is not None and not recorded.startswith(wanted):
        problems.append(f"{where}: evaluated weights sha256 {recorded[:12]}, not {name}")
    recorded_backbone = (weights.get("backbone") or {}).get("sha256")
    if citation.expects == "shipped" and backbone and recorded_backbone and recorded_backbone != backbone:
        problems.append(f"{where}: its features came from other EfficientNet-Lite0 weights ({recorded_backbone[:12]}) "
                        f"than the installed ones ({backbone[:12]})")
    return problems


def check_card(card: Path, root: Path, weights: Path, require_committed: bool = True,
               verbose: bool = False) -> tuple[list[Citation], list[str]]:
    """Every citation of ``card`` and every problem found (none: the card's reports hold); ``verbose``
    prints a line for each citation that holds."""
    citations, problems = parse_citations(card.read_text(encoding="utf-8"))
    if not citations and not problems:
        problems.append(f"{card} cites no report: cite each as `PATH.json` (sha256 HEX)")
    shipped = file_sha256(weights)
    installed = efficientnet_weights()
    backbone = None if installed is None else str(installed["sha256"])
    strict = require_committed and in_git_checkout(root)
    for citation in citations:
        found = check_citation(citation, root, shipped, backbone, strict)
        if verbose and not found:
            print(f"ok   line {citation.line}: {citation.path} ({citation.expects})")
        problems.extend(found)
    return citations, problems


def _default_root(card: Path) -> Path:
    done = _git(card.resolve().parent, "rev-parse", "--show-toplevel")
    return Path(done.stdout.strip()) if done is not None and done.returncode == 0 else Path.cwd()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manet.eval.provenance_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("card", type=Path, help="the model card (markdown)")
    parser.add_argument("--root", type=Path, help="folder the cited paths are relative to (default: the card's "
                        "git checkout, else the current folder)")
    parser.add_argument("--weights", type=Path, help=f"the shipped weights (default: ROOT/{SHIPPED_WEIGHTS_NAME})")
    parser.add_argument("--allow-uncommitted", action="store_true",
                        help="do not require the reports to be committed (while the card is being written)")
    args = parser.parse_args(argv)
    if not args.card.is_file():
        print(f"provenance_check: error: no model card at {args.card}", file=sys.stderr)
        return 2
    root = args.root if args.root is not None else _default_root(args.card)
    weights = args.weights if args.weights is not None else root / SHIPPED_WEIGHTS_NAME
    if not weights.is_file():
        print(f"provenance_check: error: no weights file at {weights}: pass --weights PATH", file=sys.stderr)
        return 2
    citations, problems = check_card(args.card, root, weights, require_committed=not args.allow_uncommitted,
                                     verbose=True)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{len(citations)} report(s) cited, {len(problems)} problem(s); shipped weights sha256 "
          f"{file_sha256(weights)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
