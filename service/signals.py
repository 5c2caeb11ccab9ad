"""Behavioural evidence from a submission's keystroke/clipboard log, and its fusion.

Pure functions, no I/O. :func:`compute_signals` reads the raw ``events`` of a
:class:`~service.schema.Submission` and never raises: a log it cannot use gives
``Signals(events_available=False, unavailable_reason=...)``. :func:`fuse`
combines the text verdict of :func:`service.verdict.decide` with those signals
under the policy stated below.

Event formats understood (``events`` may also be a JSON string of either list,
or an object holding the list under ``events`` / ``log_of_what_they_did``):

* the MTurk task page of the 2023 GPTurk study: a list of
  ``["key", key, ts]``, ``["paste", pasted_text, ts]`` and ``["copy", copied_text]``
  (copies carry no timestamp there);
* a list of objects ``{"type": "key"|"paste"|"copy", "value": ..., "t": ts}``
  (``ts``/``time``/``timestamp`` and ``key``/``text``/``data`` are accepted too).

Timestamps are ISO 8601 strings or epoch numbers (milliseconds when larger than
1e11, seconds otherwise). ``cut`` is read as a copy; other event types (focus,
blur, ...) are counted in ``n_unknown`` and otherwise ignored.

Where pasted text came from
---------------------------
Overlap is measured with **word 8-gram shingles**: texts are NFC-normalized,
lower-cased and split into ``\\w+`` words (punctuation and spacing do not
matter); a shingle is a run of 8 consecutive words. Eight words in the same
order almost never repeat by chance, yet a copy survives light edits around it.
A paste shorter than 8 words is matched as one whole word sequence instead.

Every shingle of every paste is given one origin, in this order of precedence
(the benefit of the doubt goes to the worker):

``source``  found in ``source_text`` (the task material: copying it is *not* LLM use);
``own``     found in the text the worker typed (key events replayed in order,
            Backspace deleting the last character), e.g. moving their own paragraph;
``page``    found in an earlier ``copy`` event on the task page (the page, or the
            worker's own answer) and not itself pasted from outside before;
``foreign`` none of these: the text came from outside the task page. This is
            the LLM-use evidence.

The *final text* is then covered word by word: a word counts as pasted when a
paste shingle covering it occurs in the final text, and as ``foreign`` only
when every such shingle is foreign. Shares are those covered characters
(each word plus one separator) over all characters of the final text, so they
measure how much of the *submitted answer* came from each origin, 0..1.

The same shingles measure, without any events, how much of the answer *repeats
the task text*: ``source_overlap_share`` covers the words of the final text that
lie in a shingle also found in ``source_text``, whether pasted, retyped or
written with no log at all.

Shortcut keys: MTurk logs keydowns only, so ``Control`` then ``v`` shows up as
two keys. A single-character key following ``Control``/``Meta``/``Alt`` within
1.5 s (or with no timestamps) is a shortcut and is not counted as typing.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from .detector.model_dir import veto_tag
from .errors import InputError
from .schema import parse_time
from .text import normalize
from .verdict import REPLY_FORMULA_REASON, Verdict, decide

if TYPE_CHECKING:
    from .detector import ModelInfo, TextScore

__all__ = [
    "Signals", "compute_signals", "fuse", "parse_mturk_answer", "parse_prolific_log",
    "SHINGLE_WORDS", "FOREIGN_PASTE_MIN_SHARE", "FOREIGN_PASTE_MIN_CHARS",
    "TYPED_MIN_SHARE", "TYPED_MAX_PASTE_SHARE", "PLAUSIBLE_CPM", "MENTION_MIN_CHARS",
    "SOURCE_COPY_MIN_SHARE", "SOURCE_REPEAT_MIN_SHARE", "source_overlap", "judge",
    "member_below_midpoint",
]

# --- policy constants -----------------------------------------------------------------
SHINGLE_WORDS = 8
"""Words per shingle of the overlap measure (see the module docstring)."""

FOREIGN_PASTE_MIN_SHARE = 0.5
"""A *large foreign paste* covers at least this share of the final answer ..."""
FOREIGN_PASTE_MIN_CHARS = 200
"""... and at least this many of its characters (a pasted sentence is not enough)."""

TYPED_MIN_SHARE = 0.8
"""*Typed from scratch*: characters typed are at least this share of the final answer ..."""
TYPED_MAX_PASTE_SHARE = 0.2
"""... at most this share of the answer was pasted (from anywhere) ..."""
PLAUSIBLE_CPM = (20.0, 900.0)
"""... and the typing speed (characters per active minute) lies in this range. Human
typists run about 100-500 cpm; far faster is an auto-typer replaying text."""

SOURCE_COPY_MIN_SHARE = 0.5
"""When at least this share of the answer was pasted from the task's own text, the text
score rates the task material's authors, not the worker: an ``llm`` text verdict is
lowered to ``uncertain`` (seen on the 2023 MTurk batch: answers that are the pasted
abstract score like polished LLM prose)."""

SOURCE_REPEAT_MIN_SHARE = 0.7
"""The same, with or without a keystroke log, when at least this share of the answer
repeats the task text word for word (``source_overlap_share``: retyped, or pasted where
no log was kept). Higher than for pastes because LLMs repeat their source too: of
ChatGPT's 320 GPTurk summaries, 63 repeat at least half of their abstract, 9 at least
70%; the 23 answers of the 2023 batch pasted from the abstract repeat 80-100% of it
(README, "Answers that repeat the task text")."""

MENTION_MIN_CHARS = 50
"""A paste this long that is not evidence (from the task material, or a foreign paste too
small to count) is still stated as a reason."""

IDLE_GAP_S = 5.0
"""Pauses between keys count at most this long towards active typing time."""
SHORTCUT_GAP_S = 1.5
"""A key this soon after Control/Meta/Alt is a shortcut (Ctrl+V), not typing."""
MIN_CHARS_FOR_SPEED = 20
"""Fewer typed characters than this give no typing speed."""

_MODIFIERS = frozenset({"Control", "Meta", "Alt", "OS", "Command", "Cmd"})
_DELETES = frozenset({"Backspace", "Delete"})
_NAMED_CHARS = {"Enter": "\n", "Tab": "\t", "Spacebar": " "}
_WORD = re.compile(r"\w+", re.UNICODE)
_TS_KEYS = ("t", "ts", "time", "timestamp")
_VALUE_KEYS = ("value", "key", "text", "data")
_TYPE_KEYS = ("type", "kind", "event")
_LIST_KEYS = ("events", "log_of_what_they_did", "log")
_KNOWN = {"key": "key", "keydown": "key", "paste": "paste", "copy": "copy", "cut": "copy"}
_ORIGINS = ("source", "own", "page", "foreign")


# --- the signals ------------------------------------------------------------------------
@dataclass(frozen=True)
class Signals:
    """Behavioural features of one submission (``None`` where events were not usable)."""

    events_available: bool
    unavailable_reason: str | None = None
    source_available: bool = False
    time_on_task_s: float | None = None
    answer_chars: int | None = None
    n_events: int | None = None
    n_keys: int | None = None
    chars_typed: int | None = None
    n_deletes: int | None = None
    n_shortcuts: int | None = None
    typed_share: float | None = None
    typing_speed_cpm: float | None = None
    n_pastes: int | None = None
    pasted_chars: int | None = None
    paste_share: float | None = None
    pasted_from_source_share: float | None = None
    pasted_from_source_chars: int | None = None
    source_overlap_share: float | None = None
    pasted_from_page_share: float | None = None
    pasted_own_share: float | None = None
    foreign_paste_share: float | None = None
    foreign_paste_chars: int | None = None
    n_copies: int | None = None
    copied_from_source: int | None = None
    events_truncated: bool = False
    log_truncated: bool = False
    n_out_of_order: int = 0
    n_malformed: int = 0
    n_unknown: int = 0

    @classmethod
    def unavailable(cls, reason: str, *, time_on_task_s: float | None = None,
                    source_available: bool = False, **extra: Any) -> Signals:
        return cls(events_available=False, unavailable_reason=reason,
                   time_on_task_s=time_on_task_s, source_available=source_available, **extra)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (floats rounded to 4 places) for the flag's ``signals``."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 4)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signals:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class _Event:
    kind: str            # key | paste | copy
    value: str
    ts: float | None     # epoch seconds
    order: int
    sort_ts: float = -math.inf


# --- parsing ------------------------------------------------------------------------------
def _to_epoch(value: Any) -> float | None:
    """Epoch seconds from an ISO string or an epoch number (ms if > 1e11); ``None`` if unusable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        try:
            value = float(s)
        except ValueError:
            try:
                dt = parse_time(s)
            except (ValueError, TypeError, OverflowError):
                return None
            return dt.timestamp() if dt is not None else None
    if isinstance(value, (int, float)):
        x = float(value)
        if not math.isfinite(x) or x < 0:
            return None
        return x / 1000.0 if x > 1e11 else x
    return None


