"""The 15 Oculus/Meta visemes, their mouth-shape targets, and phone → viseme maps (espeak IPA and CMU/ARPAbet).

The maps label the aligners' phones for training; the target table gives each viseme's jaw/lip shape so the
renderer (and the training targets) can turn a viseme stream into continuous mouth controls.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")
VISEME_INDEX: dict[str, int] = {name: i for i, name in enumerate(VISEMES)}
SIL = 0
PP = VISEME_INDEX["PP"]


@dataclass(frozen=True, slots=True)
class MouthShape:
    """Continuous mouth controls of one viseme (the same ranges as ``MouthFrame``)."""

    jaw_open: float  # [0, 1]
    lip_width: float  # [-1, 1]
    lip_round: float  # [0, 1]
    lip_close: float  # [0, 1]


# Hand-set targets per viseme: (jaw_open, lip_width, lip_round, lip_close).
VISEME_SHAPES: tuple[MouthShape, ...] = (
    MouthShape(0.00, 0.0, 0.0, 0.0),  # sil: rest
    MouthShape(0.00, 0.0, 0.0, 1.0),  # PP: p b m, lips pressed
    MouthShape(0.10, 0.1, 0.0, 0.3),  # FF: f v, lower lip to teeth
    MouthShape(0.20, 0.1, 0.0, 0.0),  # TH
    MouthShape(0.25, 0.1, 0.0, 0.0),  # DD: t d
    MouthShape(0.30, 0.0, 0.0, 0.0),  # kk: k g h
    MouthShape(0.20, -0.3, 0.5, 0.0),  # CH: sh ch j zh, lips forward
    MouthShape(0.15, 0.3, 0.0, 0.0),  # SS: s z
    MouthShape(0.20, 0.1, 0.0, 0.0),  # nn: n l
    MouthShape(0.25, -0.3, 0.4, 0.0),  # RR
    MouthShape(1.00, 0.2, 0.0, 0.0),  # aa: widest open
    MouthShape(0.55, 0.6, 0.0, 0.0),  # E
    MouthShape(0.30, 0.9, 0.0, 0.0),  # I: spread
    MouthShape(0.60, -0.6, 0.8, 0.0),  # O
    MouthShape(0.25, -0.9, 1.0, 0.0),  # U: pursed
)

# Coarse groups for a forgiving accuracy figure: rest, closed lips, lip-teeth, tongue consonants, open, spread, round.
COARSE_GROUPS: tuple[str, ...] = ("rest", "closed", "labiodental", "tongue", "open", "spread", "round")
COARSE_OF_VISEME: tuple[int, ...] = (0, 1, 2, 3, 3, 3, 6, 3, 3, 6, 4, 5, 5, 6, 6)

# CMU / pocketsphinx en-us phones (stress digits removed).
ARPABET_TO_VISEME: dict[str, str] = {
    "AA": "aa", "AE": "aa", "AH": "aa", "AO": "O", "AW": "aa", "AY": "aa", "EH": "E", "ER": "RR", "EY": "E",
    "IH": "I", "IY": "I", "OW": "O", "OY": "O", "UH": "U", "UW": "U",
    "B": "PP", "P": "PP", "M": "PP", "F": "FF", "V": "FF", "TH": "TH", "DH": "TH", "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "NG": "kk", "HH": "kk", "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS", "N": "nn", "L": "nn", "R": "RR", "W": "U", "Y": "I", "SIL": "sil",
}  # fmt: skip

# espeak-ng IPA phoneme names: classified by their first base letter (after stress/length marks and diacritics).
_IPA_FIRST: dict[str, str] = {}
for _viseme, _letters in (
    ("PP", "pbmɱʙ"),
    ("FF", "fvʋɸβ"),
    ("TH", "θð"),
    ("DD", "tdʈɖ"),
    ("kk", "kgŋxɣqɢχhɦcɟħʕ"),
    ("CH", "ʃʒʂʐɕʑ"),
    ("SS", "szç"),
    ("nn", "nɲɳlɫʎɭɬɮ"),
    ("RR", "rɹɻʀʁɾɽ"),
    ("aa", "aɑæɐʌɶä"),
    ("E", "eɛəɜɚɝɘ"),
    ("I", "iɪɨjʝ"),
    ("O", "oɔɒøœɵɞ"),
    ("U", "uʊɯɤyʏwʍɥ"),
):
    for _ch in _letters:
        _IPA_FIRST[_ch] = _viseme
_IPA_SKIP = set("ˈˌːˑ'`,_-.^;!*#|0123456789") | {"ʰ", "ʲ", "ʷ", "ˠ", "ˤ", "ʼ"}


def ipa_to_viseme(phoneme: str) -> str | None:
    """espeak-ng IPA phoneme (e.g. ``"ˈaʊ"``, ``"tʃ"``) → viseme name; ``""`` is a pause (``sil``); None if unknown."""
    text = unicodedata.normalize("NFD", phoneme)
    letters = [c for c in text if c not in _IPA_SKIP and not unicodedata.combining(c) and not c.isspace()]
    if not letters:
        return "sil"
    if letters[0] in "td" and len(letters) > 1 and letters[1] in "ʃʒɕʑʂʐ":
        return "CH"  # affricates tʃ dʒ
    if letters[0] in "td" and len(letters) > 1 and letters[1] in "sz":
        return "SS"  # ts dz
    return _IPA_FIRST.get(letters[0])


def arpabet_to_viseme(phone: str) -> str:
    """CMU phone (``"AE1"``, ``"SIL"``, ``"+NSN+"``) → viseme name; noise and fillers are ``sil``."""
    return ARPABET_TO_VISEME.get(phone.rstrip("012").upper(), "sil")
