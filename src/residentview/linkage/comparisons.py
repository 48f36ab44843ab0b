"""One comparison builder per field type, chosen from the fields the records carry.

Each builder returns a Splink comparison (a dict of levels, most specific first). A field only one
side of a pair has falls into the null level, which is neutral (Bayes factor 1).

Location is one comparison — UPRN, address and postcode together — so that living at the same
address is counted once, not once for the address and again for the postcode. Its exact levels
are term-frequency adjusted: agreeing on a care home's or a hostel's address (shared by many
unrelated people) is weak evidence, agreeing on a family home's is strong.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import pandas as pd

Comparison = dict

# A field is compared when at least this share of some source's records carry it.
MIN_FIELD_COVERAGE = 0.01


def _level(sql: str, label: str, tf: Optional[str] = None, null: bool = False) -> dict:
    level = {"sql_condition": sql, "label_for_charts": label}
    if null:
        level["is_null_level"] = True
    if tf:
        level["tf_adjustment_column"] = tf
        level["tf_adjustment_weight"] = 1.0
    return level


def _comparison(column: str, description: str, levels: list[dict]) -> Comparison:
    return {"output_column_name": column, "comparison_description": description, "comparison_levels": levels}


def _else() -> dict:
    return _level("ELSE", "All other comparisons")


def _either_null(col: str) -> str:
    return f'"{col}_l" IS NULL OR "{col}_r" IS NULL'


def first_name_comparison(columns: set[str]) -> Comparison:
    """First name. Levels: exact (tf) / names swapped with surname (both
    exactly, or one loosely) / nickname-equivalent /
    middle name used as first name / initial agrees / initial of a name it may be short for /
    initial of a middle name / Jaro-Winkler ≥ 0.92 / one letter wrong / ≥ 0.80 / sounds alike /
    other."""
    levels = [
        _level(_either_null("first_name_key"), "Null", null=True),
        _level('"first_name_key_l" = "first_name_key_r"', "Exact match", tf="first_name_key"),
    ]
    if "last_name_key" in columns:
        levels += _swapped_names_levels()
    if "first_name_aliases" in columns:
        levels.append(
            _level('list_has_any("first_name_aliases_l", "first_name_aliases_r")', "Nickname of the same name")
        )
    if "middle_names_key" in columns:
        levels.append(
            _level(
                f"{_first_is_a_middle_name('l', 'r')} OR {_first_is_a_middle_name('r', 'l')}",
                "Middle name used as first name",
            )
        )
    initial = ('(length("first_name_key_l") = 1 OR length("first_name_key_r") = 1) AND '
               'left("first_name_key_l", 1) = left("first_name_key_r", 1)')
    levels.append(_level(initial, "Initial agrees"))
    if "first_name_alias_initials" in columns:
        # 'E SMITH' for BETH SMITH: the initial of a name the forename may be short for. A level
        # of its own, weaker than a plain initial: LINDA may be short for BELINDA, CELINDA or
        # MELINDA, so 'MRS C SMITH' at LINDA SMITH's home is more likely CLAIRE SMITH.
        levels.append(_level(
            '(length("first_name_key_l") = 1 AND contains("first_name_alias_initials_r", "first_name_key_l")) OR '
            '(length("first_name_key_r") = 1 AND contains("first_name_alias_initials_l", "first_name_key_r"))',
            "Initial of a name it may be short for",
        ))
    if "middle_names_key" in columns:
        # 'J SMITH' for PAUL JAMES SMITH. Its own level, after the initial of the first name:
        # a council-tax initial meets some middle name of one in ten people by chance, so
        # folded into the level above it had made a middle name used as a first name (and
        # 'J SMITH' for JOHN JAMES SMITH) count for nothing.
        levels.append(_level(
            f"{_middle_initial_is_first('l', 'r')} OR {_middle_initial_is_first('r', 'l')}",
            "Initial of a middle name",
        ))
    levels += [
        _level('jaro_winkler_similarity("first_name_key_l", "first_name_key_r") >= 0.92', "Jaro-Winkler >= 0.92"),
        _one_typo_level("first_name_key"),
        _level('jaro_winkler_similarity("first_name_key_l", "first_name_key_r") >= 0.8', "Jaro-Winkler >= 0.8"),
    ]
    if "first_name_phonetic" in columns:
        levels.append(_sounds_alike_level("first_name"))
    levels += _damaged_levels("first_name_key")
    levels.append(_else())
    return _comparison("first_name", "First name", levels)


def _damaged_levels(column: str) -> list[dict]:
    """Heavy but recognisable damage, after every level that reads a name as a name: two slips
    (WILLYIAMS, WILIAMSS), a name cut short (MA for MATTHEWS), or letters mostly shared in
    order (Jaro-Winkler from 0.7). Their weights are learnt by EM like every other level: on
    clean data few true pairs land here and the levels count for little."""
    l, r = f'"{column}_l"', f'"{column}_r"'
    alike = f"jaro_winkler_similarity({l}, {r}) >= 0.7"
    return [
        # (Two slips that leave the names less alike than 0.7 are 'all other': the cheap test
        # first, as for one slip.)
        _level(f"{alike} AND abs(length({l}) - length({r})) <= 2 AND least(length({l}), length({r})) >= 4 "
               f"AND damerau_levenshtein({l}, {r}) <= 2", "Two letters wrong"),
        _level(f"least(length({l}), length({r})) >= 2 AND (starts_with({l}, {r}) OR starts_with({r}, {l}))",
               "One cut short of the other"),
        _level(alike, "Jaro-Winkler >= 0.7"),
    ]


def _sounds_alike_level(name: str) -> dict:
    # CATHERINE and KATHRYN, MCKAY and MACKIE: spelt as heard, one Metaphone code
    # (standardise.names.phonetic_key), where Jaro-Winkler puts them below 0.8. After the
    # Jaro-Winkler levels, so that names they already place keep their level.
    # A one-letter code tells little (LEE, LOWE and LAW are all 'L').
    return _level(
        f'"{name}_phonetic_l" = "{name}_phonetic_r" AND length("{name}_phonetic_l") >= 2',
        "Sounds alike (Metaphone)",
    )


def _one_typo_level(column: str) -> dict:
    # PAULA and POULA, RIBERT and ROBERT: one letter wrong, or two swapped, which Jaro-Winkler
    # scores below 0.92 when the slip comes early in a short name. One slip in a name of four
    # letters or more never takes Jaro-Winkler below 0.83, so the cheap test goes first and the
    # edit distance is computed for the few pairs that pass it: loose blocking puts millions of
    # unlike names side by side.
    return _level(
        f'jaro_winkler_similarity("{column}_l", "{column}_r") >= 0.8 AND '
        f'abs(length("{column}_l") - length("{column}_r")) <= 1 AND '
        f'least(length("{column}_l"), length("{column}_r")) >= 4 AND '
        f'damerau_levenshtein("{column}_l", "{column}_r") <= 1',
        "One letter wrong or two transposed",
    )


def _first_is_a_middle_name(a: str, b: str) -> str:
    """SQL: side a's first name (a whole name) is one of side b's middle names."""
    return (
        f"(length(\"first_name_key_{a}\") > 1 AND "
        f"list_contains(string_split(\"middle_names_key_{b}\", ' '), \"first_name_key_{a}\"))"
    )


def _middle_initial_is_first(a: str, b: str) -> str:
    """SQL: side a's first name is an initial, that of one of side b's middle names."""
    return (
        f"(length(\"first_name_key_{a}\") = 1 AND "
        f"contains(' ' || \"middle_names_key_{b}\", ' ' || \"first_name_key_{a}\"))"
    )


SWAPPED = '"first_name_key_l" = "last_name_key_r" AND "last_name_key_l" = "first_name_key_r"'


def _loosely(a: str, b: str) -> str:
    """SQL: two name keys that may be one name: mistyped, shortened ('MO' for MOHAMMED) or an initial."""
    return (f'(jaro_winkler_similarity("{a}", "{b}") >= 0.88 OR starts_with("{a}", "{b}") '
            f'OR starts_with("{b}", "{a}"))')


# 'T MARK' for MARK THORNTON, 'RASHID MO' for MOHAMMED RASHID: forename and surname swapped, one
# of them exactly, the other mistyped, shortened or an initial. (Not when the surnames agree:
# 'A ALI' and ALI ALI are an initial and a surname.)
PARTLY_SWAPPED = (
    '"last_name_key_l" <> "last_name_key_r" AND ('
    f'("last_name_key_l" = "first_name_key_r" AND {_loosely("first_name_key_l", "last_name_key_r")}) OR '
    f'("first_name_key_l" = "last_name_key_r" AND {_loosely("last_name_key_l", "first_name_key_r")}))'
)


def _swapped_names_levels() -> list[dict]:
    # Term-frequency adjusted: FATIMA BEGUM written BEGUM FATIMA is common and weak evidence;
    # a rare name swapped is strong evidence.
    return [
        _level(SWAPPED, "Forename and surname swapped", tf="first_name_key"),
        _level(PARTLY_SWAPPED, "Forename and surname swapped, one of them loosely"),
    ]


def last_name_comparison(columns: set[str]) -> Comparison:
    """Surname. Levels: exact (tf) / matches a previous surname /
    one part of a double-barrelled name / Jaro-Winkler ≥ 0.92 / one letter wrong / ≥ 0.80 /
    another surname on a woman's record / sounds alike / other."""
    null = _either_null("last_name_key")
    if "first_name_key" in columns:
        # A swapped pair is scored once, by the first-name comparison; here it is neutral.
        null = f"{null} OR ({SWAPPED}) OR ({PARTLY_SWAPPED})"
    levels = [
        _level(null, "Null (or names swapped, scored under first name)", null=True),
        _level('"last_name_key_l" = "last_name_key_r"', "Exact match", tf="last_name_key"),
    ]
    if "previous_last_name_key" in columns:
        levels.append(
            _level(
                '"last_name_key_l" = "previous_last_name_key_r" OR "previous_last_name_key_l" = "last_name_key_r"',
                "Matches a previous surname",
            )
        )
    if "last_name_parts" in columns:
        levels.append(
            _level(
                '(length("last_name_key_l") >= 3 AND length("last_name_key_r") >= 3) AND '
                '(contains("last_name_parts_l", \' \' || "last_name_key_r" || \' \') OR '
                'contains("last_name_parts_r", \' \' || "last_name_key_l" || \' \'))',
                "Part of a double-barrelled surname",
            )
        )
    levels += [
        _level('jaro_winkler_similarity("last_name_key_l", "last_name_key_r") >= 0.92', "Jaro-Winkler >= 0.92"),
        _one_typo_level("last_name_key"),
        _level('jaro_winkler_similarity("last_name_key_l", "last_name_key_r") >= 0.8', "Jaro-Winkler >= 0.8"),
    ]
    sex = "surname_sex" if "surname_sex" in columns else "sex" if "sex" in columns else None
    if sex:
        # Surnames change on marriage and divorce, and mostly women's: another surname on a
        # woman's record is weaker evidence against than on a man's. (Sex from either record,
        # the other saying nothing or the same; stated, by title, or by a first name the
        # records say is a woman's.)
        levels.append(_level(
            f"coalesce(\"{sex}_l\", \"{sex}_r\") = 'F' AND coalesce(\"{sex}_l\", 'F') = 'F' "
            f"AND coalesce(\"{sex}_r\", 'F') = 'F'",
            "Another surname, on a woman's record",
        ))
    if "last_name_phonetic" in columns:
        # After the woman's level: on a woman's record a surname that only sounds like the other
        # is another surname, and must not count for less than one that is wholly different.
        levels.append(_sounds_alike_level("last_name"))
    levels += _damaged_levels("last_name_key")
    levels.append(_else())
    return _comparison("last_name", "Surname", levels)