def _loads_lenient(s: str) -> tuple[Any, bool]:
    """JSON value of ``s``; a list cut off mid-way yields its complete elements.

    Returns ``(value, truncated)``; raises ``ValueError`` if nothing is recoverable.
    """
    try:
        return orjson.loads(s), False
    except orjson.JSONDecodeError:
        pass
    body = s.lstrip()
    if not body.startswith("["):
        raise ValueError("not JSON")
    dec = json.JSONDecoder()
    items: list[Any] = []
    i, n = 1, len(body)
    while i < n:
        while i < n and body[i] in " \t\r\n,":
            i += 1
        if i >= n or body[i] == "]":
            break
        try:
            item, i = dec.raw_decode(body, i)
        except ValueError:
            if not items:
                raise ValueError("not JSON") from None
            return items, True
        items.append(item)
    # Reaching here means orjson rejected it although every element decoded: junk after
    # the list or a missing closing bracket, i.e. the log was cut.
    return items, True


def _unwrap(events: Any) -> tuple[Any, bool, str | None]:
    """The raw event list inside ``events``: ``(list_or_None, log_truncated, reason_if_none)``."""
    truncated = False
    for _ in range(3):  # a JSON string may hold a JSON string; an object may hold the list
        if events is None:
            return None, truncated, "no events"
        if isinstance(events, (bytes, bytearray)):
            try:
                events = bytes(events).decode("utf-8")
            except UnicodeDecodeError:
                return None, truncated, "events are not UTF-8"
        if isinstance(events, str):
            if not events.strip() or events.strip().lower() in ("null", "nan", "none"):
                return None, truncated, "no events"
            try:
                events, cut = _loads_lenient(events)
            except ValueError:
                return None, truncated, "events are not JSON"
            truncated = truncated or cut
            continue
        if isinstance(events, dict):
            inner = next((events[k] for k in _LIST_KEYS if k in events), None)
            if inner is not None:
                events = inner
                continue
            if any(k in events for k in _TYPE_KEYS):
                return [events], truncated, None
            return None, truncated, "unrecognized events shape: object without an event list"
        if isinstance(events, (list, tuple)):
            return list(events), truncated, None
        return None, truncated, f"unrecognized events shape: {type(events).__name__}"
    return None, truncated, "unrecognized events shape: nested too deep"


