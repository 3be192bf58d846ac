"""Citation parsing and validation on hand-written model outputs, good and bad."""

import pytest

from spyglass.generator.citations import parse_citations, renumber


@pytest.mark.parametrize(
    "raw, count, text, cited, invalid",
    [
        ("Cats sleep a lot [1].", 3, "Cats sleep a lot [1].", [1], []),
        ("A [2] and B [1, 3].", 3, "A [2] and B [1, 3].", [2, 1, 3], []),
        ("Range [1-3] works.", 3, "Range [1, 2, 3] works.", [1, 2, 3], []),
        ("En dash [2–3].", 3, "En dash [2, 3].", [2, 3], []),
        ("Spaces [ 2 ,3 ] ok.", 3, "Spaces [2, 3] ok.", [2, 3], []),
        ("Repeated [1] and [1] again [1].", 2, "Repeated [1] and [1] again [1].", [1], []),
        ("Out of range [7] here.", 3, "Out of range here.", [], [7]),
        ("Zero [0] and real [2].", 3, "Zero and real [2].", [2], [0]),
        ("Mixed [2, 9].", 3, "Mixed [2].", [2], [9]),
        ("No citations at all.", 3, "No citations at all.", [], []),
        ("Malformed [a] and [1a] and [] stay.", 3, "Malformed [a] and [1a] and [] stay.", [], []),
        ("Empty evidence [1].", 0, "Empty evidence.", [], [1]),
    ],
)
def test_parse(raw, count, text, cited, invalid):
    parsed = parse_citations(raw, count)
    assert (parsed.text, parsed.cited, parsed.invalid) == (text, cited, invalid)
    assert parsed.supported == bool(cited)


def test_renumber_maps_every_number_of_a_group():
    parsed = parse_citations("B first [3], then A [1, 3], then [2-3].", 3)
    numbers = {old: new for new, old in enumerate(parsed.cited, start=1)}
    assert numbers == {3: 1, 1: 2, 2: 3}
    assert renumber(parsed.text, numbers) == "B first [1], then A [2, 1], then [3, 1]."
