"""Grading of budget-forced outputs.

1. Answer segment: the text after the last ``<|im_start|>answer\\n`` (qwen3 delimiters: ``</think>``); else after the
   last ``<|im_start|>`` minus its first line (all of it when it is one line); else the whole text (the s1 harness
   rule).
2. Extraction: the last ``\\boxed{...}`` / ``\\fbox{...}`` (brace-matched, ``\\{`` ``\\}`` literal; also ``\\boxed 5``;
   an open last box extracts nothing, as in the harness), else what follows the last ``Answer:``. For ``math`` only
   that tail's first line with content counts once markdown emphasis and a lead-in such as "The final answer is"
   are gone, continued while a math environment it opens is open or it ends in ":" (``answer_line``): the harness
   kept the whole tail for its LLM judge, and math-verify on a tail with a justification picks the last number in
   it. A plain number followed by unit words or SI unit symbols (those only against a gold without letters outside
   LaTeX commands: "3 m^2" may answer "3m^2"), a parenthetical that opens with a word, or a justification ("10
   dollars", "12 m^2", "15 cm^2", "12 km/h", "42 (since ...)", "42, because ...") is that number, in a box too;
   "2 or 3" stays whole, and prose hedging between two answers ("27, or maybe 28") is ``unparsable``.
   math-verify reads a box's content or a bare expression as ``$\\boxed{...}$`` (trailing words of two or more
   letters after LaTeX are units and dropped; a single letter is a variable, "\\cot x", and a word after a function
   such as ``\\sin`` its argument); a line with ``$``/``\\[``/``\\(`` as written, each environment as ``$...$``
   without inner spaces; prose on the expression it ends in, boxed ("The area is 3\\sqrt{2}." -> 3\\sqrt{2}), or as
   written when it ends in none (``_math_input``). On both sides (``normalized``) digit groups split by a LaTeX space
   are one number ("1\\,024": math-verify reads 1 + 024) and a degree sign is ``^{\\circ}``; against a gold with an
   imaginary unit, "6 - 5 i" is 6 - 5i.
3. Verdict, by the benchmark's grading kind (``KIND`` in its ``prunetts.benchmarks`` module):

   - ``math`` (MATH500, AIME24, AMC23, demo): integers on both sides compare as integers - digit strings (the
     harness rule, "025" = 25), a minus sign, and integral decimals such as AMC's float golds ("27.0" = 27), also
     when wrapped as ``\\textbf{(073)}`` or followed by a full stop (``\\boxed{104.}``); otherwise math-verify
     ``verify(gold, prediction, allow_set_relation_comp=True)`` with the gold first (an inequality answers an
     interval: "x > 2" for (2, \\infty)), and where one side is a decimal the two numbers must also agree to a
     relative ``NUMERIC_RELATIVE_TOLERANCE`` (math-verify rounds to 6 decimal places: 0.0000667 would equal
     .0000672). math-verify runs in spawned worker processes (its code needs a main thread for signals): one timer
     per item bounds both parses and the comparison to ``timeout`` seconds (graded ``timeout``); a worker stuck in C
     code past ``2 * timeout + 10`` s is killed with its pool, and each worker's address space is capped
     (``WORKER_MEMORY_BYTES``). Extracted answers longer than ``MAX_ANSWER_CHARS``
     or nested deeper than ``MAX_NESTING`` never reach sympy (graded ``unparsable``). Model text is never evaluated:
     math-verify's plain-expression parser (``sympy.parse_expr``) only sees digits and arithmetic operators.
   - ``choice`` (GPQA-Diamond): the extracted answer must be one letter A-D, in any of the forms ``C``, ``c``,
     ``(C)``, ``C)``, ``C.``, ``(C) option text``, ``\\text{C}``, ``**C**``, ``$C$`` (for an ``Answer:`` tail only its
     first line counts), also after a lead-in ("The answer is C", "Option C", "The correct answer is: (C)") and
     followed by a verdict or a justification ("C is correct", "C, since ...", "C because ..."); it is then compared
     with the gold letter. An answer that names a second option ("C or D", "(A) and (C)", "C, since D ...", "(C) or
     D", "C. Option D is also possible", "(C)/(D)") and anything else is ``unparsable`` (the harness's "INVALID"),
     and no extraction at all is ``no_answer``; both are wrong. A capital inside the option's text ("C, 2A + H2",
     "C) A decrease ...") names no option, nor does free text that merely opens with a capital letter ("A possible
     approach ..."). Extraction takes time linear in the answer's length.

Verdicts (``VERDICTS``): ``correct``; ``wrong``; ``no_answer`` (nothing extracted); ``unparsable`` (extracted but
not a parsable answer / not a letter / beyond the limits above); ``timeout``; ``error`` (grader crash). Only
``correct`` counts as correct.

Deviations from the paper: its harness fell back to a gpt-4o-mini judge where the rules above
failed - an equivalence judge for math (MATH500, AIME24; AMC23 was run without it, by exact match) and a letter
extractor for GPQA, whose remaining misses then defaulted to "A". We use no LLM judge (nothing here may call a network
service): math-verify decides math equivalence, and a GPQA answer that is not a plain letter is wrong.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import re
import signal
import sys

log = logging.getLogger(__name__)

VERDICTS = ("correct", "wrong", "no_answer", "unparsable", "timeout", "error")
GRADER_FAILURES = ("timeout", "error")  # the grader could not judge the answer (counted wrong)
KINDS = ("math", "choice")
LETTERS = "ABCD"
# a control word ends at its last letter: "\\boxedd{4}" or "\\fboxes" is another macro, not a box
_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BRACE_RE = re.compile(r"(?<!\\)[{}]")  # \{ and \} are literal braces (set notation), not groups
_BOX_TOKEN_RE = re.compile(r"\s*([^\s$]+)")
_SPACES_RE = re.compile(r"[ \t]*")
_BRACKET_RE = re.compile(r"[{}()\[\]]")
_ANSWER_RE = re.compile(r"(?i)answer\s*:\s*")
_LATEX_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
# $...$, \[...\], \(...\): math environments math-verify extracts as written; an escaped \$ (MATH's "\$36") is not one
_MATH_ENV_RE = re.compile(r"(?<!\\)\$|\\\[|\\\(")
_DOLLAR_RE = re.compile(r"(?<!\\)\$")
_DISPLAY_RE = re.compile(r"(?<!\\)\$\$")
# Answers longer than this are graded "unparsable" without math-verify: the longest gold of MATH500, AIME24, AMC23 has
# 53 characters, and sympy can spend minutes (or run out of memory) on a long or deeply nested LaTeX string.
MAX_ANSWER_CHARS = 1000
MAX_NESTING = 20  # deeper bracket nesting is graded "unparsable" too: sympy's LaTeX parser recurses per level
MAX_INT_DIGITS = 4000  # below Python's int-string conversion limit (4300)
WORKER_MEMORY_BYTES = 4 << 30  # address-space cap of a grading worker


S1_MARKER = "<|im_start|>answer\n"


def answer_segment(text: str, marker: str = S1_MARKER) -> str:
    """``marker``: the delimiter set's ``answer_marker`` (s1: ``<|im_start|>answer\\n``, qwen3: ``</think>``)."""
    if marker in text:
        return text.rsplit(marker, 1)[1]
    if "<|im_start|>" in text:
        tail = text.rsplit("<|im_start|>", 1)[1]
        # the harness drops the first line only when there is a second: "<|im_start|>answer The answer is \boxed{5}"
        # (the model wrote no newline after the natural close) keeps its one line, and its box
        return tail.split("\n", 1)[1] if "\n" in tail else tail
    return text