def _parse_event(raw: Any, order: int) -> _Event | str | None:
    """One event, ``"unknown"`` for an event type we ignore, ``None`` if malformed."""
    kind: Any
    value: Any
    ts: Any = None
    if isinstance(raw, (list, tuple)):
        if len(raw) < 2:
            return None
        kind, value = raw[0], raw[1]
        if len(raw) >= 3:
            ts = raw[2]
    elif isinstance(raw, dict):
        kind = next((raw[k] for k in _TYPE_KEYS if k in raw), None)
        value = next((raw[k] for k in _VALUE_KEYS if k in raw), None)
        ts = next((raw[k] for k in _TS_KEYS if k in raw), None)
    else:
        return None
    if not isinstance(kind, str):
        return None
    k = _KNOWN.get(kind.strip().lower())
    if k is None:
        return "unknown"
    if not isinstance(value, str):
        return None
    return _Event(k, value, _to_epoch(ts), order)


# --- shingles -----------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


class _Doc:
    """Words of a text with a cached index ``k-gram -> start positions`` per ``k``."""

    __slots__ = ("words", "_index")

    def __init__(self, text: str) -> None:
        self.words = _words(text)
        self._index: dict[int, dict[tuple[str, ...], list[int]]] = {}

    def grams(self, k: int) -> dict[tuple[str, ...], list[int]]:
        idx = self._index.get(k)
        if idx is None:
            w = self.words
            idx = {}
            for i in range(len(w) - k + 1 if k > 0 else 0):
                idx.setdefault(tuple(w[i:i + k]), []).append(i)
            self._index[k] = idx
        return idx


