#!/usr/bin/env python3
"""Writes crates/gs1/src/ai_table.rs from the GS1 Barcode Syntax Dictionary.

Run once when the dictionary changes, review the diff, commit the output, then run the
conformance test (`cargo test -p gs1 --test conformance`). The build never runs this script.

    python3 crates/gs1/scripts/generate_ai_table.py \
        ../shared/conformance/gs1/gs1-syntax-dictionary/gs1-syntax-dictionary.txt \
        > crates/gs1/src/ai_table.rs
"""

import re
import sys

LINTER_VARIANTS = {
    "csum": "CheckDigit",
    "csumalpha": "CheckCharacterPair",
    "gcppos1": "CompanyPrefixAtPosition1",
    "gcppos2": "CompanyPrefixAtPosition2",
    "hasnondigit": "HasNonDigit",
    "hh": "Hour",
    "hhmi": "HourMinute",
    "mi": "Minute",
    "ss": "Second",
    "hyphen": "Hyphen",
    "iban": "Iban",
    "importeridx": "ImporterIndex",
    "iso3166": "CountryNumeric",
    "iso3166999": "CountryNumericOr999",
    "iso3166alpha2": "CountryAlpha2",
    "iso4217": "CurrencyNumeric",
    "iso5218": "BiologicalSex",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "mediatype": "MediaType",
    "nonzero": "NonZero",
    "nozeroprefix": "NoZeroPrefix",
    "packagetype": "PackageType",
    "pcenc": "PercentEncoded",
    "pieceoftotal": "PieceOfTotal",
    "posinseqslash": "PositionInSequence",
    "winding": "WindingDirection",
    "yesno": "YesNo",
    "yymmd0": "DateWithOptionalDay",
    "yymmdd": "Date",
    "yyyymmdd": "DateWithCentury",
    "zero": "Zero",
    "couponcode": "CouponCode",
    "couponposoffer": "CouponPositiveOffer",
}

CHARACTER_SETS = {"N": "Numeric", "X": "Cset82", "Y": "Cset39", "Z": "Cset64"}


def rust_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string_list(items):
    return "&[" + ", ".join(rust_string(item) for item in items) + "]"


def parse_component(token):
    optional = token.startswith("[")
    parts = token.split(",")
    kind = parts[0]
    if optional:
        assert kind.endswith("]"), token
        kind = kind[1:-1]
    match = re.fullmatch(r"([NXYZ])(\.\.)?(\d+)", kind)
    assert match, token
    character_set = CHARACTER_SETS[match.group(1)]
    length_maximum = int(match.group(3))
    length_minimum = 1 if match.group(2) else length_maximum
    linters = [LINTER_VARIANTS[name] for name in parts[1:]]
    return (character_set, length_minimum, length_maximum, optional, linters)


def parse_line(line):
    title = ""
    if "#" in line:
        line, title = line.split("#", 1)
        title = title.strip()
    tokens = line.split()
    ais = tokens.pop(0)
    flags = ""
    if tokens and re.fullmatch(r"[*!?\"$%&'()+,\-./:;<=>@\[\\\]^_`{|}~]+", tokens[0]):
        flags = tokens.pop(0)
    components = []
    while tokens and re.match(r"\[?[NXYZ]", tokens[0]):
        components.append(parse_component(tokens.pop(0)))
    requires, excludes, primary_key = [], [], None
    for token in tokens:
        if token.startswith("req="):
            requires.append([alternative.split("+") for alternative in token[4:].split(",")])
        elif token.startswith("ex="):
            excludes.extend(token[3:].split(","))
        elif token == "dlpkey":
            primary_key = []
        elif token.startswith("dlpkey="):
            primary_key = [sequence.split(",") for sequence in token[7:].split("|")]
        else:
            raise ValueError(f"unknown attribute {token!r} in {line!r}")
    if "-" in ais:
        first, last = ais.split("-")
        codes = [str(number).zfill(len(first)) for number in range(int(first), int(last) + 1)]
    else:
        codes = [ais]
    return [(code, flags, components, requires, excludes, primary_key, title) for code in codes]


def emit(entries, release):
    out = []
    out.append("//! The GS1 Application Identifier table, one entry per AI (ranges expanded).")
    out.append("//!")
    out.append(f"//! Generated from the GS1 Barcode Syntax Dictionary (release: {release}) by")
    out.append("//! `scripts/generate_ai_table.py`. Do not edit by hand: regenerate, review the diff, and run the")
    out.append("//! conformance test, which compares this table with the dictionary AI by AI.")
    out.append("")
    out.append("use crate::application_identifier::CharacterSet::{Cset39, Cset64, Cset82, Numeric};")
    out.append("use crate::application_identifier::Linter::*;")
    out.append("use crate::application_identifier::{ApplicationIdentifierDefinition, Component};")
    out.append("")
    out.append("/// Every Application Identifier, sorted by code.")
    out.append("#[rustfmt::skip]")
    out.append("pub(crate) static APPLICATION_IDENTIFIERS: &[ApplicationIdentifierDefinition] = &[")
    for code, flags, components, requires, excludes, primary_key, title in entries:
        component_texts = []
        for character_set, length_minimum, length_maximum, optional, linters in components:
            constructor = "optional" if optional else "required"
            component_texts.append(
                f"Component::{constructor}({character_set}, {length_minimum}, {length_maximum}, &[{', '.join(linters)}])"
            )
        requires_text = "&[" + ", ".join(
            "&[" + ", ".join(string_list(group) for group in requirement) + "]" for requirement in requires
        ) + "]"
        if primary_key is None:
            primary_key_text = "None"
        else:
            primary_key_text = "Some(&[" + ", ".join(string_list(sequence) for sequence in primary_key) + "])"
        out.append(
            "    ApplicationIdentifierDefinition { "
            f"code: {rust_string(code)}, title: {rust_string(title)}, "
            f"predefined_length: {'true' if '*' in flags else 'false'}, "
            f"digital_link_data_attribute: {'true' if '?' in flags else 'false'}, "
            f"components: &[{', '.join(component_texts)}], "
            f"requires: {requires_text}, excludes: {string_list(excludes)}, "
            f"digital_link_primary_key: {primary_key_text} }},"
        )
    out.append("];")
    return "\n".join(out) + "\n"


def main():
    path = sys.argv[1]
    release = "unknown"
    entries = []
    with open(path, encoding="utf-8") as dictionary:
        for raw in dictionary:
            line = raw.rstrip("\n")
            release_match = re.match(r"#\s*Release:\s*(\S+)", line)
            if release_match:
                release = release_match.group(1)
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            entries.extend(parse_line(line))
    entries.sort(key=lambda entry: entry[0])
    sys.stdout.write(emit(entries, release))


if __name__ == "__main__":
    main()
