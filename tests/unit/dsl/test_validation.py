from __future__ import annotations

import pytest

from proml_sim import ADMIN, Artefact, InvalidDefinition, Role, State
from tests.fixtures.lifecycles import (
    VALID,
    make_bad_names,
    make_broken_everything,
    make_no_final,
)


@pytest.mark.parametrize("factory", VALID)
def test_valid_fixtures_define(factory):
    cls = factory()
    assert cls.__states__ and cls.__transitions__


def test_invalid_definition_is_a_type_error_listing_every_problem():
    with pytest.raises(InvalidDefinition) as info:
        make_broken_everything()
    err = info.value
    assert isinstance(err, TypeError)
    text = str(err)
    assert err.cls_name == "Broken"
    # every rule broken in the fixture is reported at once
    expected = [
        "2 initial states ('a', 'b')",
        "transition 'leave': leaves final state 'end'",
        "state 'island' is unreachable from",
        "state 'stuck' cannot reach a final state",
        "role (unnamed Role object) is not declared in Broken",
        "approvals=0 is impossible",
        "transition name 'register' is reserved",
    ]
    for fragment in expected:
        assert fragment in text, fragment
    assert len(err.problems) >= 7
    assert all(p.startswith("Broken: ") for p in err.problems)


def test_no_final_state_and_no_path_to_final():
    with pytest.raises(InvalidDefinition) as info:
        make_no_final()
    text = str(info.value)
    assert "no final state" in text


def test_invalid_and_reserved_identifiers():
    with pytest.raises(InvalidDefinition) as info:
        make_bad_names()
    text = str(info.value)
    assert "'self_'" not in text
    assert "state name 'uint256' is reserved" in text
    assert "state name '_9bad' is not a valid contract identifier" in text


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"approvals": 17}, "approvals=17 is impossible"),
        ({"approvals": True}, "approvals=True is impossible"),
        ({"approvals": 2, "count": "people"}, "count='people'"),
        ({"count": "domains"}, "count='domains' needs approvals >= 2"),
        ({"separate_from": "nope"}, "separate_from names 'nope'"),
        ({"by": None}, "no role may fire it"),
        ({"by": "writer"}, "by= takes Role objects"),
    ],
)
def test_transition_option_rules(kwargs, fragment):
    writer = Role()
    opts = {"by": writer, **kwargs}

    with pytest.raises(InvalidDefinition) as info:

        class T(Artefact):
            writer_role = writer
            a = State(initial=True)
            z = State(final=True)
            go = a.to(z, **opts)

    assert fragment in str(info.value)


def test_same_object_under_two_names_is_a_duplicate():
    with pytest.raises(InvalidDefinition) as info:

        class Dup(Artefact):
            r = Role()
            a = State(initial=True)
            z = State(final=True)
            also_z = z
            go = a.to(z, by=r)

    assert "state 'also_z' is the same object as 'z'" in str(info.value)


def test_case_only_difference_is_a_duplicate_name():
    with pytest.raises(InvalidDefinition) as info:

        class Case(Artefact):
            r = Role()
            Start = State(initial=True)
            start = State(final=True)
            go = Start.to(start, by=r)

    assert "differ only by case" in str(info.value)


def test_undeclared_state_and_role_admin():
    outside = State(final=True)
    boss = Role()
    with pytest.raises(InvalidDefinition) as info:

        class Leaky(Artefact):
            r = Role(admin=boss)
            a = State(initial=True)
            go = a.to(outside, by=r)

    text = str(info.value)
    assert "target state" in text and "is not declared in Leaky" in text
    assert "role 'r' admin" in text


def test_by_on_non_initial_state_is_refused():
    with pytest.raises(InvalidDefinition) as info:

        class X(Artefact):
            r = Role()
            a = State(initial=True)
            z = State(final=True, by=r)
            go = a.to(z, by=r)

    assert "by= applies only to the initial state" in str(info.value)


def test_admin_builtin_may_be_used_and_inheritance_extends():
    class Base(Artefact):
        r = Role()
        a = State(initial=True)
        z = State(final=True)
        go = a.to(z, by=r)

    class Child(Base):
        fast = Base.a.to(Base.z, by=ADMIN)

    assert set(Child.__transitions__) == {"go", "fast"}
