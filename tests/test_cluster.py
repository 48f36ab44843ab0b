"""The cluster stage: scored pairs -> exactly one resident per record, without chaining households."""

import numpy as np
import pandas as pd
import pytest

from residentview.cluster import cluster_records, dob_compatible

COLUMNS = ["unique_id", "source", "first_name_key", "first_name_aliases", "middle_names_key",
           "last_name_key", "date_of_birth", "nhs_number", "ni_number", "is_person"]


def records(*rows):
    """rows: (first name, date of birth, nhs, nino) per record, unique_id in order."""
    data = []
    for i, (first, dob, nhs, nino) in enumerate(rows):
        data.append([i, "src", first, [first] if first else None, None, "SMITH",
                     pd.Timestamp(dob) if dob else pd.NaT, nhs, nino, True])
    return pd.DataFrame(data, columns=COLUMNS)


def pairs(*edges):
    """edges: (left, right, probability)."""
    frame = pd.DataFrame(edges, columns=["unique_id_l", "unique_id_r", "match_probability"])
    p = frame["match_probability"].clip(1e-9, 1 - 1e-9)
    frame["match_weight"] = np.log2(p / (1 - p))
    return frame


def residents(result):
    """Records grouped into residents, as a set of frozensets of unique_ids."""
    return {frozenset(g) for g in result.groupby("cluster_key")["unique_id"].apply(list)}


def test_every_record_is_in_exactly_one_resident_including_unpaired_ones():
    recs = records(("JOHN", "1980-01-02", None, None), ("JOHN", "1980-01-02", None, None), ("MARY", None, None, None))
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert sorted(out["unique_id"]) == [0, 1, 2]
    assert residents(out) == {frozenset({0, 1}), frozenset({2})}


def test_pairs_below_the_threshold_do_not_join():
    recs = records(("JOHN", "1980-01-02", None, None), ("JOHN", "1980-01-02", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.9)), threshold=0.95)
    assert residents(out) == {frozenset({0}), frozenset({1})}


def test_council_tax_initial_does_not_chain_husband_and_wife():
    # 0 John (DOB), 1 "J Smith" from council tax (no DOB), 2 Jane (DOB): 1 pairs with both.
    recs = records(("JOHN", "1970-03-04", None, None), ("J", None, None, None), ("JANE", "1972-08-09", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.97), (1, 2, 0.96)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1}), frozenset({2})}


def test_different_valid_nhs_numbers_are_never_one_resident():
    recs = records(("AMY", "2010-05-06", "9434765919", None), ("AMY", "2010-05-06", None, None),
                   ("AMY", "2010-05-06", "4010232137", None))
    out = cluster_records(recs, pairs((0, 1, 0.999), (1, 2, 0.998)), threshold=0.95)
    assert frozenset({0, 2}) not in residents(out)
    assert len(residents(out)) == 2


def test_household_sharing_a_copied_ni_number_stays_two_people():
    # 0 and 1 are the partner's records, 1 carries the claimant's NINO; 2 is the claimant.
    recs = records(("SARAH", "1985-01-20", None, None), ("SARAH", "1985-01-20", None, "AB123456C"),
                   ("DAVID", "1979-11-02", None, "AB123456C"))
    out = cluster_records(recs, pairs((1, 2, 0.999), (0, 1, 0.998)), threshold=0.95)
    groups = residents(out)
    assert not any({0, 2} <= g for g in groups)


def test_parent_and_child_with_the_same_name_are_two_residents():
    recs = records(("PETER", "1961-04-12", None, None), ("PETER", None, None, None), ("PETER", "1990-07-30", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.99), (1, 2, 0.99), (0, 2, 0.96)), threshold=0.95)
    assert not any({0, 2} <= g for g in residents(out))


def test_a_record_confirmed_before_the_other_person_was_born_is_someone_else():
    recs = records(("A", None, None, None), ("ALI", "2017-05-01", None, None))
    recs["record_date"] = [pd.Timestamp("2012-01-01"), pd.NaT]
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0}), frozenset({1})}


