"""The response writer splices pre-rendered JSON (``RenderedArray``) into bodies byte for byte."""

from __future__ import annotations

import json

import pytest

from scim_bridge.domain.query import ListResult
from scim_bridge.http.scim.responses import dumps
from scim_bridge.scim.rendered import RenderedArray
from scim_bridge.scim.rendered import RenderedObject


def compact(value: object) -> str:
    """Serialize as the SCIM responses do."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_plain_body_is_json_dumps():
    body = {"a": "é \"x\" \n", "b": [1, 2.5, None, True], "c": {}}
    assert dumps(body) == compact(body)


@pytest.mark.parametrize("items", [[], [{"value": "1"}], [{"value": "1", "display": "Ünï \"q\""}, {"value": "2"}]])
def test_rendered_array_is_spliced_in_place(items):
    body = {"id": "g", "members": RenderedArray([compact(i) for i in items]), "meta": {"version": 'W/"1"'}}
    assert dumps(body) == compact({"id": "g", "members": items, "meta": {"version": 'W/"1"'}})


def test_several_arrays_keep_their_own_place():
    resources = [{"id": str(n), "members": RenderedArray([compact({"value": f"m{n}-{k}"}) for k in range(n)])}
                 for n in range(4)]
    expected = [{"id": str(n), "members": [{"value": f"m{n}-{k}"} for k in range(n)]} for n in range(4)]
    assert dumps({"Resources": resources, "totalResults": 4}) == compact({"Resources": expected, "totalResults": 4})


def test_client_strings_that_look_like_a_placeholder_are_left_alone():
    body = {"displayName": "rendered-array:" + "0" * 32, "members": RenderedArray(["{}"])}
    assert dumps(body) == compact({"displayName": "rendered-array:" + "0" * 32, "members": [{}]})


def test_other_objects_still_fail():
    with pytest.raises(TypeError):
        dumps({"x": object()})


def _list_body(resources: list[object]) -> dict[str, object]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 7, "startIndex": 3,
            "itemsPerPage": len(resources), "Resources": resources}


@pytest.mark.parametrize("count", [1, 2, 100])
def test_a_page_of_rendered_resources_is_spliced_as_one_array(count):
    users = [{"id": f"u{n}", "userName": f"Ünï \"{n}\"", "groups": [], "meta": {"version": f'W/"{n}"'}}
             for n in range(count)]
    result = ListResult(7, 3, [RenderedObject(compact(u)) for u in users])
    body = result.to_scim()
    assert isinstance(body["Resources"], RenderedArray)  # one splice for the page, not one per resource
    assert dumps(body) == compact(_list_body(users))


@pytest.mark.parametrize("resources", [
    [],
    [{"id": "g1", "displayName": "plain dict"}],
    [RenderedObject('{"id":"u1"}'), {"id": "g1"}, RenderedObject('{"id":"u2"}')],
])
def test_pages_of_dicts_or_mixed_resources_keep_each_resource(resources):
    body = ListResult(7, 3, resources).to_scim()
    assert body["Resources"] is resources
    expected = [json.loads(r.text) if isinstance(r, RenderedObject) else r for r in resources]
    assert json.loads(dumps(body)) == _list_body(expected)