def _paste_grams(words: list[str]) -> tuple[int, list[tuple[str, ...]]]:
    k = min(SHINGLE_WORDS, len(words))
    if k == 0:
        return 0, []
    return k, [tuple(words[i:i + k]) for i in range(len(words) - k + 1)]


def _typed_text(keys: Iterable[_Event]) -> str:
    buf: list[str] = []
    for e in keys:
        if e.value in _DELETES:
            if buf:
                buf.pop()
        else:
            ch = e.value if len(e.value) == 1 else _NAMED_CHARS.get(e.value)
            if ch is not None:
                buf.append(ch)
    return "".join(buf)


# --- compute_signals ----------------------------------------------------------------------
def _time_on_task(started_at: datetime | None, submitted_at: datetime | None,
                  event_ts: list[float]) -> float | None:
    if started_at is not None and submitted_at is not None:
        try:
            dt = (submitted_at - started_at).total_seconds()
        except TypeError:  # naive vs aware
            dt = -1.0
        if dt >= 0:
            return dt
    if len(event_ts) >= 2:
        return max(event_ts) - min(event_ts)
    return None


def source_overlap(text: str, source_text: str) -> float:
    """Share of ``text`` (characters of its words, 0..1) inside a word shingle of ``source_text``.

    Texts shorter than one shingle give 0: a few words in common are not a copy.
    """
    return _overlap(_Doc(text), _Doc(source_text))


def _overlap(final: _Doc, source: _Doc) -> float:
    w = final.words
    if len(w) < SHINGLE_WORDS:
        return 0.0
    grams = source.grams(SHINGLE_WORDS)
    covered = [False] * len(w)
    for g, starts in final.grams(SHINGLE_WORDS).items():  # cached: shared with paste provenance
        if g in grams:
            for start in starts:
                covered[start:start + SHINGLE_WORDS] = [True] * SHINGLE_WORDS
    weights = [len(x) + 1 for x in w]
    return min(1.0, sum(n for n, c in zip(weights, covered) if c) / sum(weights))


def compute_signals(text: str, events: Any, *, source_text: str | None = None,
                    started_at: datetime | None = None, submitted_at: datetime | None = None,
                    max_events: int = 20000) -> Signals:
    """Behavioural :class:`Signals` of ``text`` given its raw ``events``; never raises.

    With ``source_text``, ``source_overlap_share`` is set whether or not the events
    are usable (from the same word lists as the paste provenance when they are).
    """
    has_source = bool(source_text and source_text.strip())
    try:
        signals = _compute(text or "", events, source_text if has_source else None,
                           started_at, submitted_at, max_events)
    except Exception as exc:  # noqa: BLE001 - a bad log must never break scoring
        signals = Signals.unavailable(f"could not interpret events: {type(exc).__name__}",
                                      time_on_task_s=_time_on_task(started_at, submitted_at, []),
                                      source_available=has_source)
    if has_source and signals.source_overlap_share is None:
        try:
            overlap = source_overlap(text or "", source_text)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - never break scoring over a diagnostic
            overlap = None
        signals = replace(signals, source_overlap_share=overlap)
    return signals


