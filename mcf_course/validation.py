"""Check a dataset against its schema in ``datasets/datapackage.json``.

The schema follows the Frictionless Table Schema. This module implements the part of it the
course uses (types string, date, boolean, integer, number; the constraints required, unique,
pattern, enum, minimum and maximum; foreign keys), so that every problem is reported with the file, the row
and the field, in words a student can act on.

Three course conventions go beyond the standard:
- a string field whose pattern is ``PARTIAL_DATE_PATTERN`` holds a date of mixed precision
  (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``), which must also be a real calendar date;
- where a resource has fields ``X`` and ``X_precision``, the precision must match ``X``;
- every row's ``evidence`` is either a marked quotation of the cited source (“…”, at most
  ``QUOTE_LIMIT`` characters, optionally followed by a bracketed note) or ``No quote:`` and the
  reason; and where the resource's ``evidence_checks`` name number or date fields, each such
  value of the row appears in its evidence (a number in any of the forms sources write it:
  ``2.13万亿``, ``629.1 billion``, ``6291亿``, ``120``; a date by its year), so that a reviewer can
  see at once what the quotation does or does not support (``check_evidence``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

PARTIAL_DATE_PATTERN = "[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?"
QUOTE_LIMIT = 220  # characters inside the quotation marks ("about 200")
NO_QUOTE = "No quote: "
_QUOTE = re.compile(r"“(?P<quote>.+)”(?: \[(?P<note>.+)\])?", re.S)
# Multipliers for numbers as sources write them; a unit's first word sets the row's scale.
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12,
           "万": 1e4, "亿": 1e8, "万亿": 1e12, "千": 1e3, "百万": 1e6,
           "萬": 1e4, "億": 1e8, "萬億": 1e12}  # traditional characters, as reposts write them
_NUMBER = re.compile(r"(?P<n>\d+(?:[.,]\d+)*)\s*(?:多|余)?"
                     r"(?P<scale>万亿|萬億|百万|万|萬|亿|億|千|thousand|million|billion|trillion)?", re.I)
_HAN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
PRECISION_OF_LENGTH = {4: "year", 7: "month", 10: "day"}
BOOLEAN_VALUES = {"true": True, "false": False}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset. ``row`` counts data rows from 1 (0 is the header)."""

    file: str
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        where = "header" if self.row == 0 else f"row {self.row} (line {self.row + 1})"
        return f"{self.file}, {where}, field '{self.field}': {self.message}"