def middle_names_comparison() -> Comparison:
    """Middle names. Levels: exact / first middle initial agrees / other."""
    return _comparison("middle_names", "Middle names", [
            _level(_either_null("middle_names_key"), "Null", null=True),
            _level('"middle_names_key_l" = "middle_names_key_r"', "Exact match"),
            _level('left("middle_names_key_l", 1) = left("middle_names_key_r", 1)', "Initial agrees"),
            _else(),
        ],
    )


def date_of_birth_comparison() -> Comparison:
    """Date of birth. Levels: exact / day and month swapped / one digit wrong or two transposed /
    same month and year / within a year / other."""
    return _comparison("date_of_birth", "Date of birth", [
            _level(_either_null("dob"), "Null", null=True),
            _level('"dob_l" = "dob_r"', "Exact match"),
            _level(
                'year("dob_l") = year("dob_r") AND month("dob_l") = day("dob_r") AND day("dob_l") = month("dob_r")',
                "Day and month swapped",
            ),
            _level('damerau_levenshtein(strftime("dob_l", \'%Y%m%d\'), strftime("dob_r", \'%Y%m%d\')) <= 1',
                   "One digit wrong"),
            _level('year("dob_l") = year("dob_r") AND month("dob_l") = month("dob_r")', "Same month and year"),
            _level('abs(date_diff(\'day\', "dob_l", "dob_r")) <= 365', "Within a year"),
            _else(),
        ],
    )