def _compute(text: str, events: Any, source_text: str | None, started_at: datetime | None,
             submitted_at: datetime | None, max_events: int) -> Signals:
    has_source = source_text is not None
    raw, log_truncated, reason = _unwrap(events)
    tot_sub = _time_on_task(started_at, submitted_at, [])
    if raw is None:
        return Signals.unavailable(reason or "no events", time_on_task_s=tot_sub,
                                   source_available=has_source, log_truncated=log_truncated)
    if not raw:
        return Signals.unavailable("no events", time_on_task_s=tot_sub,
                                   source_available=has_source, log_truncated=log_truncated)
    events_truncated = len(raw) > max_events
    if events_truncated:
        raw = raw[:max_events]

    parsed: list[_Event] = []
    n_malformed = n_unknown = 0
    for i, item in enumerate(raw):
        ev = _parse_event(item, i)
        if isinstance(ev, _Event):
            parsed.append(ev)
        elif ev is None:
            n_malformed += 1
        else:
            n_unknown += 1
    diag = dict(events_truncated=events_truncated, log_truncated=log_truncated,
                n_malformed=n_malformed, n_unknown=n_unknown, n_events=len(raw))
    if not parsed:
        why = ("unrecognized event shape" if n_malformed else
               "no key, paste or copy events")
        return Signals.unavailable(why, time_on_task_s=tot_sub, source_available=has_source,
                                   **diag)

    # Order: by timestamp where present; events without one (MTurk copies) keep their
    # place after the last timestamped event before them. Count out-of-order entries.
    running = -math.inf
    n_ooo = 0
    for ev in parsed:
        if ev.ts is not None:
            if ev.ts < running:
                n_ooo += 1
            running = max(running, ev.ts)
            ev.sort_ts = ev.ts
        else:
            ev.sort_ts = running
    if n_ooo:
        parsed.sort(key=lambda e: (e.sort_ts, e.order))
    event_ts = [e.ts for e in parsed if e.ts is not None]

    # Keys: typed characters, deletes, shortcuts, active typing time.
    keys: list[_Event] = []
    chars_typed = n_deletes = n_shortcuts = 0
    armed_at: float | None = None
    armed = False
    prev_key_ts: float | None = None
    active_s = 0.0
    for ev in parsed:
        if ev.kind != "key":
            continue
        v = ev.value
        if ev.ts is not None and prev_key_ts is not None:
            active_s += min(max(ev.ts - prev_key_ts, 0.0), IDLE_GAP_S)
        if ev.ts is not None:
            prev_key_ts = ev.ts
        if v in _MODIFIERS:
            armed, armed_at = True, ev.ts
            continue
        if v == "Shift":
            continue
        if len(v) == 1:
            recent = armed and (armed_at is None or ev.ts is None
                                or ev.ts - armed_at <= SHORTCUT_GAP_S)
            armed = False
            if recent:
                n_shortcuts += 1
                continue
            if v.isprintable() or v in "\n\t":
                chars_typed += 1
                keys.append(ev)
            continue
        armed = False
        if v in _DELETES:
            n_deletes += 1
            keys.append(ev)
        elif v in _NAMED_CHARS:
            chars_typed += 1
            keys.append(ev)
    n_keys = sum(1 for e in parsed if e.kind == "key")
    speed = (chars_typed / (active_s / 60.0)
             if chars_typed >= MIN_CHARS_FOR_SPEED and active_s > 0 else None)

    final = _Doc(text)
    final_len = len(normalize(text))
    typed_share = min(1.0, chars_typed / final_len) if final_len else 0.0

    # Pastes: classify each shingle's origin (see module docstring).
    source = _Doc(source_text) if source_text is not None else None
    typed = _Doc(_typed_text(keys))
    page_docs: list[_Doc] = []          # copies seen so far, in order
    foreign_seen: dict[int, set[tuple[str, ...]]] = {}
    covered: dict[str, list[bool]] = {o: [False] * len(final.words) for o in _ORIGINS}
    n_pastes = pasted_chars = n_copies = copied_from_source = 0
    for ev in parsed:
        if ev.kind == "copy":
            n_copies += 1
            doc = _Doc(ev.value)
            page_docs.append(doc)
            if source is not None and doc.words:
                k, grams = _paste_grams(doc.words)
                src = source.grams(k)
                if sum(g in src for g in grams) * 2 >= len(grams):
                    copied_from_source += 1
            continue
        if ev.kind != "paste":
            continue
        n_pastes += 1
        pasted_chars += len(ev.value)
        k, grams = _paste_grams(_words(ev.value))
        if not grams:
            continue
        fin = final.grams(k)
        short = k < SHINGLE_WORDS
        for g in grams:
            if source is not None and g in source.grams(k):
                origin = "source"
            elif g in typed.grams(k):
                origin = "own"
            elif g not in foreign_seen.get(k, ()) and any(g in d.grams(k) for d in page_docs):
                origin = "page"
            else:
                origin = "foreign"
                foreign_seen.setdefault(k, set()).add(g)
            starts = fin.get(g)
            if starts:
                mask = covered[origin]
                for i in (starts[:1] if short else starts):
                    mask[i:i + k] = [True] * k

    weights = [len(w) + 1 for w in final.words]
    total_w = sum(weights) or 1
    any_paste = [any(covered[o][i] for o in _ORIGINS) for i in range(len(weights))]

    def share(mask: list[bool]) -> float:
        return min(1.0, sum(w for w, m in zip(weights, mask) if m) / total_w)

    not_foreign = [covered["source"][i] or covered["own"][i] or covered["page"][i]
                   for i in range(len(weights))]
    foreign_mask = [covered["foreign"][i] and not not_foreign[i] for i in range(len(weights))]
    src_mask = covered["source"]
    own_mask = [covered["own"][i] and not src_mask[i] for i in range(len(weights))]
    page_mask = [covered["page"][i] and not (src_mask[i] or covered["own"][i])
                 for i in range(len(weights))]
    foreign_share = share(foreign_mask)
    return Signals(
        events_available=True, source_available=has_source,
        time_on_task_s=_time_on_task(started_at, submitted_at, event_ts), answer_chars=final_len,
        n_keys=n_keys, chars_typed=chars_typed, n_deletes=n_deletes, n_shortcuts=n_shortcuts,
        typed_share=typed_share, typing_speed_cpm=speed,
        n_pastes=n_pastes, pasted_chars=pasted_chars, paste_share=share(any_paste),
        pasted_from_source_share=share(src_mask),
        pasted_from_source_chars=round(share(src_mask) * final_len),
        source_overlap_share=None if source is None else _overlap(final, source),
        pasted_from_page_share=share(page_mask),
        pasted_own_share=share(own_mask), foreign_paste_share=foreign_share,
        foreign_paste_chars=round(foreign_share * final_len),
        n_copies=n_copies, copied_from_source=copied_from_source,
        n_out_of_order=n_ooo, **diag,
    )