def test_same_name_a_generation_apart_joins_when_a_reference_number_ties_them():
    recs = records(("PETER", "1961-04-12", None, "AB123456C"), ("PETER", "1916-04-12", None, "AB123456C"))
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1})}


def test_twins_stay_apart_even_when_a_record_without_first_name_chains_them():
    recs = records(("OLIVER", "2012-06-01", None, None), (None, "2012-06-01", None, None), ("HARRY", "2012-06-01", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.97), (1, 2, 0.96), (0, 2, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1}), frozenset({2})}


def test_different_first_names_join_when_a_reference_number_ties_them():
    recs = records(("WEI", "1990-02-03", "9434765919", None), ("DAVID", "1990-02-03", "9434765919", None))
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1})}


def test_a_resident_known_by_two_names_takes_in_a_record_under_either():
    # WEI and DAVID are one resident (one NHS number); a third record, DAVID with no number,
    # fits one of its names and is not a twin of the other.
    recs = records(("WEI", "1990-02-03", "9434765919", None), ("DAVID", "1990-02-03", "9434765919", None),
                   ("DAVID", "1990-02-03", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.999), (1, 2, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1, 2})}
    # ... but a record under a third name fits neither, whichever way the merge runs.
    recs = records(("WEI", "1990-02-03", "9434765919", None), ("DAVID", "1990-02-03", "9434765919", None),
                   ("HARRY", "1990-02-03", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.999), (1, 2, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1}), frozenset({2})}


def test_swapped_forename_and_surname_is_not_a_conflict():
    recs = records(("JOHN", "1980-01-02", None, None), ("SMITH", "1980-01-02", None, None))
    recs.loc[1, "last_name_key"] = "JOHN"
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1})}


@pytest.mark.parametrize("a,b,compatible", [
    ("1980-03-04", "1980-03-04", True),
    ("1980-03-04", "1980-04-03", True),   # day and month swapped
    ("1980-03-04", "1930-03-04", True),   # one digit wrong
    ("1980-03-04", "1908-03-04", True),   # two digits transposed
    ("1980-03-04", "1980-11-30", True),   # within a year
    ("1980-03-04", "1955-07-21", False),
])
def test_dates_of_birth_that_differ_only_by_a_typo_are_compatible(a, b, compatible):
    assert dob_compatible(pd.Timestamp(a), pd.Timestamp(b)) is compatible


def test_membership_probability_is_the_strongest_link_and_one_for_singletons():
    recs = records(("JOHN", "1980-01-02", None, None), ("JOHN", "1980-01-02", None, None), ("ZED", None, None, None))
    out = cluster_records(recs, pairs((0, 1, 0.97)), threshold=0.95).set_index("unique_id")
    assert out.loc[0, "match_probability"] == pytest.approx(0.97)
    assert out.loc[2, "match_probability"] == 1.0


def test_clustering_does_not_depend_on_pair_order():
    recs = records(("JOHN", "1970-03-04", None, None), ("J", None, None, None), ("JANE", "1972-08-09", None, None),
                   ("JOHN", "1970-03-04", None, None))
    edges = pairs((0, 1, 0.97), (1, 2, 0.96), (0, 3, 0.99), (2, 3, 0.951))
    first = cluster_records(recs, edges, 0.95)
    second = cluster_records(recs, edges.sample(frac=1, random_state=3), 0.95)
    assert residents(first) == residents(second)


def test_different_initials_are_different_first_names():
    recs = records(("J", "1980-01-02", None, None), ("A", "1980-01-02", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0}), frozenset({1})}


def test_an_initial_may_stand_for_a_middle_name():
    recs = records(("J", None, None, None), ("GEORGE", None, None, None), ("GEORGE", "1970-01-01", None, None))
    recs.loc[1, "middle_names_key"] = "JULIAN"
    out = cluster_records(recs, pairs((0, 1, 0.99), (1, 2, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1, 2})}