# address_tokens holds each address's distinct words (linkage.frame), so the set arithmetic
# needs no per-pair list_distinct or list_concat: it runs for millions of pairs.
_TOKENS_SHARED = 'len(list_intersect("address_tokens_l", "address_tokens_r"))'
# Share of distinct address words two addresses have in common (Jaccard on word sets).
_TOKEN_JACCARD = (
    f'{_TOKENS_SHARED} / greatest(len("address_tokens_l") + len("address_tokens_r") - {_TOKENS_SHARED}, 1)'
)


# Every word of the shorter address is in the longer one: the same address with a town or
# county added ("29 DAVISON COURT, KIRKHOLME" / "..., KIRKHOLME, WEST YORKSHIRE").
_TOKEN_CONTAINED = f'{_TOKENS_SHARED} = least(len("address_tokens_l"), len("address_tokens_r"))'


def location_comparison(has_uprn: bool, has_address: bool, has_postcode: bool, columns: Iterable[str] = ()) -> Comparison:
    """Where the person lives: same UPRN (tf) / same address and postcode (tf) / same postcode and
    house number / same postcode (tf) / same postcode sector / same district / other. `columns`:
    the frame's, when known (postcodes in no UK format have no sector or district)."""
    columns = set(columns)
    has_part = (lambda c: c in columns) if columns else (lambda c: True)
    present = []
    if has_uprn:
        present.append('("uprn_l" IS NOT NULL AND "uprn_r" IS NOT NULL)')
    if has_address:
        present.append('("address_key_l" IS NOT NULL AND "address_key_r" IS NOT NULL)')
    if has_postcode:
        present.append('("postcode_l" IS NOT NULL AND "postcode_r" IS NOT NULL)')
    levels = [_level(f"NOT ({' OR '.join(present)})", "Null", null=True)]
    if has_uprn:
        levels.append(_level('"uprn_l" = "uprn_r"', "Same UPRN", tf="uprn"))
    if has_address:
        levels.append(_level('"address_key_l" = "address_key_r"', "Same address", tf="address_key"))
        if has_postcode and has_part("house_number"):
            same_flat = (' AND coalesce("flat_number_l", \'\') = coalesce("flat_number_r", \'\')'
                         if has_part("flat_number") else "")
            levels.append(
                _level('"postcode_l" = "postcode_r" AND "house_number_l" = "house_number_r"' + same_flat,
                       "Same postcode and house number")
            )
            # 5657 and 565O, 12 and I2: a house number mistyped or misread at one postcode.
            levels.append(_level('"postcode_l" = "postcode_r" AND damerau_levenshtein("house_number_l", "house_number_r") <= 1',
                                 "Same postcode, house number one typo apart"))
        if has_part("house_number") and has_part("street_word"):
            # The postcode blank or mistyped, the town misspelt: the number and the street agree.
            levels.append(_level('"house_number_l" = "house_number_r" AND "street_word_l" = "street_word_r"',
                                 "Same house number and street"))
        # One address written two ways has one house number (or none written on one of them):
        # a cheap test that spares the word sets of neighbours at one postcode, which loose
        # blocking compares by the million.
        one_number = ('("house_number_l" = "house_number_r" OR "house_number_l" IS NULL OR "house_number_r" IS NULL) AND '
                      if has_part("house_number") else "")
        levels.append(
            _level(f"{one_number}{_TOKEN_CONTAINED} AND least(len(\"address_tokens_l\"), len(\"address_tokens_r\")) >= 3",
                   "One address within the other")
        )
        levels.append(_level(f"{one_number}{_TOKEN_JACCARD} >= 0.7", "Address words mostly shared"))
    if has_postcode:
        levels.append(_level('"postcode_l" = "postcode_r"', "Same postcode", tf="postcode"))
    if has_address:
        # (Not 'the same street word': where the number follows the street, as FEBRL writes
        # addresses, that word is the suburb, and FEBRL 3 lost 18 true pairs with it.)
        levels.append(_level(f"{_TOKEN_JACCARD} >= 0.4", "Some address words shared"))
    if has_postcode:
        levels += [
            _level(f'"{part}_l" = "{part}_r"', label)
            for part, label in (("postcode_sector", "Same postcode sector"), ("postcode_district", "Same postcode district"))
            if has_part(part)
        ]
    levels.append(_else())
    return _comparison("location", "Address, postcode and UPRN together", levels)