# --- fusion ---------------------------------------------------------------------------------
def _looks_abstained(v: Verdict) -> bool:
    # service.verdict.decide says "text score X not used" when it abstains on the text.
    return any(r.startswith("text score ") and r.endswith(" not used") for r in v.reasons)


def _rests_on_reply_formula(v: Verdict, judged: bool, thresholds: Any,
                            held_back: str | None) -> bool:
    # decide() gave llm for a reply formula, and the text score alone would not have
    # (for a panel, a member below the midpoint of its own thresholds is not saying llm)
    return (bool(v.reasons) and v.reasons[0].startswith(REPLY_FORMULA_REASON)
            and not (judged and held_back is None and v.p_llm is not None
                     and v.p_llm >= float(thresholds.llm)))


def fuse(text_verdict: Verdict, signals: Signals, thresholds: Any, *,
         abstained: bool | None = None, held_back: str | None = None) -> Verdict:
    """The verdict on text *and* behaviour (policy constants at the top of this module).

    ``thresholds`` has ``.llm`` and ``.human`` (a :class:`~service.detector.model_dir.Thresholds`);
    ``mid`` is their midpoint. ``abstained`` says the text model declined to judge the
    text (too short, not English); ``None`` infers it from ``decide``'s reasons.
    ``held_back`` says why a panel's member keeps the text score from counting as
    evidence (:func:`member_below_midpoint`: a member, veto members included but not
    text-only ones (``crowdguard panel --text-only-veto``), scores
    the text below the midpoint of its own thresholds); ``None`` when none does; it
    counts in the paste rule and the reply-formula rule below. Then:

    * large foreign paste (share >= FOREIGN_PASTE_MIN_SHARE and >= FOREIGN_PASTE_MIN_CHARS):
      ``uncertain`` becomes ``llm`` only when ``p_llm >= mid``, the text was judged and
      no member holds it back (for a panel, the all-agree rule at the lowered bar, so a
      veto member that keeps a text from ``llm`` keeps it there with a paste too);
      ``llm`` stays, with the paste as support; ``human`` stays ``human`` (behaviour alone
      never makes ``llm``), with a reason saying so;
    * typed from scratch (typed_share >= TYPED_MIN_SHARE, paste_share <= TYPED_MAX_PASTE_SHARE,
      speed within PLAUSIBLE_CPM): ``uncertain`` becomes ``human`` only when ``p_llm < mid``
      and the text was judged; an ``llm`` text verdict is kept, with the conflict stated,
      unless it rests on a chat assistant's reply formula alone (the text score below the
      ``llm`` threshold, or a member held back): a formula typed by hand is the worker's
      own words, so ``uncertain``;
    * a paste from the task material is stated, never used as evidence; when it makes up
      at least SOURCE_COPY_MIN_SHARE of the answer (and there is no large foreign paste),
      an ``llm`` text verdict becomes ``uncertain``: the text is the task's, not the worker's;
    * the same holds, with or without usable events, when at least SOURCE_REPEAT_MIN_SHARE
      of the answer repeats the task text word for word (``source_overlap_share``):
      retyped, or pasted where no log was kept. Without usable events this is the only
      rule applied.

    Every reason of ``text_verdict`` is kept; added reasons say what changed and why.
    """
    if not signals.events_available:
        return _lower_task_copy(text_verdict, signals, big_foreign=False)
    label = text_verdict.verdict
    p = text_verdict.p_llm
    reasons = list(text_verdict.reasons)
    if abstained is None:
        abstained = _looks_abstained(text_verdict)
    mid = (float(thresholds.human) + float(thresholds.llm)) / 2.0
    judged = p is not None and not abstained

    fshare = signals.foreign_paste_share or 0.0
    fchars = signals.foreign_paste_chars or 0
    big_foreign = fshare >= FOREIGN_PASTE_MIN_SHARE and fchars >= FOREIGN_PASTE_MIN_CHARS
    paste_txt = f"pasted {fchars} chars not from the task ({fshare:.0%} of answer)"

    if big_foreign:
        if label == "uncertain":
            if judged and p >= mid and held_back is not None:  # type: ignore[operator]
                reasons.append(f"{paste_txt}; text score {p:.2f} >= {mid:.2f}, but "
                               f"{held_back}: kept uncertain")
            elif judged and p >= mid:  # type: ignore[operator]
                label = "llm"
                reasons.append(f"{paste_txt}; with text score {p:.2f} >= {mid:.2f}: "
                               "uncertain -> llm")
            elif judged:
                reasons.append(f"{paste_txt}, but text score {p:.2f} < {mid:.2f}: "
                               "kept uncertain")
            else:
                reasons.append(f"{paste_txt}, but no usable text score: kept uncertain")
        elif label == "llm":
            reasons.append(paste_txt)
        else:
            reasons.append(f"large foreign paste ({paste_txt}), but text score says human")
    elif fchars >= MENTION_MIN_CHARS:
        reasons.append(f"{paste_txt}; too small to count as evidence")

    src_chars = signals.pasted_from_source_chars or 0
    src_share = signals.pasted_from_source_share or 0.0
    if src_chars >= MENTION_MIN_CHARS:
        reasons.append(f"pasted {src_chars} chars from the task text "
                       f"({src_share:.0%} of answer); not evidence of LLM use")
    lowered = _lower_task_copy(Verdict(label, p, tuple(reasons)), signals,
                               big_foreign=big_foreign)
    label, reasons = lowered.verdict, list(lowered.reasons)

    typed_share = signals.typed_share or 0.0
    speed = signals.typing_speed_cpm
    paste_share = signals.paste_share or 0.0
    lo, hi = PLAUSIBLE_CPM
    typed_most = typed_share >= TYPED_MIN_SHARE and paste_share <= TYPED_MAX_PASTE_SHARE
    if typed_most and not big_foreign:
        if speed is not None and lo <= speed <= hi:
            typed_txt = f"typed {typed_share:.0%} of the answer at {speed:.0f} chars/min"
            if label == "uncertain":
                if judged and p < mid:  # type: ignore[operator]
                    label = "human"
                    reasons.append(f"{typed_txt}; with text score {p:.2f} < {mid:.2f}: "
                                   "uncertain -> human")
                elif judged:
                    reasons.append(f"{typed_txt}, but text score {p:.2f} >= {mid:.2f}: "
                                   "kept uncertain")
                else:
                    reasons.append(f"{typed_txt}, but no usable text score: kept uncertain")
            elif label == "llm" and _rests_on_reply_formula(text_verdict, judged, thresholds,
                                                               held_back):
                label = "uncertain"
                reasons.append(f"{typed_txt}: the reply formula was typed, not pasted, and "
                               "the text score alone does not say llm: llm -> uncertain")
            elif label == "llm":
                reasons.append(f"{typed_txt}, but text score says llm")
            else:
                reasons.append(typed_txt)
        elif speed is not None and speed > hi:
            reasons.append(f"typing speed {speed:.0f} chars/min is implausibly fast "
                           "(auto-typer?); not counted as typing")
    return Verdict(label, p, tuple(reasons))