def test_an_initial_cannot_vouch_for_two_different_full_names():
    recs = records(("JOHN", None, None, None), ("J", None, None, None), ("JANE", None, None, None))
    out = cluster_records(recs, pairs((0, 1, 0.99), (1, 2, 0.98)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1}), frozenset({2})}


def test_an_initial_may_stand_for_the_name_a_nickname_shortens():
    recs = records(("E", None, None, None), ("BETH", "1964-07-10", None, None))
    recs.at[1, "first_name_aliases"] = ["BETH", "ELIZABETH"]
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1})}


def test_a_title_of_the_other_sex_keeps_a_couple_apart():
    # "MRS J SMITH" on the council tax and JOHN SMITH (male) on another system, same address.
    recs = records(("J", None, None, None), ("JOHN", "1970-05-01", None, None), ("JANE", None, None, None))
    recs["title"] = ["MRS", None, None]
    recs["sex"] = [None, "M", "F"]
    out = cluster_records(recs, pairs((0, 1, 0.99), (0, 2, 0.97)), threshold=0.95)
    assert residents(out) == {frozenset({0, 2}), frozenset({1})}


def test_the_same_first_name_with_another_sex_is_a_typo_not_a_couple():
    recs = records(("SAM", "1970-05-01", None, None), ("SAM", "1970-05-01", None, None))
    recs["sex"] = ["M", "F"]
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1})}


def _elector_and_dated_people(n_adults: int, n_children: int, register: str = "electoral"):
    """Pairs of (a record of `register` without a date of birth, the same person in a dated
    system) for n_adults adults and n_children children, then JOHN the father on the register
    and JOHN his son at school. Returns records and confident pairs."""
    rows, edges = [], []
    ages = [35] * n_adults + [9] * n_children
    for k, age in enumerate(ages):
        name = f"PERSON{k}"
        rows.append([2 * k, register, name, [name], None, "SMITH", pd.NaT, None, None, True])
        rows.append([2 * k + 1, "dated", name, [name], None, "SMITH", pd.Timestamp(2026 - age, 3, 1), None, None, True])
        edges.append((2 * k, 2 * k + 1, 0.99))
    n = 2 * len(ages)
    rows.append([n, register, "JOHN", ["JOHN"], None, "SMITH", pd.NaT, None, None, True])
    rows.append([n + 1, "school", "JOHN", ["JOHN"], None, "SMITH", pd.Timestamp(2016, 5, 1), None, None, True])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["record_date"] = pd.Timestamp(2026, 11, 1)
    return frame, pairs(*edges, (n, n + 1, 0.99)), (n, n + 1)


def test_a_system_of_adults_is_recognised_from_the_data():
    from residentview.cluster import adult_when

    recs, edges, _ = _elector_and_dated_people(40, 2)
    when, measured = adult_when(recs, edges["unique_id_l"].to_numpy(), edges["unique_id_r"].to_numpy())
    assert measured["electoral"]["adults_only"] and measured["electoral"]["pairs"] == 43
    assert not np.isnat(when[recs["source"].eq("electoral").to_numpy()]).any()
    assert np.isnat(when[recs["source"].ne("electoral").to_numpy()]).all()
    # A system of everybody (a third of them children), or too few pairs to tell: no.
    for adults, children in ((28, 14), (20, 2)):
        recs, edges, _ = _elector_and_dated_people(adults, children)
        _, measured = adult_when(recs, edges["unique_id_l"].to_numpy(), edges["unique_id_r"].to_numpy())
        assert not measured["electoral"]["adults_only"]


