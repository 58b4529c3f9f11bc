"""Validated PII detectors: each candidate is checked against the rules of its kind, not
only its shape.

- phone numbers: Google's libphonenumber (`phonenumbers`), valid for one of
  `PHONE_REGIONS` or written with a `+` country code; a bare digit run (no `+`, no
  separators) counts only after a phone word ("call", "phone", "mobile", ...);
- card numbers: a known brand's prefix and length, and the Luhn checksum;
- IBANs: the country's registered length and the ISO 13616 mod-97 checksum;
- US SSNs: area not 000, 666 or 9xx, group not 00, serial not 0000; written 3-2-4 with
  dashes or spaces, or as nine digits after "SSN"/"social security";
- emails: local@domain.tld.

No number counts when it is part of something else: a carrier tracking number (UPS
`1Z...`, or after "tracking", "FedEx", "USPS", ...), a date, a time, an IP address, or a
number named as an order, invoice, reference, account or other id just before it. The
labelled set in benchmarks/data/pii_labelled.jsonl measures this (benchmarks/bench_pii.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "IN", "BR")

CARD = "pii.card_number"
SSN = "pii.ssn"
IBAN = "pii.iban"
EMAIL = "pii.email"
PHONE = "pii.phone"
KINDS: frozenset[str] = frozenset({CARD, SSN, IBAN, EMAIL, PHONE})


@dataclass(frozen=True, slots=True)
class PiiMatch:
    kind: str
    start: int
    end: int
    canonical: str  # digits of a card or SSN, IBAN without spaces, E.164 phone, email


# -- things that are not PII, though they are made of digits -------------------------------

_NOT_PII = re.compile(
    r"(?<![A-Za-z0-9])1Z ?[0-9A-Z]{3} ?[0-9A-Z]{3} ?[0-9A-Z]{2} ?[0-9A-Z]{4} ?[0-9A-Z]{4}"
    r"(?![A-Za-z0-9])"  # UPS tracking, 1Z999AA10123456784 or 1Z 999 AA1 01 2345 6784
    r"|(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"  # IPv4
    r"|(?<!\d)\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)"  # 2024-05-26
    r"|(?<!\d)\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}(?!\d)"  # 26.05.2024, 05/26/24
    r"|(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)"  # 14:30, 14:30:05
    r"|(?<![\d.,])\d+(?:,\d{3})*\.\d+(?![\d.])",  # an amount: 1234567.89, 1,234.5
)
# A word naming a non-personal number, right before it ("tracking no. 1234...",
# "invoice #...", "order: ..."), in English and the languages of PHONE_REGIONS.
_NAMED_ID = re.compile(
    r"(?i)\b(?:tracking|track|trk|waybill|awb|shipment|parcel|consignment|ups|usps|fedex|dhl"
    r"|order|invoice|inv|receipt|ref|reference|confirmation|booking|reservation|ticket|case"
    r"|claim|po|serial|part|sku|isbn|ean|upc|gtin|imei|account|acct|routing|transaction|txn"
    r"|id|vat|tax|cpf|cnpj|siret|siren|nif|rechnung|bestellung|sendung|sendungsnummer"
    r"|auftrag|kundennummer|facture|commande|suivi|colis|pedido|fatura|nota|rastreio)"
    r"(?:\s*(?:number|no\.?|nr\.?|num|#|id|code))?\s*(?:is|was|:|=)?\s*[#:]?\s*$"
)
# A phone word within a few words before a bare digit run.
_PHONE_WORD = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|cellphone|call|text|sms|whatsapp|fax|ring"
    r"|reach|contact|dial|number|handy|telefon|telefone|t[ée]l[ée]phone|portable|celular)"
    r"\b[^\n\d]{0,20}$"
)
_SSN_WORD = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?|soc\.? sec\.?)\b\W{0,5}$")


def _context(text: str, start: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    return text[max(line_start, start - 40) : start]


def _named_id(text: str, start: int) -> bool:
    return _NAMED_ID.search(_context(text, start)) is not None


# -- validators --------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for index, char in enumerate(digits):
        n = int(char)
        if index % 2 == parity:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


# (prefix pattern, allowed lengths): Visa, Mastercard, Amex, Discover, JCB, Diners, JCB's
# older 30xx-33xx ranges, UnionPay, Maestro.
_BRANDS = (
    (re.compile(r"4"), (13, 16, 19)),
    (re.compile(r"5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720"), (16,)),
    (re.compile(r"3[47]"), (15,)),
    (re.compile(r"6011|64[4-9]|65"), (16, 17, 18, 19)),
    (re.compile(r"35(?:2[89]|[3-8]\d)"), (16, 17, 18, 19)),
    (re.compile(r"3(?:0[0-59]|[689])"), (14, 15, 16, 17, 18, 19)),
    (re.compile(r"30(?:8[89]|9[0-46-9])|310[0-2]|311[2-9]|3120|315[89]|33[3-4]\d"), (16,)),
    (re.compile(r"62"), (16, 17, 18, 19)),
    (re.compile(r"5[06-9]|6[37]"), (16, 17, 18, 19)),  # Maestro (12-15 digits: too rare)
)


def card_ok(digits: str) -> bool:
    brand = any(p.match(digits) and len(digits) in lengths for p, lengths in _BRANDS)
    return brand and luhn_ok(digits)


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(compact: str) -> bool:
    """ISO 13616: the country's length, then mod 97 of the rearranged number is 1."""
    compact = compact.upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def ssn_ok(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        len(digits) == 9
        and area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
    )