def identifier_comparison(column: str, label: str) -> Comparison:
    """A reference number (NHS number, NI number, pupil number…). Levels: exact / one typo /
    two typos (long numbers only) / other."""
    return _comparison(column, label, [
            _level(_either_null(column), "Null", null=True),
            _level(f'"{column}_l" = "{column}_r"', "Exact match"),
            _level(f'damerau_levenshtein("{column}_l", "{column}_r") <= 1', "One typo"),
            _level(f'levenshtein("{column}_l", "{column}_r") <= 2 AND length("{column}_l") >= 6', "Two typos"),
            _else(),
        ],
    )


def exact_comparison(column: str, label: str) -> Comparison:
    """Sex, phone, email: exact / other."""
    return _comparison(column, label, [
            _level(_either_null(column), "Null", null=True),
            _level(f'"{column}_l" = "{column}_r"', "Exact match"),
            _else(),
        ],
    )


def compared_fields(records: pd.DataFrame) -> set[str]:
    """Fields worth comparing: carried by at least two sources (or by the only source, when one
    source is being deduplicated) on at least MIN_FIELD_COVERAGE of its records."""
    present = {c: records[c].notna().to_numpy() for c in records.columns if c not in ("source", "unique_id")}
    return fields_carried(records["source"], present)


def fields_carried(sources: pd.Series, present: dict[str, np.ndarray]) -> set[str]:
    """`compared_fields` from each column's mask of present values (the masks' order is the
    sources' order)."""
    codes, names = pd.factorize(sources)
    per_source = np.bincount(codes, minlength=len(names))
    return fields_carried_counts(per_source, {column: np.bincount(codes[mask], minlength=len(names))
                                              for column, mask in present.items()})