def test_an_elector_is_not_the_schoolchild_named_after_him():
    recs, edges, (father, son) = _elector_and_dated_people(40, 2)
    out = cluster_records(recs, edges, threshold=0.95).set_index("unique_id")["cluster_key"]
    assert out[father] != out[son]
    # On a system of everybody the same two records are one resident: nothing says otherwise.
    recs, edges, (father, son) = _elector_and_dated_people(28, 14, register="library")
    out = cluster_records(recs, edges, threshold=0.95).set_index("unique_id")["cluster_key"]
    assert out[father] == out[son]


def test_a_register_that_dates_only_its_attainers_is_a_system_of_adults_whatever_its_pairs_say():
    """The register and a school census alone: the pairs joining undated electors to dated
    records meet mostly children (fathers joined to sons named after them), but the register's
    own dated records (its attainers) hold nobody under 16."""
    from residentview.cluster import adult_when

    rows, edges = [], []
    for k in range(40):  # attainers: dated on the register itself, 16 or 17
        rows.append([k, "electoral", f"ATTAINER{k}", [f"ATTAINER{k}"], None, "JONES", pd.Timestamp(2009, 3, 1), None, None, True])
    for k in range(30):  # undated electors the linkage joined to schoolchildren named alike
        name = f"PARENT{k}"
        rows.append([100 + 2 * k, "electoral", name, [name], None, "SMITH", pd.NaT, None, None, True])
        rows.append([101 + 2 * k, "school", name, [name], None, "SMITH", pd.Timestamp(2017, 5, 1), None, None, True])
        edges.append((100 + 2 * k, 101 + 2 * k, 0.99))
    recs = pd.DataFrame(rows, columns=COLUMNS)
    recs["record_date"] = pd.Timestamp(2026, 11, 1)
    when, measured = adult_when(recs, *(np.array(side) for side in zip(*[(a, b) for a, b, _ in edges])))
    register = measured["electoral"]
    assert register["share_under_age"] == 1.0 and register["dated_records"] == 40
    assert register["share_dated_under_age"] == 0.0 and register["adults_only"]
    assert not measured["school"]["adults_only"]
    out = cluster_records(recs, pairs(*edges), threshold=0.95).set_index("unique_id")["cluster_key"]
    assert all(out[100 + 2 * k] != out[101 + 2 * k] for k in range(30))
    # An attainer is judged by their own date: nothing is assumed about them.
    assert np.isnat(when[recs["unique_id"].lt(40).to_numpy()]).all()


def test_a_record_titled_as_only_adults_are_is_not_a_child_whatever_its_source():
    from residentview.cluster import adult_when

    recs = pd.DataFrame([
        [0, "bills", "JOHN", ["JOHN"], None, "SMITH", pd.NaT, None, None, True, "MR"],
        [1, "school", "JOHN", ["JOHN"], None, "SMITH", pd.Timestamp(2017, 5, 1), None, None, True, None],
        [2, "bills", "MEGAN", ["MEGAN"], None, "KELLY", pd.NaT, None, None, True, "MISS"],
        [3, "school", "MEGAN", ["MEGAN"], None, "KELLY", pd.Timestamp(2016, 6, 8), None, None, True, None],
    ], columns=COLUMNS + ["title"])
    recs["record_date"] = pd.Timestamp(2026, 11, 1)
    edges = pairs((0, 1, 0.99), (2, 3, 0.99))
    when, _ = adult_when(recs, edges["unique_id_l"].to_numpy(), edges["unique_id_r"].to_numpy())
    assert not np.isnat(when[0]) and np.isnat(when[2])  # MISS is a girl's title too
    assert residents(cluster_records(recs, edges, threshold=0.95)) == {frozenset({0}), frozenset({1}), frozenset({2, 3})}


def _home(*rows):
    """Records at one home (UPRN 100): (first name, title, date of birth) each."""
    recs = records(*[(first, dob, None, None) for first, _, dob in rows])
    recs["title"] = [title for _, title, _ in rows]
    recs["uprn"] = "100"
    return recs


