"""The served snapshot, parsed section by section."""

import copy

import pytest
from pydantic import ValidationError

from gateway_agent.protocol import Snapshot, SnapshotParser
from tests.unit.test_renderer import snapshot_document


def served(document: dict, **sections: str) -> dict:
    names = {name: f"sha-{name}" for name in document} | sections
    return {"version": 1, "sha256": "x", "sections": names, "document": document}


def test_only_changed_sections_are_validated_again():
    parser = SnapshotParser(forget=frozenset())
    document = snapshot_document()
    first = parser.parse(served(document))
    assert first == Snapshot.model_validate(document)
    changed = copy.deepcopy(document)
    changed["routes"][0]["priority"] = 7
    second = parser.parse(served(changed, routes="sha-routes-2"))
    assert second.routes[0].priority == 7
    assert second.consumers is first.consumers  # not validated again
    assert second == Snapshot.model_validate(changed)


def test_a_bad_section_is_refused_and_unnamed_sections_validate_whole():
    parser = SnapshotParser()
    document = snapshot_document()
    broken = copy.deepcopy(document)
    broken["routes"][0]["paths"] = "not a list"
    with pytest.raises(ValidationError):
        parser.parse(served(broken))
    with pytest.raises(ValueError, match="Unknown snapshot sections"):
        parser.parse(served({**document, "extra": []}))
    assert parser.parse({"document": document}) == Snapshot.model_validate(document)


def test_consumers_are_not_kept_between_snapshots_by_default():
    parser = SnapshotParser()
    document = snapshot_document()
    first = parser.parse(served(document))
    second = parser.parse(served(document))
    assert second.routes is first.routes and second.consumers is not first.consumers
    assert second == first


def test_a_usage_item_s_status_code_belongs_to_its_class():
    from gateway_agent.protocol import UsageItem

    item = {"minute": 60, "route_id": 1, "status_class": "4xx", "requests": 1}
    assert UsageItem.model_validate({**item, "status_code": 429}).status_code == 429
    assert UsageItem.model_validate(item).status_code is None
    with pytest.raises(ValidationError, match="not of class 4xx"):
        UsageItem.model_validate({**item, "status_code": 503})