# -- detectors ---------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})\d{2}")
_DIGIT_GROUPS = re.compile(r"(?<![\w.-])\d+(?:[ -]\d+)*(?![\w-])")
_SSN = re.compile(r"(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-])")
_SSN_BARE = re.compile(r"(?<![\w-])\d{9}(?![\w-])")
_BARE = re.compile(r"\+?\d+")


def _emails(text: str) -> list[PiiMatch]:
    if "@" not in text:
        return []
    return [PiiMatch(EMAIL, m.start(), m.end(), m.group(0).lower()) for m in _EMAIL.finditer(text)]


def _ibans(text: str) -> tuple[list[PiiMatch], list[tuple[int, int]]]:
    """Valid IBANs, and the spans of IBAN-shaped text that fails the checksum (which is
    no phone number either)."""
    found, shaped = [], []
    for m in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        chars: list[str] = []
        end = m.start()
        while end < len(text) and len(chars) < length:
            char = text[end]
            if char.isascii() and char.isalnum():
                chars.append(char)
            elif not (char == " " and end + 1 < len(text) and text[end + 1].isalnum()):
                break
            end += 1
        compact = "".join(chars).upper()
        boundary = end == len(text) or not text[end].isalnum()
        if boundary and iban_ok(compact):
            found.append(PiiMatch(IBAN, m.start(), end, compact))
        elif boundary and len(compact) == length:
            shaped.append((m.start(), end))
    return found, shaped


def _cards(text: str) -> list[PiiMatch]:
    found = []
    for m in _DIGIT_GROUPS.finditer(text):
        groups = list(re.finditer(r"\d+", m.group(0)))
        # the whole run first, then without trailing groups: "4111 1111 1111 1111 2024"
        best: PiiMatch | None = None
        for size in range(len(groups), 0, -1):
            digits = "".join(g.group(0) for g in groups[:size])
            if 12 <= len(digits) <= 19 and card_ok(digits):
                end = m.start() + groups[size - 1].end()
                best = PiiMatch(CARD, m.start(), end, digits)
                break
        if best is not None and not _named_id(text, best.start):
            found.append(best)
    return found


def _ssns(text: str) -> list[PiiMatch]:
    found = []
    for m in _SSN.finditer(text):
        digits = m.group(1) + m.group(3) + m.group(4)
        if ssn_ok(digits) and not _named_id(text, m.start()):
            found.append(PiiMatch(SSN, m.start(), m.end(), digits))
    for m in _SSN_BARE.finditer(text):
        if ssn_ok(m.group(0)) and _SSN_WORD.search(_context(text, m.start())):
            found.append(PiiMatch(SSN, m.start(), m.end(), m.group(0)))
    return found


# Where a phone number may be: a run of digits and separators, not inside a word. Only
# these windows go to libphonenumber's matcher (it is pure Python: a long text with a few
# numbers is read in microseconds, not by six matchers over every character).
_PHONE_WINDOW = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]*\d\)?(?!\w)")
_SEVEN = re.compile(r"\d(?:\D*\d){6}")


def _phones(
    text: str, regions: tuple[str, ...], free: Callable[[int, int], bool]
) -> list[PiiMatch]:
    found: dict[tuple[int, int], PiiMatch] = {}
    for window in _PHONE_WINDOW.finditer(text):
        chunk = window.group(0)
        if not _SEVEN.search(chunk) or not free(*window.span()) or _named_id(text, window.start()):
            continue
        for region in regions:
            covered = 0
            for m in phonenumbers.PhoneNumberMatcher(chunk, region):
                raw = m.raw_string.strip()
                start = window.start() + m.start + m.raw_string.index(raw)
                end = start + len(raw)
                covered += len(raw)
                if (start, end) in found:
                    continue
                bare = _BARE.fullmatch(raw) is not None and not raw.startswith("+")
                if bare and not _PHONE_WORD.search(_context(text, start)):
                    continue
                if _named_id(text, start):
                    continue
                e164 = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
                found[(start, end)] = PiiMatch(PHONE, start, end, e164)
            if covered == len(chunk):  # the window is read whole: other regions add nothing
                break
    return list(found.values())


_MAY_HOLD_NUMBER = re.compile(r"\d{2}")


def find_pii(
    text: str, kinds: frozenset[str] = KINDS, regions: tuple[str, ...] = PHONE_REGIONS
) -> list[PiiMatch]:
    """The PII in text, validated, in order, without overlaps. Earlier detectors claim
    their span first: emails, then IBANs, cards, SSNs, phone numbers."""
    claimed: list[tuple[int, int]] = []
    out: list[PiiMatch] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in claimed)

    def take(matches: list[PiiMatch]) -> None:
        for match in matches:
            if free(match.start, match.end):
                claimed.append((match.start, match.end))
                if match.kind in kinds:
                    out.append(match)

    take(_emails(text))
    if _MAY_HOLD_NUMBER.search(text):
        ibans, iban_shaped = _ibans(text)
        take(ibans)
        claimed.extend(iban_shaped)
        claimed.extend(m.span() for m in _NOT_PII.finditer(text))
        take(_cards(text))
        take(_ssns(text))
        if PHONE in kinds:
            take(_phones(text, regions, free))
    return sorted(out, key=lambda m: m.start)


@lru_cache(maxsize=512)
def find_pii_cached(text: str) -> tuple[PiiMatch, ...]:
    """find_pii with every kind, for texts read again and again (a run's messages)."""
    return tuple(find_pii(text))