def test_an_initial_joins_the_only_resident_at_its_address_it_could_stand_for():
    # 0: council tax 'MR T SMITH'; 1 and 2: THOMAS SMITH on two systems; 3: JANE SMITH.
    recs = _home(("T", "MR", None), ("THOMAS", None, "1970-01-01"), ("THOMAS", None, "1970-01-01"),
                 ("JANE", None, "1972-02-02"))
    out = cluster_records(recs, pairs((1, 2, 0.999), (0, 1, 0.8), (0, 3, 0.6)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1, 2}), frozenset({3})}
    assert out.set_index("unique_id").loc[0, "match_probability"] == pytest.approx(0.8)


def test_an_initial_two_residents_could_stand_for_stays_alone():
    # THOMAS and his son TOM both live there: 'MR T SMITH' could be either.
    recs = _home(("T", "MR", None), ("THOMAS", None, "1970-01-01"), ("TOM", None, "2001-03-03"))
    out = cluster_records(recs, pairs((0, 1, 0.8), (0, 2, 0.7)), threshold=0.95)
    assert residents(out) == {frozenset({0}), frozenset({1}), frozenset({2})}


def test_an_initial_does_not_join_a_resident_it_conflicts_with():
    recs = _home(("T", "MRS", None), ("THOMAS", "MR", "1970-01-01"))  # MRS T is not THOMAS
    out = cluster_records(recs, pairs((0, 1, 0.8)), threshold=0.95)
    assert residents(out) == {frozenset({0}), frozenset({1})}


def test_a_shared_pupil_number_outweighs_a_mistyped_name_and_date_but_a_copied_ni_number_does_not():
    recs = records(("OLIVIA", "2012-06-01", None, None), ("OLIVER", "2021-06-01", None, None))
    recs["id_upn"] = ["A123456789012", "A123456789012"]
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1})}
    recs = records(("MARK", "1979-11-02", None, "JT428619B"), ("JULIE", "1985-01-20", None, "JT428619B"))
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0}), frozenset({1})}


def _pupils(n_kept: int, n_changed: int):
    """n pupils each on two systems under one name and date with their pupil number (n_changed
    of them with a second, unrelated number), then SARAH and SALLY, sisters ten months apart
    with their own numbers. Returns records, confident pairs and the sisters' unique_ids."""
    rows, numbers, edges = [], [], []
    for k in range(n_kept + n_changed):
        name, born = f"PUPIL{k}", pd.Timestamp(2012, 1, 1) + pd.Timedelta(days=k)
        for side in range(2):
            rows.append([len(rows), "school", name, [name], None, "SMITH", born, None, None, True])
            changed = side == 1 and k >= n_kept
            numbers.append(f"Z{(k + 1) * 987654321 % 10**12:012d}" if changed else f"B{k:012d}")
        edges.append((len(rows) - 2, len(rows) - 1, 0.999))
    sarah, sally = len(rows), len(rows) + 1
    rows.append([sarah, "school", "SARAH", ["SARAH"], None, "SMITH", pd.Timestamp(2019, 10, 20), None, None, True])
    rows.append([sally, "school", "SALLY", ["SALLY", "SARAH"], None, "SMITH", pd.Timestamp(2020, 8, 7), None, None, True])
    numbers += ["E383218506737", "F383239009421"]
    frame = pd.DataFrame(rows, columns=COLUMNS).assign(id_upn=numbers)
    return frame, pairs(*edges, (sarah, sally, 0.9999)), (sarah, sally)


def test_two_numbers_of_a_reference_one_person_keeps_are_two_people():
    recs, edges, (sarah, sally) = _pupils(40, 0)
    out = cluster_records(recs, edges, threshold=0.95)
    assert out.attrs["kept_references"]["id_upn"]["kept_by_one_person"]
    keys = out.set_index("unique_id")["cluster_key"]
    assert keys[sarah] != keys[sally]  # a nickname and dates within a year: sisters, by their numbers