def _closing_braces(text: str, start: int) -> dict[int, int]:
    """Position of the matching ``}`` for every balanced ``{`` at or after ``start``, in one pass (the old per-box scan
    was quadratic: a megabyte of unclosed ``\\boxed{`` hung the grading job)."""
    match, stack = {}, []
    for m in _BRACE_RE.finditer(text, start):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            match[stack.pop()] = m.start()
    return match


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (brace-matched; ``\\boxed {...}`` too) or ``\\boxed x``;
    None if there is none or the last one is open (cut off): the harness then falls back to ``Answer:``, not to an
    earlier box."""
    boxes = list(_BOX_RE.finditer(text))
    if not boxes:
        return None
    m = boxes[-1]
    brace = _SPACES_RE.match(text, m.end()).end()
    if text.startswith("{", brace):
        end = _closing_braces(text, brace).get(brace)
        return None if end is None else text[brace + 1 : end]
    if brace > m.end():
        token = _BOX_TOKEN_RE.match(text, brace)  # the first word, not past a "$"
        if token:
            return token.group(1)
    return None


def extract_answer(segment: str) -> str | None:
    """The harness's extraction: the last box's content, else everything after the last ``Answer:``."""
    return _extract(segment)[0]


def _extract(segment: str) -> tuple[str | None, bool]:
    """``(extract_answer, whether it came from a box)``."""
    boxed = last_boxed(segment)
    if boxed is not None:
        return boxed.strip(), True
    matches = list(_ANSWER_RE.finditer(segment))
    if matches:
        tail = segment[matches[-1].end() :].strip()
        return tail or None, False
    return None, False


_EMPHASIS_RE = re.compile(r"\*\*|__")
_LEAD_IN_RE = re.compile(r"(?i)^(?:(?:so|thus|therefore|hence),?\s+)?(?:the\s+)?(?:final\s+)?answer\s+is\s*:?\s*")
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}\s+[A-Za-z]{2,}(?![A-Za-z])")
# units after LaTeX: trailing words of 2+ letters ("3\sqrt{2} square units" -> "3\sqrt{2}"); a single letter is a
# variable ("\cot x", "\sqrt{2} a"), and a word right after a function ("\log_2 xy") is its argument, so neither is cut
_TRAILING_WORDS_RE = re.compile(r"(?:\s+[A-Za-z]{2,}\.?)+\s*$")
_FUNCTION_END_RE = re.compile(
    r"\\(?:(?:arc)?(?:sin|cos|tan|cot|sec|csc)h?|log|ln|lg|exp|det|gcd|lcm|max|min|arg)"
    r"(?:[_^](?:\{[^{}]*\}|[^\s{}\\]))*\s*$"
)
# a plain number ("10", "-3", "1,000", "2.5", "3/4") followed by what is not part of it: unit words ("10 dollars"), a
# parenthetical that opens with a word ("42 (since ...)"), or a justification clause ("42, since ..."). Not "2 or 3",
# "2 (or 3)", "5 x", "2 pi": a hedge or a variable after the number keeps the whole line.
_NOT_MATH_WORD = (  # words that change the number: "2 pi", "3 thousand", "5 squared", "2 or 3"
    r"(?!(?:pi|sqrt|sin|cos|tan|cot|sec|csc|log|ln|exp|or|and|nor|plus|minus|times|over|divided|to|choose|mod|"
    r"factorial|squared|cubed|hundreds?|thousands?|millions?|billions?|trillions?|dozens?|halfs?|halves|thirds?|"
    r"quarters?|fourths?|fifths?|sixths?|sevenths?|eighths?|ninths?|tenths?|hundredths?|thousandths?)\b)"
)
_NUMBER_TAIL_RE = re.compile(
    r"(-?[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?(?:/[0-9]+)?)"
    rf"(?:(?:\s+{_NOT_MATH_WORD}[A-Za-z]{{2,}}\.?)+\s*"
    r"|\s*\(\s*(?!(?:or|and|nor|plus|minus|times)\b)(?:[A-Za-z]{2,}[\s.,:;]|[A-Za-z]{4,}\)).*"
    r"|\s*[,;:.]?\s+(?:since|because|as|which|where|given|from|thus|hence|therefore)\b.*)",
    re.I | re.S,
)

# a plain number followed by unit symbols ("12 m^2", "10 N", "10 m/s", "9.8 m s^{-2}", "15 cm^2", "12 km/h"): SI and
# common imperial symbols only, and at least one capital, exponent or slash among them, since a bare lower-case
# symbol may be a variable ("5 x", "4 n"; math-verify itself drops a bare "m"; a unit word such as "cm" alone is cut by
# _NUMBER_TAIL_RE). Dropped only against a gold without letters outside LaTeX commands and text groups (a number:
# "12", "\frac{3}{2}", "10,\!080", "15\mbox{ cm}^2"): against "3m^2" or "2A" the letter is the answer's
_UNIT = (
    r"(?:[kcmdµμn]?m|[kmµμ]?g|[mµμn]?s|min|hr?|mi|in|ft|yd|lbs?|oz|mph|k?[NAVJWKCLTFH]|Hz|k?Pa|eV|mol)"
    r"(?:\^(?:\{-?[0-9]+\}|-?[0-9]+))?"
)
_NUMBER_UNITS_RE = re.compile(rf"(-?[0-9]+(?:,[0-9]{{3}})*(?:\.[0-9]+)?)((?:\s+{_UNIT}(?:/{_UNIT})?)+)\s*")


def _math_counts(line: str) -> list[int]:
    """The delimiters of ``line`` that ``_open_math`` weighs: unescaped ``$$``, single ``$``, and the openers and
    closers ``\\[ \\] \\( \\) \\begin{ \\end{``. Lines joined with a space have the sum of their counts."""
    return [
        len(_DISPLAY_RE.findall(line)),
        len(_DOLLAR_RE.findall(_DISPLAY_RE.sub(" ", line))),
        *(line.count(x) for x in ("\\[", "\\]", "\\(", "\\)", "\\begin{", "\\end{")),
    ]


def _open_math(counts: list[int]) -> bool:
    """Whether text with these ``_math_counts`` leaves a math environment open: an odd number of ``$$`` or of single
    ``$``, or more ``\\[`` / ``\\(`` / ``\\begin{`` than their closers."""
    display, single, lbr, rbr, lpar, rpar, begin, end = counts
    return display % 2 == 1 or single % 2 == 1 or lbr > rbr or lpar > rpar or begin > end


def answer_line(tail: str, unit_symbols: bool = True) -> str | None:
    """What an unboxed ``Answer:`` tail answers, for math: its first line with content once markdown emphasis and a
    lead-in ("The final answer is") are gone, continued over the next lines while a math environment it opens is
    open (``$$``, ``\\[``, ``\\begin{pmatrix}`` ...) or while it ends in ":". The harness kept the whole rest of the
    text, which its LLM judge then read; math-verify on a tail with a justification takes its last number. A plain
    number keeps none of the units, worded parenthetical or justification after it (``_strip_number_tail``; unit
    symbols such as "m^2" only with ``unit_symbols``). None if nothing is left."""
    lines = [ln.strip() for ln in tail.splitlines()]
    lines = [ln for ln in (_LEAD_IN_RE.sub("", _EMPHASIS_RE.sub("", ln).strip()).strip() for ln in lines) if ln]
    if not lines:
        return None
    parts, counts = [lines[0]], _math_counts(lines[0])
    for ln in lines[1:]:
        if not (_open_math(counts) or parts[-1].endswith(":")):
            break
        parts.append(ln)
        counts = [a + b for a, b in zip(counts, _math_counts(ln), strict=True)]  # one line at a time: linear
    return _strip_number_tail(" ".join(parts), unit_symbols)


def _strip_number_tail(line: str, unit_symbols: bool = True) -> str:
    """A plain number without what follows it when that is units, a worded parenthetical or a justification ("10
    dollars", "42 (since 6 * 7 = 42)", "42, because ..." -> the number); any other line as it is. Lines past
    ``MAX_ANSWER_CHARS`` are left alone (graded ``unparsable`` as they are)."""
    if len(line) <= MAX_ANSWER_CHARS:
        m = _NUMBER_TAIL_RE.fullmatch(line)
        if m:
            return m.group(1)
        m = _NUMBER_UNITS_RE.fullmatch(_strip_period(line)) if unit_symbols else None
        if m and re.search(r"[A-Z^/]", m.group(2)):  # "10 N." too
            return m.group(1)
    return line


def _strip_units(text: str) -> str:
    """``text`` without trailing unit words (``_TRAILING_WORDS_RE``) unless they follow a function such as ``\\sin``
    (its argument); never empty."""
    m = _TRAILING_WORDS_RE.search(text)
    if m is None or m.start() == 0 or _FUNCTION_END_RE.search(text, 0, m.start()):
        return text
    return text[: m.start()]


def _math_input(extracted: str, boxed: bool, unit_symbols: bool = True, imaginary: bool = False) -> str | None:
    """The text math-verify parses. A box's content or a bare expression is wrapped as ``$\\boxed{...}$`` (LaTeX
    outside a math environment is not extracted: "3\\sqrt{2}" would read as 3). Text with a math environment (``$``,
    ``$$``, ``\\[``, ``\\(``) is parsed as written, each environment as ``$...$`` with no spaces inside
    (``_tight_math``), so math-verify picks the expression out of any words around it. An unboxed ``Answer:`` line
    that reads as prose ("the sum is 42") is graded on the expression it ends in (``_expression_tail``), boxed: as
    written, math-verify reads "The area is 3\\sqrt{2}." as 3 and "The roots are 6 - 5i." as a product of letters;
    with no such expression it is parsed as written. Trailing words of two or more letters after LaTeX are units
    ("2\\pi square inches"): dropped before the prose test; a single letter ("\\cot x", "\\sqrt{2} a") or a function's
    argument ("\\sin xy") is kept. A box holding a plain number and its units is that number, as an answer line
    ("\\boxed{15 cm^2}"), against a gold without letters (``unit_symbols``). With ``imaginary`` (the gold has an
    imaginary unit ``i``), "5 i" is "5i", not the product of 5 and a variable. None: prose that hedges between two
    answers ("27, or maybe 28"), graded ``unparsable``."""
    extracted = normalized(extracted)
    if imaginary:
        extracted = _SPACED_IMAGINARY_RE.sub("i", extracted)
    if _MATH_ENV_RE.search(extracted):
        return _tight_math(extracted)
    if not boxed:
        if _LATEX_COMMAND_RE.search(extracted):
            extracted = _strip_units(extracted)
        if _PROSE_RE.search(_LATEX_COMMAND_RE.sub(" ", extracted)):
            if _HEDGED_RE.search(extracted):
                return None
            tail = _expression_tail(extracted, unit_symbols)
            return extracted if tail is None else f"$\\boxed{{{tail}}}$"
    elif unit_symbols:  # against a gold with letters, "12 ab" in a box may be the product 12ab
        extracted = _strip_number_tail(extracted)
    return f"$\\boxed{{{extracted}}}$"


_DELIMITER_RE = re.compile(r"(?<!\\)\$\$|(?<!\\)\\[\[\]()]")  # $$, \[, \], \(, \) (not a row break's \\[2pt])
_INLINE_RE = re.compile(r"(?<!\\)\$\s*(.*?)\s*(?<!\\)\$", re.S)
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_LONE_VARIABLE_RE = re.compile(r"[A-Za-z]'*")
# a row break's vertical space ("\\\\[2pt]" in a matrix), which math-verify 0.9 reads as the product 2*p*t
_ROW_SPACING_RE = re.compile(
    r"(\\\\)\s*\[\s*-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:pt|em|ex|mm|cm|in|bp|pc|dd|cc|sp|mu)\s*\]"
)
_ENVIRONMENT_RE = re.compile(r"\\(?:begin|end)\s*\{[A-Za-z*]+\}")
_EXPRESSION_RE = re.compile(r"[0-9^_=+*/<>-]|\\[A-Za-z]")
_TEXT_GROUP_RE = re.compile(r"\\(?:text|mbox|mathrm)\s*\{[^{}]*\}")
_TEXT_UNITS_RE = re.compile(r"\s*\\(?:text|mbox|mathrm)\s*\{\s*[A-Za-z][A-Za-z ]*\}\s*$")  # "\text{ square units}"
# a text group with a word in it: prose, even inside an expression's braces
_TEXT_GROUP_WORDS_RE = re.compile(r"\\(?:text[a-z]*|mbox|mathrm)\s*\{[^{}]*[A-Za-z]{2,}")


# digit groups with a LaTeX space between them ("1\\,024", "10\\;080", "3~159"), which math-verify 0.9 reads as a sum
# (1\\,024 = 1 + 024 = 25); written "1{,}024" or "10,\\!080" it reads them as one number already
_DIGIT_GROUPS_RE = re.compile(r"(?<![0-9])[0-9]{1,3}(?:(?:\\[,;:! ]|~)\s*[0-9]{3})+(?![0-9])")
_DIGIT_SEPARATOR_RE = re.compile(r"(?:\\[,;:! ]|~)\s*")
# "90°", "90^{°}", "90\\degree": math-verify knows only ^\\circ
_DEGREE_RE = re.compile(r"\^\s*\{\s*(?:°|\\degree)\s*\}|\^\s*(?:°|\\degree(?![A-Za-z]))|°|\\degree(?![A-Za-z])")
# a number or group, a space, then the imaginary unit ("6 - 5 i", "\\sqrt{3} i")
_SPACED_IMAGINARY_RE = re.compile(r"(?<=[0-9}])\s+i(?![A-Za-z])")
_IMAGINARY_RE = re.compile(r"(?<![A-Za-z\\])i(?![A-Za-z])")
# prose hedging between two answers ("27, or maybe 28"; not "1/2, or 0.5", "3 or more")
_HEDGED_RE = re.compile(r"(?i)\bor\s+(?:maybe|possibly|perhaps|probably)\b")


def normalized(text: str) -> str:
    """``text`` with what math-verify misreads spelt as it reads it, for a gold and an answer alike: a matrix row
    break's vertical space dropped, digit groups joined ("1\\,024" -> "1024"), a degree sign as ``^{\\circ}``."""
    text = _DIGIT_GROUPS_RE.sub(lambda m: _DIGIT_SEPARATOR_RE.sub("", m.group()), without_row_spacing(text))
    return _DEGREE_RE.sub(lambda _: "^{\\circ}", text) if "°" in text or "\\degree" in text else text


def without_row_spacing(text: str) -> str:
    """``text`` with each matrix row break's vertical space dropped ("1 \\\\[2pt] 2" -> "1 \\\\ 2")."""
    return _ROW_SPACING_RE.sub(r"\1", text)


def _tight_math(text: str) -> str:
    """``text`` with every math environment as ``$...$`` without spaces inside the delimiters: math-verify 0.9 drops
    ``\\text`` units only when the expression touches them ("$864 \\mbox{ inches}^2$" is 864, while
    "$ 864 \\mbox{ inches}^2 $" and "\\[ 864 \\mbox{ inches}^2 \\]" are 864*inches**2)."""
    return _INLINE_RE.sub(lambda m: f"${m.group(1)}$", _DELIMITER_RE.sub("$", text))


def _expression_tail(line: str, unit_symbols: bool = True) -> str | None:
    """The expression a prose line ends in ("The largest root is 1+\\sqrt{3}." -> "1+\\sqrt{3}", "The roots are
    6 - 5i." -> "6 - 5i"): its longest run of trailing whitespace-separated tokens without a word of two or more letters
    outside LaTeX commands, environment names and the brace groups it ends in ("So we get \\sqrt{xy + 4}"), full stop
    and ``\\text{...}`` units dropped. None when there is none, when it cuts a brace group, or when it has no digit,
    LaTeX command or operator and is not a lone variable after prose without math ("So the base is e", not "We get 9
    for n")."""
    tokens = _TEXT_UNITS_RE.sub("", _strip_period(line)).split()
    start = _tail_start(tokens, into_groups=True)
    if _TEXT_GROUP_WORDS_RE.search(" ".join(tokens[start:])):
        # a group it entered is prose ("\text{The answer is } 5", "5 (\text{the minimum of } a_n)"): words stop it
        start = _tail_start(tokens, into_groups=False)
    tail = " ".join(tokens[start:])
    braces = _BRACE_RE.findall(tail)
    if braces.count("{") != braces.count("}"):
        return None
    if not _EXPRESSION_RE.search(tail):
        # a lone variable ("So the base is e", gold "e"), where nothing before it is math: "We get 9 for n" and
        # "x = 2^k for some k" answer what comes before the letter, as written; any other letters-only tail ("(C)")
        # stays prose
        lone = _LONE_VARIABLE_RE.fullmatch(tail) and not _EXPRESSION_RE.search(" ".join(tokens[:start]))
        return tail if lone else None
    return _strip_number_tail(tail, unit_symbols)  # "The area is 12 m^2": the number, not the product 12 m^2


def _tail_start(tokens: list[str], into_groups: bool) -> int:
    """Where the trailing run of ``tokens`` without a word of two or more letters (outside LaTeX commands and
    environment names) begins; ``into_groups``: letters inside a brace group the run has entered from its end are
    math ("\\sqrt{xy + 4}")."""
    start, open_groups = len(tokens), 0
    while start:
        token = tokens[start - 1]
        if (not into_groups or open_groups <= 0) and _WORD_RE.search(
            _LATEX_COMMAND_RE.sub(" ", _ENVIRONMENT_RE.sub(" ", token))
        ):
            break
        braces = _BRACE_RE.findall(token)
        open_groups += braces.count("}") - braces.count("{")
        start -= 1
    return start


_INTEGER_RE = re.compile(r"-?[0-9]+(?:\.0+)?")
_INTEGER_WRAPPERS = (  # innermost content without braces/parens only, so "\text{a} + \text{b}" is never "peeled"
    re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}"),
    re.compile(r"\{([^{}]*)\}"),
    re.compile(r"\(([^()]*)\)"),
    re.compile(r"\$([^$]*)\$"),
)


def _strip_period(text: str) -> str:
    """A sentence's full stop after the answer ("\\boxed{104.}"), not an escaped ``\\.``."""
    t = text.strip()
    end = len(t)  # indices, not repeated slicing: linear even for a megabyte of dots
    while end and t[end - 1] == "." and not (end >= 2 and t[end - 2] == "\\"):
        end -= 1
        while end and t[end - 1].isspace():
            end -= 1
    return t[:end]


def as_integer(text: str) -> int | None:
    """``text`` as an integer if it spells one: digits ("025"), a leading minus, an integral decimal ("27.0"),
    also inside ``\\textbf{(073)}``-style wrappers or followed by a full stop; else None (also beyond
    ``MAX_INT_DIGITS`` digits, where ``int()`` refuses the conversion)."""
    t = _integer_text(text)
    return int(t) if t is not None and len(t) <= MAX_INT_DIGITS else None


def _integer_text(text: str) -> str | None:
    """The canonical decimal spelling ("-12", "0") of the integer ``text`` spells, or None; no ``int()``, so a
    model's 5,000-digit answer compares without Python's integer-string limit (it used to crash the grade job)."""
    t = _strip_period(normalized(text))
    for _ in range(4):
        for rx in _INTEGER_WRAPPERS:
            m = rx.fullmatch(t)
            if m:
                t = _strip_period(m.group(1))
                break
        else:
            break
    if _INTEGER_RE.fullmatch(t) is None:
        return None
    negative = t.startswith("-")
    digits = t.removeprefix("-").split(".", 1)[0].lstrip("0") or "0"
    return "-" + digits if negative and digits != "0" else digits


def _integer_verdict(gold: str, extracted: str) -> str | None:
    """The harness rule for digit strings ("025" = 25), extended to signs and integral decimals ("27.0" = 27);
    None when math-verify must decide."""
    g, e = _integer_text(gold), _integer_text(extracted)
    if g is None or e is None:
        return None
    return "correct" if g == e else "wrong"


# a pattern, or a character whose runs enclose the text ("$C$", "**C**"): those are stripped, not matched with
# r"\$+(.*?)\$+", which took time cubic in a run's length (a budget-cut "$$$..." line hung the grade job for hours)
_WRAPPERS = (
    re.compile(r"\\(?:text|textbf|textit|texttt|mathrm|mathbf|mathit|mathsf|mathtt|mbox)\s*\{(.*)\}", re.S),
    re.compile(r"\{(.*)\}", re.S),
    "$",
    re.compile(r"\\\((.*)\\\)", re.S),
    re.compile(r"\\\[(.*)\\\]", re.S),
    "*",
    "_",
)


def _unwrapped(text: str, wrapper) -> str | None:
    """``text`` without ``wrapper`` around it (a pattern's group, or a character's leading and trailing runs), or None
    when it is not wrapped so."""
    if isinstance(wrapper, str):
        return text.strip(wrapper) if len(text) >= 2 and text[0] == text[-1] == wrapper else None
    m = wrapper.fullmatch(text)
    return None if m is None else m.group(1)


_MARKDOWN_CLOSE = re.compile(r"^[*_]+(?=\s)")
# "(C)" or "C)" standing alone (upper case, after a space or at the start), outside $...$: another option named
_OPTION_REF_RE = re.compile(r"(?:^|(?<=\s))\(?([A-D])\)")
_INLINE_MATH_RE = re.compile(r"\$[^$]*\$")
_LETTER_RE = re.compile(r"\(?([A-D])\)?[.:]?", re.I)
# the letter, then the option's text: "(C) 4.2 eV", "C) 4.2 eV", "C. 4.2 eV"
# (not a clause: "(C), since ..." and "(C) is correct, ..." are _LETTER_CLAUSE_RE's)
_LETTER_TEXT_RE = re.compile(r"(?:\(([A-D])\)\s*|([A-D])[).:]\s+)(?!is\b)([^\s,;].*)", re.I | re.S)
# a lead-in before the letter: "The answer is", "The correct option is:", "Option", "Choice", "Correct answer:"
_CHOICE_LEAD_IN_RE = re.compile(
    r"(?i)^(?:(?:so|thus|therefore|hence),?\s+)?(?:the\s+)?(?:(?:final|correct|right|best)\s+)*"
    r"(?:answer|option|choice)(?:\s+is\b)?\s*:?\s*"
)
# the letter followed by a verdict or a justification: "C is correct", "C is the answer", "C, since ...", "C because"
_LETTER_CLAUSE_RE = re.compile(
    r"\(?([A-D])\)?(?:\s+is\s+(?:the\s+)?(?:correct|right|best|answer|final)\b|\s*[,;]|\s+(?:since|because)\b)(.*)",
    re.I | re.S,
)
# after a verdict or justification, a hedge word or another letter first: "C, or D", "C, maybe D", "C; D", "c, d"
_HEDGE_RE = re.compile(r"(?i)^\W*(?:(?:or|and|nor|maybe|possibly|perhaps|unless)\b|[A-D]\s*[,;/)]|[A-D]\W*$)")
# after "(C)" / "C)" the option's text follows, which may open with any word ("Possibly the enol form", "but-2-ene",
# "a/2"), a capital ("A decrease") or be one letter: only "or" and a slash to another letter hedge ("(C) or D",
# "(C)/(D)")
_TEXT_HEDGE_RE = re.compile(r"^\W*(?i:or|nor)\b|^\s*/\s*\(?[A-D](?![\w(])")
# another option named anywhere after the letter: "(D)", "D)", "option D" (not "P(A)", "N/C"); after a verdict or
# justification also a capital letter as a subject or on its own ("C, since D is wrong", "C is correct, D too").
# A capital inside an option's text ("2A + H2", "C=O", "the C-H bond") names none: letters next to a digit, sign or
# letter are not.
_OTHER_OPTION = r"(?<![\w\\])\(([A-D])\)|(?<![\w\\(])([A-D])\)|\b(?i:options?|choices?)\s+\(?([A-D])(?![\w(])"
_OTHER_OPTION_RE = re.compile(_OTHER_OPTION)
_OTHER_OPTION_CLAUSE_RE = re.compile(
    _OTHER_OPTION + r"|(?<!\S)([A-D])(?=\s+(?:is|are|was|were|would|could|might|may|seems?|also|too)\b|\W*$)"
)


def choice_letter(extracted: str) -> str | None:
    """The option letter (upper case) an extracted answer names, or None if it is not one of the accepted forms."""
    text = _MARKDOWN_CLOSE.sub("", extracted.strip()).strip()  # "**Answer:** C" leaves "** C"
    if "\n" in text:
        text = text.split("\n", 1)[0].strip()  # "Answer: C\n\nbecause ..." - the answer line only
    text = _EMPHASIS_RE.sub("", text).strip()  # "The answer is **C**"
    for _ in range(8):  # peel \text{...}, {...}, $...$, *...*, and a lead-in ("The answer is"), in any nesting
        for wrapper in _WRAPPERS:
            inner = _unwrapped(text, wrapper)
            if inner is not None:
                text = inner.strip()
                break
        else:
            stripped = _CHOICE_LEAD_IN_RE.sub("", text, count=1).strip()
            if stripped == text:
                break
            text = stripped
    m = _LETTER_RE.fullmatch(text)
    if m is not None:
        letter = m.group(1).upper()
    elif (m := _LETTER_TEXT_RE.fullmatch(text)) is not None:
        letter = (m.group(1) or m.group(2)).upper()
        if _names_another(m.group(3), letter, _OTHER_OPTION_RE, _TEXT_HEDGE_RE):
            return None  # "(C) or D", "C. Option D is also possible", "(C)/(D)"
    elif (m := _LETTER_CLAUSE_RE.fullmatch(text)) is not None:
        letter = m.group(1).upper()
        if _names_another(m.group(2), letter, _OTHER_OPTION_CLAUSE_RE, _HEDGE_RE):
            return None  # "C, or D", "C is correct, D too", "C, since D is wrong"
    else:
        return None
    named = set(_OPTION_REF_RE.findall(_INLINE_MATH_RE.sub(" ", text)))
    return None if named - {letter} else letter  # "(A) and (C)" hedges between options: no answer


def _names_another(rest: str, letter: str, options: re.Pattern, hedge: re.Pattern) -> bool:
    """Whether the text after the answer's letter hedges or names an option other than ``letter`` (letters inside
    ``$...$`` are math, not options)."""
    rest = _INLINE_MATH_RE.sub(" ", rest)
    named = {x for groups in options.findall(rest) for x in groups if x}
    return bool(hedge.match(rest) or named - {letter})


def _choice_verdict(gold: str, extracted: str) -> tuple[str, str]:
    g = gold.strip().upper()
    if len(g) != 1 or g not in LETTERS:
        raise ValueError(f"choice gold must be one letter {LETTERS}, got {gold!r}")
    letter = choice_letter(extracted)
    if letter is None:
        return extracted, "unparsable"
    return letter, "correct" if letter == g else "wrong"


class _ItemTimeout(BaseException):
    """Raised by a worker's timer when an item runs out of time; a ``BaseException`` so that math-verify's and sympy's
    ``except Exception`` handlers cannot swallow it."""


def _on_alarm(signum, frame):
    raise _ItemTimeout


def _init_worker(memory_bytes: int | None) -> None:
    """Each worker: an address-space cap (a runaway sympy computation fails with MemoryError instead of exhausting the
    node), math-verify imported and its parsers built before the first item's clock starts, the item timer's handler."""
    if memory_bytes:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # its "timeout disabled" notice: the timer is ours
    from math_verify import parse, verify

    verify(parse("$1$", parsing_timeout=None), parse("$\\frac{2}{2}$", parsing_timeout=None), timeout_seconds=None)
    signal.signal(signal.SIGALRM, _on_alarm)  # the warm-up above built the parsers outside any item's clock


def _verify(gold: str, extracted: str, timeout: float) -> str:
    """Runs in a worker process; ``extracted`` as math-verify should parse it (``_math_input``). One timer bounds the
    whole item (both parses and the comparison) to ``timeout`` seconds; math-verify's own alarms (one per call, whole
    seconds) are off."""
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

        g = parse(f"${normalized(gold)}$", [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=None)
        p = parse(
            extracted,
            [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
            parsing_timeout=None,
        )
        if not p:
            return "unparsable"
        # an inequality answers an interval ("x > 2" for (2, \\infty)); a decimal must agree to ~6 significant digits
        same = verify(g, p, allow_set_relation_comp=True, timeout_seconds=None) and _numbers_agree(g, p)
        return "correct" if same else "wrong"
    except Exception:  # noqa: BLE001 - a grader crash must cost one item, not the batch
        return "error"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# math-verify compares a decimal with a number after rounding both to 6 decimal places, so 0.0000667 equals
# 0.0000672 and 0.00199 equals 2/1005; they must also agree to this relative difference (0.333333 still equals 1/3)
NUMERIC_RELATIVE_TOLERANCE = 5e-6


def _numbers_agree(gold: list, pred: list) -> bool:
    """False when the first parsed gold and answer are plain numbers, one a decimal, that differ by more than
    ``NUMERIC_RELATIVE_TOLERANCE`` of the larger; True otherwise (math-verify's verdict stands)."""
    import sympy

    if not (gold and pred and isinstance(gold[0], sympy.Number) and isinstance(pred[0], sympy.Number)):
        return True
    a, b = gold[0], pred[0]
    if not (isinstance(a, sympy.Float) or isinstance(b, sympy.Float)):
        return True
    return bool(abs(a - b) <= NUMERIC_RELATIVE_TOLERANCE * max(abs(a), abs(b)))


def _verify_star(args):
    try:
        return _verify(*args)
    except _ItemTimeout:  # also when the timer fires between the item's end and its cancellation
        return "timeout"


@contextlib.contextmanager
def _spawn_without_main():
    """Spawned workers re-run the parent's ``__main__`` file unless it is hidden; under Snakemake that file is the
    rule's script, which must not run again in each worker."""
    main = sys.modules.get("__main__")
    saved = getattr(main, "__file__", None)
    if saved is not None and getattr(main, "__spec__", None) is None:
        del main.__file__
    try:
        yield
    finally:
        if saved is not None:
            main.__file__ = saved


def _nesting(text: str) -> int:
    """The deepest nesting of ``{ ( [`` brackets (closers without an opener are ignored)."""
    depth = deepest = 0
    for m in _BRACKET_RE.finditer(text):
        if m.group() in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif depth:
            depth -= 1
    return deepest


def _shorten(extracted: str) -> str:
    """What the grades table stores of an extracted answer: at most ``MAX_ANSWER_CHARS`` characters."""
    return extracted if len(extracted) <= MAX_ANSWER_CHARS else extracted[:MAX_ANSWER_CHARS] + "...[truncated]"


def grade(
    items: list[tuple[str, str]],
    workers: int = 2,
    timeout: int = 5,
    marker: str = S1_MARKER,
    kind: str = "math",
) -> list[tuple[str | None, str]]:
    """``items``: (full text, gold). ``kind``: ``math`` or ``choice`` (the benchmark's ``KIND``). Returns (extracted
    answer, verdict) per item, in order; for ``choice`` the extracted answer is the letter when one was found."""
    if kind not in KINDS:
        raise ValueError(f"grading kind {kind!r} is not known (known: {', '.join(KINDS)})")
    out: list[tuple[str | None, str] | None] = [None] * len(items)
    todo = []
    for i, (text, gold) in enumerate(items):
        extracted, boxed = _extract(answer_segment(text, marker))
        # "12 m^2" is 12 against 12 or "12\\mbox{ m}^2", not against "12m^2"
        unit_symbols = not re.search(r"[A-Za-z]", _LATEX_COMMAND_RE.sub("", _TEXT_GROUP_RE.sub("", gold)))
        if extracted is not None and kind == "math" and not boxed:
            extracted = answer_line(extracted, unit_symbols)
        if extracted is None:
            out[i] = (None, "no_answer")
        elif kind == "choice":
            letter, verdict = _choice_verdict(gold, extracted)
            out[i] = (_shorten(letter), verdict)
        elif (verdict := _integer_verdict(gold, extracted)) is not None:
            out[i] = (_shorten(extracted), verdict)  # no worker needed (and none is started if all are integers)
        elif len(extracted) > MAX_ANSWER_CHARS or _nesting(extracted) > MAX_NESTING:
            out[i] = (_shorten(extracted), "unparsable")
        else:
            parsed = _math_input(_strip_period(extracted), boxed, unit_symbols, bool(_IMAGINARY_RE.search(gold)))
            if parsed is None:
                out[i] = (_shorten(extracted), "unparsable")
            else:
                out[i] = (extracted, "")
                todo.append((i, (gold, parsed, timeout)))
    # backstop for a worker stuck in C code (the item timer fires only between Python bytecodes); the slack covers the
    # start of a fresh pool (spawn + import of math-verify) on a loaded machine
    guard = 2 * timeout + 10
    while todo:
        # spawn, not fork: the caller may hold threads (torch, pyarrow pools) that fork would copy mid-state
        with (
            _spawn_without_main(),
            mp.get_context("spawn").Pool(max(1, workers), _init_worker, (WORKER_MEMORY_BYTES,)) as pool,
        ):
            futures = [(i, pool.apply_async(_verify_star, (args,))) for i, args in todo]
            done = 0
            for i, fut in futures:
                try:
                    verdict = fut.get(timeout=guard)
                except mp.TimeoutError:
                    verdict = "timeout"
                    out[i] = (out[i][0], verdict)
                    done += 1
                    log.warning("grading item %d hung past %ss; restarting the worker pool", i, guard)
                    pool.terminate()
                    break
                out[i] = (out[i][0], verdict)
                done += 1
            todo = todo[done:]
    return out  # type: ignore[return-value]


def grade_rows(
    gen_rows: list[dict],
    gold: dict[str, str],
    impl_version: int,
    workers: int,
    timeout: int,
    marker: str = S1_MARKER,
    kind: str = "math",
) -> list[dict]:
    results = grade([(r["full_text"], gold[r["problem_id"]]) for r in gen_rows], workers, timeout, marker, kind)
    rows = []
    for r, (extracted, verdict) in zip(gen_rows, results, strict=True):
        rows.append(
            dict(
                model=r["model"],
                variant=r["variant"],
                bench=r["bench"],
                seed=r["seed"],
                budget=r["budget"],
                impl_version=impl_version,
                problem_id=r["problem_id"],
                thinking_tokens=r["thinking_tokens"],
                hit_budget=r["hit_budget"],
                answer_stopped=r["answer_stopped"],
                gold=gold[r["problem_id"]],
                extracted=extracted,
                verdict=verdict,
                correct=verdict == "correct",
            )
        )
    return rows
