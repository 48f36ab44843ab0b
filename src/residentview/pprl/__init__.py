"""Privacy-preserving record linkage (CONTRACT §8: `encode`, `link-encoded`).

Two organisations that may not exchange names and dates of birth still want to know which of
their records are the same residents. Each encodes its records under a secret the two share
(`encode`); whoever links receives only the encodings (`link-encoded`) and learns which records
belong together, not who they are.

The method is the Bloom-filter encoding of Schnell, Bachteler & Reiher (2009), "Privacy-preserving
record linkage using Bloom filters", BMC Medical Informatics and Decision Making 9:41, in its
record-level form: one filter per record holding every identifying field, the cryptographic
long-term key (CLK) of Schnell, Bachteler & Reiher (2011), "A novel error-tolerant anonymous
linking code", German Record Linkage Center WP-GRLC-2011-02; cf. the record-level Bloom filters
of Durham, Kantarcioglu, Xue et al. (2013), "Composite Bloom filters for secure record linkage",
IEEE TKDE 26(12). Each field's q-grams set bits chosen by keyed hashing (HMAC-SHA256), more bits
for fields that tell people apart better (field weights); filters that share many bits
(Dice coefficient) come from records with similar values, so typos still link. A keyed
diffusion layer then hardens the filters against the frequency and pattern-mining attacks
(Armknecht, Heng & Schnell 2023, "Strengthening privacy-preserving record linkage using
diffusion", PoPETs 2023(2)). Beside it each record carries a balanced, noisy filter of its full
name (with its first name's nickname aliases) and two more of the names it may be recorded
under (swapped; known by its middle name), keyed exact tokens of the identifiers the clear linkage also uses (NHS and NI numbers,
UPRN, address, pieces of the date of birth, sex — recorded, by title, or by a first name whose
sex the organisation learned from its own records…) and coarse signals (first-initial buckets,
child or adult), so that `link-encoded` can apply the clear clusterer's conflict rules — a
parent and a child of one name at one address are two people, 'MR R NOLAN' is not RACHEL. `encoding` says what the file holds and which
attacks remain; `linking` how pairs are judged.

    encoded = encode_records(records, key, organisation="borough_a")
    write_encoded(encoded, Path("borough_a.parquet"))
    result = link_encoded(read_encoded(left), read_encoded(right))
"""

from residentview.pprl.encoding import (
    EncodedRecords,
    encode_records,
    read_encoded,
    write_encoded,
)
from residentview.pprl.linking import EncodedLinks, link_encoded

__all__ = ["EncodedLinks", "EncodedRecords", "encode_records", "link_encoded", "read_encoded", "write_encoded"]