def test_a_reference_that_changes_for_one_person_decides_nothing():
    # Benchmark identifiers corrupted like any field, or a claim number per claim: one person,
    # two numbers, on a tenth of the pairs. Then two numbers say nothing.
    recs, edges, (sarah, sally) = _pupils(36, 4)
    out = cluster_records(recs, edges, threshold=0.95)
    assert not out.attrs["kept_references"]["id_upn"]["kept_by_one_person"]
    keys = out.set_index("unique_id")["cluster_key"]
    assert keys[sarah] == keys[sally]
    changed = recs.index[-3]  # the last changed pupil's second record still joins the first
    assert keys[changed] == keys[changed - 1]


def test_a_resident_holding_a_date_a_number_showed_wrong_takes_a_record_of_its_other_date():
    # JAKE 1967 (number 8695287) and JAKE 1978 (same number: his date mistyped) are one
    # resident; a third JAKE 1967 with no number still joins it.
    recs = records(("JAKE", "1967-02-27", None, None), ("JAKE", "1978-07-27", None, None),
                   ("JAKE", "1967-02-27", None, None))
    recs["id_ref"] = ["8695287", "8695287", None]
    out = cluster_records(recs, pairs((0, 1, 0.999), (1, 2, 0.99), (0, 2, 0.98)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1, 2})}
    # Without the number, the 1978 JAKE is another man (a son) and stays apart.
    recs["id_ref"] = None
    out = cluster_records(recs, pairs((0, 1, 0.999), (1, 2, 0.99), (0, 2, 0.98)), threshold=0.95)
    assert frozenset({1}) in residents(out)


def test_an_attainer_on_a_register_of_adults_joins_their_school_record_by_their_own_date():
    recs, edges, (father, son) = _elector_and_dated_people(40, 2)
    n = len(recs)
    attainer = [n, "electoral", "AMY", ["AMY"], None, "SMITH", pd.Timestamp(2011, 3, 1), None, None, True]
    pupil = [n + 1, "school", "AMY", ["AMY"], None, "SMITH", pd.Timestamp(2011, 3, 1), None, None, True]
    recs = pd.concat([recs, pd.DataFrame([attainer, pupil], columns=COLUMNS).assign(record_date=pd.Timestamp(2026, 11, 1))],
                     ignore_index=True)
    edges = pd.concat([edges, pairs((n, n + 1, 0.99))], ignore_index=True)
    out = cluster_records(recs, edges, threshold=0.95).set_index("unique_id")["cluster_key"]
    assert out[n] == out[n + 1]  # 15 on the register, with her date of birth: herself
    assert out[father] != out[son]


def test_a_first_name_says_a_sex_when_the_records_stating_one_agree():
    from residentview.linkage.frame import sex_of_names

    people = pd.DataFrame({
        "first_name_key": ["SARAH"] * 6 + ["SAM"] * 6 + ["ZELDA"] * 2,
        "sex": ["F"] * 6 + ["F", "M", "F", "M", "M", "F"] + ["F", "F"],
        "title": [None] * 14,
    })
    assert sex_of_names(people).to_dict() == {"SARAH": "F"}  # SAM is both; ZELDA too rare to tell


def test_mr_s_hughes_joins_scott_not_sarah():
    # The register states no sex; the other systems' SARAHs and SCOTTs do. 'MR S HUGHES' on the
    # council tax scores alike with both and must join SCOTT, though SARAH scores higher.
    rows = [(name, None, None, None) for name in ["SARAH"] * 5 + ["SCOTT"] * 5]
    recs = records(*rows, ("S", None, None, None), ("SARAH", None, None, None), ("SCOTT", None, None, None))
    recs["sex"] = ["F"] * 5 + ["M"] * 5 + [None, None, None]
    recs["title"] = [None] * 10 + ["MR", None, None]
    recs["last_name_key"] = ["OTHER"] * 10 + ["HUGHES"] * 3
    out = cluster_records(recs, pairs((10, 11, 0.99), (10, 12, 0.98)), threshold=0.95)
    assert frozenset({10, 12}) in residents(out) and frozenset({11}) in residents(out)