class DatasetError(ValueError):
    """Raised when a dataset does not match its schema; lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the course data:\n  {shown}{more}")


def read_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Parse CSV text into its header and rows of raw strings."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def parse_partial_date(value: str) -> date:
    """Return the first day a ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` value can mean.

    Raises ValueError for anything else, including impossible dates such as 2017-02-30.
    """
    if not re.fullmatch(PARTIAL_DATE_PATTERN, value):
        raise ValueError(f"{value!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    parts = [int(p) for p in value.split("-")] + [1, 1]
    return date(parts[0], parts[1], parts[2])


def _numbers_in(text: str) -> list[float]:
    """Every number in ``text``, with the scale word after it applied (both 2.13 and 2.13e12
    for "2.13万亿"), and small numbers written in Chinese characters (五 = 5, 十二 = 12)."""
    found = []
    for match in _NUMBER.finditer(text):
        raw = match.group("n")
        plain = float(raw.replace(",", "")) if raw.count(".") <= 1 else None
        if plain is None:
            continue
        found.append(plain)
        if match.group("scale"):
            found.append(plain * _SCALES[match.group("scale").lower()])
    for match in re.finditer(r"(?<![\d.,])(十|百|千)(万亿|亿|万)", text):  # 千亿 = 1e11, 百万 handled above
        found.append({"十": 10, "百": 100, "千": 1000}[match.group(1)] * _SCALES[match.group(2)])
    for match in re.finditer(r"([一二两三四五六七八九]?)十([一二三四五六七八九]?)|([一二两三四五六七八九])", text):
        if match.group(3):
            found.append(float(_HAN_DIGITS[match.group(3)]))
        else:
            tens = _HAN_DIGITS.get(match.group(1), 1) if match.group(1) else 1
            found.append(float(tens * 10 + _HAN_DIGITS.get(match.group(2), 0)))
    return found


def number_supported(value: float, unit: str, text: str) -> bool:
    """Whether ``value`` (in ``unit``, e.g. "trillion yuan") appears in ``text`` in some form."""
    first = (unit or "").split()[0].lower() if unit else ""
    targets = {value, value * _SCALES.get(first, 1.0)}
    return any(abs(n - t) <= 1e-9 * max(1.0, abs(t)) for n in _numbers_in(text) for t in targets)


def check_evidence(resource: dict, row: dict) -> list[tuple[str, str]]:
    """(field, message) for each way the row's evidence falls short (see the module docstring)."""
    evidence = (row.get("evidence") or "").strip()
    problems = []
    if evidence.startswith(NO_QUOTE):
        if len(evidence) < len(NO_QUOTE) + 20:
            problems.append(("evidence", "'No quote:' must say why no quotation can be given"))
        text = evidence
    else:
        match = _QUOTE.fullmatch(evidence)
        if not match:
            return [("evidence", "must be a quotation in “ ” (with an optional [note] after it) "
                                 f"or begin with {NO_QUOTE!r} and give the reason")]
        if len(match.group("quote")) > QUOTE_LIMIT:
            problems.append(("evidence", f"the quotation is {len(match.group('quote'))} characters; "
                                         f"keep it to about {QUOTE_LIMIT - 20} (cut with …)"))
        if not (row.get("evidence_url") or row.get("source_url") or "").strip():
            problems.append(("evidence_url", "a quotation needs the URL where it can be read "
                                             "(evidence_url, or source_url)"))
        text = evidence
    checks = resource.get("evidence_checks", {})
    unit_field = checks.get("unit")
    for name in checks.get("numbers", []):
        raw = (row.get(name) or "").strip()
        try:
            wanted = [float(raw)] if raw else []
        except ValueError:  # a number in words: "more than 300,000 by 2020" (years are dates)
            wanted = [n for n in _numbers_in(raw) if not (1900 <= n <= 2100 and n == int(n))]
        unit = row.get(unit_field, "") if unit_field else ""
        missing = [n for n in wanted if not number_supported(n, unit, text)]
        if missing:
            problems.append(("evidence", f"the {name} {raw!r} does not appear in the evidence "
                                         f"(looked for {', '.join(f'{n:g}' for n in missing)})"))
    for name in checks.get("dates", []):
        raw = (row.get(name) or "").strip()
        where = row.get("evidence_url") or row.get("source_url") or ""  # where the quotation is read
        if raw and raw[:4] not in text and raw[:4] not in where:
            problems.append(("evidence", f"the year of {name} ({raw[:4]}) appears neither in the "
                                         "evidence nor in its URL"))
    return problems


def _check_value(field: dict, value: str) -> str | None:
    """Return a message if ``value`` (non-empty) breaks the field's type or constraints."""
    kind = field.get("type", "string")
    constraints = field.get("constraints", {})
    if kind == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"{value!r} is not a real date in YYYY-MM-DD form"
        if len(value) != 10:
            return f"{value!r} is not a real date in YYYY-MM-DD form"
    elif kind == "boolean":
        if value not in BOOLEAN_VALUES:
            return f"{value!r} is not a boolean; use true or false"
    elif kind == "integer":
        if not re.fullmatch(r"-?[0-9]+", value):
            return f"{value!r} is not a whole number"
    elif kind == "number":
        try:
            float(value)
        except ValueError:
            return f"{value!r} is not a number"
        if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", value):
            return f"{value!r} is not a plain number (no units, commas or signs like '>')"
    if kind in ("integer", "number"):
        low, high = constraints.get("minimum"), constraints.get("maximum")
        if (low is not None and float(value) < low) or (high is not None and float(value) > high):
            return f"{value!r} is outside the allowed range {low} to {high}"
    pattern = constraints.get("pattern")
    if pattern == PARTIAL_DATE_PATTERN:
        try:
            parse_partial_date(value)
        except ValueError:
            return f"{value!r} is not a real date as YYYY, YYYY-MM or YYYY-MM-DD"
    elif pattern and not re.fullmatch(pattern, value):
        return f"{value!r} does not have the expected form ({field.get('description', pattern)})"
    allowed = constraints.get("enum")
    if allowed and value not in allowed:
        return f"{value!r} is not an allowed category; use one of: {', '.join(allowed)}"
    return None


def check_resource(resource: dict, text: str, known_keys: dict | None = None) -> list[Problem]:
    """Check CSV ``text`` against ``resource``'s schema and return every problem found.

    ``known_keys`` maps a resource name to the set of its primary-key values, for checking
    foreign keys; references to resources not in it are not checked.
    """
    file = f"datasets/{resource['path']}"
    fields = resource["schema"]["fields"]
    header, rows = read_rows(text)
    expected = [f["name"] for f in fields]
    problems = [Problem(file, 0, n, "column is missing") for n in expected if n not in header]
    problems += [Problem(file, 0, n, "column is not in the schema") for n in header
                 if n not in expected]
    if problems:
        return problems
    if not rows:
        return [Problem(file, 0, expected[0], "the file has no data rows")]

    seen: dict[str, dict[str, int]] = {f["name"]: {} for f in fields
                                       if f.get("constraints", {}).get("unique")}
    for number, row in enumerate(rows, start=1):
        if None in row:  # csv puts surplus cells under the key None
            problems.append(Problem(file, number, expected[-1], "row has more cells than the header"))
        for field in fields:
            name = field["name"]
            value = (row.get(name) or "").strip()
            if not value:
                if field.get("constraints", {}).get("required"):
                    problems.append(Problem(file, number, name, "value is required but empty"))
                continue
            message = _check_value(field, value)
            if message:
                problems.append(Problem(file, number, name, message))
            if name in seen:
                if value in seen[name]:
                    problems.append(Problem(file, number, name,
                                            f"{value!r} repeats row {seen[name][value]}; "
                                            "values must be unique"))
                seen[name].setdefault(value, number)
            precision = row.get(f"{name}_precision", "").strip()
            expected_precision = PRECISION_OF_LENGTH.get(len(value))
            if precision and not message and precision != expected_precision:
                problems.append(Problem(file, number, f"{name}_precision",
                                        f"says {precision!r} but {name} {value!r} is given "
                                        f"to the {expected_precision}"))

    if "evidence" in expected:
        for number, row in enumerate(rows, start=1):
            if (row.get("evidence") or "").strip():  # an empty one is already 'required'
                problems += [Problem(file, number, name, message) for name, message in check_evidence(resource, row)]

    for foreign in resource["schema"].get("foreignKeys", []):
        (name,) = foreign["fields"]
        target = foreign["reference"]["resource"]
        if known_keys is None or target not in known_keys:
            continue
        for number, row in enumerate(rows, start=1):
            value = (row.get(name) or "").strip()
            if value and value not in known_keys[target]:
                problems.append(Problem(file, number, name,
                                        f"{value!r} does not match any {target} row"))
    return problems


def primary_keys(resource: dict, text: str) -> set[str]:
    """The values of a resource's (single-field) primary key."""
    (key,) = resource["schema"]["primaryKey"]
    return {row[key] for row in read_rows(text)[1] if row.get(key)}