def fields_carried_counts(per_source: np.ndarray, present: dict[str, np.ndarray]) -> set[str]:
    """`fields_carried` from counts: each source's records (`per_source`) and, for each column,
    how many of each source's records hold a value (in the same order of sources)."""
    needed = 1 if len(per_source) == 1 else 2
    carried = set()
    for column, counts in present.items():
        coverage = counts / np.maximum(per_source, 1)
        if int((coverage >= MIN_FIELD_COVERAGE).sum()) >= needed:
            carried.add(column)
    return carried


def build_comparisons(fields: Iterable[str], columns: Iterable[str]) -> list[Comparison]:
    """The comparisons for the compared `fields`; `columns` are all the linking frame carries
    (a level that reads a column the frame lacks is left out)."""
    fields, columns = set(fields), set(columns)
    comparisons: list[Comparison] = []
    if "first_name_key" in fields:
        comparisons.append(first_name_comparison(columns))
    if "last_name_key" in fields:
        comparisons.append(last_name_comparison(columns))
    if "middle_names_key" in fields:
        comparisons.append(middle_names_comparison())
    if "dob" in fields:
        comparisons.append(date_of_birth_comparison())
    has_uprn, has_address, has_postcode = ("uprn" in fields, "address_key" in fields, "postcode" in fields)
    if has_uprn or has_address or has_postcode:
        comparisons.append(location_comparison(has_uprn, has_address, has_postcode, columns))
    for column, label in IDENTIFIER_LABELS.items():
        if column in fields:
            comparisons.append(identifier_comparison(column, label))
    for column in sorted(f for f in fields if f.startswith("id_")):
        comparisons.append(identifier_comparison(column, f"Identifier {column[3:]}"))
    for column, label in EXACT_LABELS.items():
        if column in fields:
            comparisons.append(exact_comparison(column, label))
    return comparisons


IDENTIFIER_LABELS = {"nhs_number": "NHS number", "ni_number": "National Insurance number"}
EXACT_LABELS = {"sex": "Sex", "email": "Email", "phone": "Phone"}