def test_a_mistyped_two_letter_name_keeps_its_person_but_not_another_letter():
    recs = records(("AMY", "2019-12-22", None, None), ("AY", "2019-12-22", None, None))
    assert residents(cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)) == {frozenset({0, 1})}
    recs = records(("AMY", "2019-12-22", None, None), ("MY", "2019-12-22", None, None))
    assert residents(cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)) == {frozenset({0}), frozenset({1})}


@pytest.mark.parametrize("a,b", [
    ("PAUL", "PUAO"),        # two letters wrong
    ("AGNIESZKA", "AG"),     # cut short
    ("FAISAL", "FOSLA"),     # Jaro-Winkler from 0.7, first letter kept
    ("LAURA", "LZEUA"),
])
def test_a_first_name_with_heavy_damage_fits_a_pair_the_model_is_sure_of(a, b):
    recs = records((a, None, None, None), (b, None, None, None))
    assert residents(cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)) == {frozenset({0, 1})}


@pytest.mark.parametrize("a,b", [("LAUREN", "CHARLENE"), ("ANDREA", "LINDA"), ("JOHN", "PETER")])
def test_names_that_merely_look_alike_are_still_two_people(a, b):
    recs = records((a, None, None, None), (b, None, None, None))
    assert residents(cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)) == {frozenset({0}), frozenset({1})}


def test_a_damaged_first_name_does_not_outweigh_a_date_of_birth_no_typo_explains():
    recs = records(("SUSIE", "1984-02-11", None, None), ("SSUIE", "1961-09-27", None, None))
    assert residents(cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)) == {frozenset({0}), frozenset({1})}


def test_a_damaged_first_name_does_not_outweigh_different_nhs_numbers():
    recs = records(("SUSIE", None, "9434765919", None), ("SSUIE", None, "4010232137", None))
    assert residents(cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95)) == {frozenset({0}), frozenset({1})}


def test_a_damaged_name_must_fit_every_name_the_resident_is_known_by():
    # SUSAN and SUSIE-cut-short "SUS" are one resident; a twin JOANNE does not join them
    # through a damaged spelling of another name.
    recs = records(("SUSAN", "2012-04-05", None, None), ("SUS", "2012-04-05", None, None),
                   ("JOANNE", "2012-04-05", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.99), (1, 2, 0.97)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1}), frozenset({2})}


@pytest.mark.parametrize("other", ["1990-06-21", "1990-12-06", "1990-12-07", "1909-12-06"])
def test_a_date_of_birth_one_typo_apart_does_not_split_a_pair_the_model_is_sure_of(other):
    # equal but for one digit, day and month swapped, two digits transposed
    recs = records(("JOHN", "1990-12-06", None, None), ("JOHN", other, None, None),
                   ("JOHN", "1990-12-06", None, None))
    out = cluster_records(recs, pairs((0, 1, 0.99), (1, 2, 0.99)), threshold=0.95)
    assert residents(out) == {frozenset({0, 1, 2})}


# Reviewers' decisions: must-link and cannot-link pairs ------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from residentview.review.in_force import decisions_in_force, violations  # noqa: E402
from residentview.review.store import appended, empty_store  # noqa: E402


def decided(*pairs_):
    """(left, right) unique_id pairs as a decisions frame for cluster_records."""
    return pd.DataFrame(list(pairs_), columns=["unique_id_l", "unique_id_r"])


def test_a_match_decision_joins_records_scored_below_the_threshold():
    recs = records(("JOHN", "1980-01-02", None, None), ("JON", None, None, None))
    out = cluster_records(recs, pairs((0, 1, 0.3)), threshold=0.95, must_link=decided((0, 1)))
    assert residents(out) == {frozenset({0, 1})}
    assert out["match_probability"].tolist() == [1.0, 1.0]


