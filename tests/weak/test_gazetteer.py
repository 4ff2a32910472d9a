"""The shipped Arabic gazetteer of states, and gazetteer files: matching forms, and errors that name the key."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT
from train.errors import TaawunError
from train.weak.gazetteer import load_gazetteer

STATES = ROOT / "configs" / "gazetteers" / "states_ar.yaml"


@pytest.fixture(scope="module")
def states():
    return load_gazetteer(STATES)


def test_every_un_member_plus_four(states):
    codes = [entry.code for entry in states.entries]
    assert len(codes) == len(set(codes)) == 193 + 4
    assert {"PS", "TW", "XK", "VA", "EG", "US", "SS", "KP", "KR", "CD", "CG", "GQ"} <= set(codes)
    assert all(entry.names for entry in states.entries)


@pytest.mark.parametrize(("text", "codes"), [
    ("مصر", ["EG"]),
    ("ومصر وبمصر لمصر فمصر", ["EG"] * 4),
    ("المصري والمصرية والمصريين للمصريين بالمصريين المصريون مصريات", ["EG"] * 7),
    ("للولايات المتحدة وبالولايات المتحدة والولايات المتحدة الأمريكية", ["US"] * 3),
    ("أمريكا وأميركا والأمريكيين والأمريكان", ["US"] * 4),
    ("استقبل الرئيسُ الأمريكيُّ", ["US"]),  # diacritics are ignored
    ("بالسعودية والسعوديين والرياض", ["SA"] * 3),
    ("غينيا الاستوائية وغينيا بيساو وغينيا", ["GQ", "GW", "GN"]),
    ("جنوب السودان والسودان", ["SS", "SD"]),
    ("كوريا الشمالية وكوريا الجنوبية والزعيم الكوري الشمالي", ["KP", "KR", "KP"]),
    ("روسيا البيضاء وروسيا", ["BY", "RU"]),
    ("واشنطن وموسكو وتل أبيب والبيت الأبيض والكرملين", ["US", "RU", "IL", "US", "RU"]),
    ("أمريكا اللاتينية والمحيط الهندي وريال مدريد", []),
    ("الوضع المالي والشؤون المالية", []),  # مالي is also "financial": Mali is matched by its longer names only
    ("كيف ترى عمان", []),  # كيف is "how", عمان is both Oman and Amman
    ("سلطنة عمان والعمانيين", ["OM", "OM"]),
])
def test_names_demonyms_and_capitals_with_proclitics(states, text, codes):
    assert states.find(text) == codes


def test_forms_are_arabic_and_unique_across_states(states):
    seen = {}
    for entry in states.entries:
        for form in entry.forms():
            assert all("\u0600" <= ch <= "\u06ff" or ch == " " for ch in form), (entry.code, form)
            assert seen.setdefault(form, entry.code) == entry.code, (form, seen[form], entry.code)


@pytest.mark.parametrize(("text", "message"), [
    ("entries:\n  - {code: EG, names: [مصر], colour: red}\n", "entries.0.colour: unknown key"),
    ("entries:\n  - {code: eg, names: [مصر]}\n", "entries.0.code: String should match pattern"),
    ("entries:\n  - {code: EG, names: []}\n", "entries.0.names: List should have at least 1 item"),
    ("entries:\n  - {code: EG, names: [مصر]}\n  - {code: EG, names: [ليبيا]}\n",
     "entries.1.code: 'EG' is also the code of entries.0"),
    ("entries:\n  - {code: EG, names: [مصر]}\n  - {code: LY, names: [ليبيا], capitals: [مصر]}\n",
     "entries.1.capitals.0: 'مصر' is also a form of EG (entries.0.names.0)"),
    ("entries:\n  - {code: EG, names: [مصر], demonyms: [مصري]}\n  - {code: XX, names: [المصرية]}\n",
     "entries.1.names.0: 'المصرية' is also a form of EG (entries.0.demonyms.0)"),
    ("entries:\n  - {code: EG, names: [Egypt]}\n", "entries.0.names.0: 'Egypt' is not Arabic"),
    ("entries:\n  - {code: EG, names: [مصر]}\nignore: [مصر]\n", "ignore.0: 'مصر' is also a form of EG"),
    ("entries: [\n", "not valid YAML"),
])
def test_bad_gazetteer_names_the_key(tmp_path, text, message):
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaawunError) as err:
        load_gazetteer(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_gazetteer_file(tmp_path):
    with pytest.raises(TaawunError, match="no such file"):
        load_gazetteer(tmp_path / "absent.yaml")