def judge(text: str, score: TextScore | None, info: ModelInfo, signals: Signals | None, *,
          familiarity: bool = True) -> Verdict:
    """The served verdict: :func:`~service.verdict.decide` on the text, then :func:`fuse`
    with ``signals`` where there are any. The stream and ``crowdguard score`` both call this."""
    verdict = decide(text, score, info, familiarity=familiarity)
    if signals is None:
        return verdict
    return fuse(verdict, signals, info.thresholds, held_back=member_below_midpoint(score, info))


def member_below_midpoint(score: TextScore | None, info: ModelInfo) -> str | None:
    """For a panel: the first member (veto members too, but not text-only ones) whose
    score of the text is below the midpoint of its own thresholds, said in words;
    ``None`` for a single model or when every such member is at or above it.

    :func:`fuse` lets a large foreign paste lower the bar of ``llm`` from the ``llm``
    threshold to that midpoint; a panel's rule is that every member must clear the bar,
    so a member below it holds the verdict at ``uncertain``.
    """
    if score is None or not info.members or not score.members:
        return None
    for member_score, member in zip(score.members, info.members, strict=True):
        if member.member_name in info.text_only_veto:
            continue
        mid = (float(member.thresholds.human) + float(member.thresholds.llm)) / 2.0
        if member_score.p_llm < mid:
            veto = veto_tag(member.member_name, info.veto)
            return (f"model {member.member_name}{veto} scores {member_score.p_llm:.2f} < "
                    f"{mid:.2f}, the midpoint of its thresholds")
    return None