def test_a_match_decision_wins_over_conflicting_numbers():
    recs = records(("AMY", "2010-05-06", "9434765919", None), ("AMY", "2010-05-06", "4010232137", None))
    out = cluster_records(recs, pairs((0, 1, 0.99)), threshold=0.95, must_link=decided((0, 1)))
    assert residents(out) == {frozenset({0, 1})}


def test_a_non_match_decision_splits_even_through_a_chain_of_other_records():
    recs = records(*[("JOHN", "1980-01-02", None, None)] * 3)
    out = cluster_records(recs, pairs((0, 1, 0.999), (1, 2, 0.998)), threshold=0.95, cannot_link=decided((0, 2)))
    assert len(residents(out)) == 2
    assert frozenset({0, 2}) not in {frozenset(r & {0, 2}) for r in residents(out)}


def test_a_non_match_decision_keeps_an_initial_from_joining_the_only_resident_at_its_address():
    recs = records(("THOMAS", "1970-03-04", None, None), ("T", None, None, None))
    recs["address"], recs["postcode"] = "1 HIGH STREET", "AB1 2CD"
    free = cluster_records(recs, pairs((0, 1, 0.5)), threshold=0.95)
    assert residents(free) == {frozenset({0, 1})}  # attached as the only THOMAS at the address
    kept_apart = cluster_records(recs, pairs((0, 1, 0.5)), threshold=0.95, cannot_link=decided((0, 1)))
    assert residents(kept_apart) == {frozenset({0}), frozenset({1})}


N_RECORDS = 8
FIRSTS = ["JOHN", "JON", "MARY", "J", None]


@settings(max_examples=150, deadline=None)
@given(
    people=st.lists(st.tuples(st.sampled_from(FIRSTS), st.sampled_from([None, "1980-01-02", "1981-02-03"]),
                              st.sampled_from([None, "9434765919", "4010232137"])),
                    min_size=N_RECORDS, max_size=N_RECORDS),
    scored=st.lists(st.tuples(st.integers(0, N_RECORDS - 1), st.integers(0, N_RECORDS - 1), st.floats(0.01, 0.999)),
                    max_size=20),
    said=st.lists(st.tuples(st.integers(0, N_RECORDS - 1), st.integers(0, N_RECORDS - 1),
                            st.sampled_from(["match", "non-match", "unsure"])), max_size=12),
)
def test_decisions_in_force_are_always_honoured_and_every_record_is_in_one_resident(people, scored, said):
    recs = records(*[(first, dob, nhs, None) for first, dob, nhs in people])
    recs["record_id"] = recs["unique_id"].astype(str)
    edges = pairs(*[(min(a, b), max(a, b), p) for a, b, p in scored if a != b])
    rows = pd.DataFrame([{"source_l": "src", "record_id_l": str(a), "source_r": "src", "record_id_r": str(b),
                          "decision": word} for a, b, word in said if a != b],
                        columns=["source_l", "record_id_l", "source_r", "record_id_r", "decision"])
    in_force = decisions_in_force(appended(empty_store(), rows), recs)
    out = cluster_records(recs, edges, threshold=0.95, must_link=in_force.must_link, cannot_link=in_force.cannot_link)
    assert sorted(out["unique_id"]) == list(range(N_RECORDS))
    assert violations(in_force, out.set_index("unique_id")["cluster_key"]) == {"match": 0, "non-match": 0}
    # A rerun with the same decisions changes nothing.
    again = cluster_records(recs, edges, threshold=0.95, must_link=in_force.must_link, cannot_link=in_force.cannot_link)
    pd.testing.assert_frame_equal(again, out)
    # Every decision is either in force or overruled by a later one.
    active = {*in_force.must_link["decision_id"], *in_force.cannot_link["decision_id"]}
    overruled = set(in_force.overruled["decision_id"])
    latest_words = rows.assign(decision_id=range(1, len(rows) + 1))
    assert not active & overruled
    assert active | overruled <= set(latest_words["decision_id"])