def _lower_task_copy(v: Verdict, signals: Signals, *, big_foreign: bool) -> Verdict:
    """``llm`` -> ``uncertain`` when the answer is mostly the task's own text (see ``fuse``)."""
    if v.verdict != "llm" or big_foreign:
        return v
    pasted = signals.pasted_from_source_share or 0.0
    repeated = signals.source_overlap_share or 0.0
    if pasted >= SOURCE_COPY_MIN_SHARE:
        why = f"{pasted:.0%} of the answer is pasted from the task text"
    elif repeated >= SOURCE_REPEAT_MIN_SHARE:
        why = f"{repeated:.0%} of the answer repeats the task text word for word"
    else:
        return v
    return Verdict("uncertain", v.p_llm, (*v.reasons, f"{why}, so the text score rates the "
                                          "task's authors, not the worker: llm -> uncertain"))


# --- replay helpers ---------------------------------------------------------------------------
def parse_mturk_answer(answer_json: str) -> tuple[str, Any]:
    """``(summary, events)`` from an MTurk ``Answer.taskAnswers`` cell.

    The cell is a JSON list holding one object with ``summary`` and
    ``log_of_what_they_did`` (a JSON string of the event list). ``events`` is the
    decoded list, or the raw string when it does not decode (``compute_signals``
    then salvages what it can), or ``None`` when absent. Raises
    :class:`~service.errors.InputError` when the cell itself is unusable.
    """
    try:
        obj = orjson.loads(answer_json)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise InputError("Answer.taskAnswers is not JSON", source="mturk",
                         reason="not_json") from exc
    if isinstance(obj, list):
        obj = next((o for o in obj if isinstance(o, dict)), None)
    if not isinstance(obj, dict):
        raise InputError("Answer.taskAnswers holds no answer object", source="mturk",
                         reason="not_object")
    summary = obj.get("summary")
    if not isinstance(summary, str):
        raise InputError("Answer.taskAnswers has no 'summary' string", source="mturk",
                         reason="missing_field")
    log = obj.get("log_of_what_they_did")
    return summary, (parse_prolific_log(log) if isinstance(log, str) else log)


def parse_prolific_log(value: str) -> Any:
    """Events from a ``log_of_what_they_did`` CSV cell (a JSON string of the event list).

    Empty / ``NaN`` cells give ``None``; a cell whose quotes are still CSV-doubled
    (``[[""key"",...``) is unescaped; a cell that does not decode is returned as the
    string, so :func:`compute_signals` can salvage a truncated log and say so.
    """
    if value is None:
        return None
    s = value.strip()
    if not s or s.lower() in ("nan", "na", "null", "none"):
        return None
    if s.startswith('"') and s.endswith('"') and len(s) >= 2 and s[1:2] == "[":
        s = s[1:-1]
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        pass
    if '""' in s and s.startswith("["):
        try:
            return orjson.loads(s.replace('""', '"'))
        except orjson.JSONDecodeError:
            pass
    return s
