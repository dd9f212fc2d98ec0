"""The Bulk envelope (RFC 7644 §3.7) without an app: parsing, bulkId references, rendering."""

from __future__ import annotations

import pytest

from scim_bridge.scim.bulk import OperationResult
from scim_bridge.scim.bulk import bulk_response
from scim_bridge.scim.bulk import parse_bulk_request
from scim_bridge.scim.bulk import path_reference
from scim_bridge.scim.bulk import references
from scim_bridge.scim.bulk import substitute
from scim_bridge.scim.errors import InvalidSyntax
from scim_bridge.scim.errors import NotFound
from scim_bridge.scim.errors import TooLarge
from scim_bridge.scim.schema import BULK_REQUEST_SCHEMA
from scim_bridge.scim.schema import BULK_RESPONSE_SCHEMA


def request(*operations, **extra):
    return {"schemas": [BULK_REQUEST_SCHEMA], "Operations": list(operations), **extra}


def test_parse_normalises_method_and_collects_references():
    parsed = parse_bulk_request(request(
        {"method": "post", "path": "/Groups", "bulkId": "g", "data": {"members": [{"value": "bulkId:u"}]}},
        {"method": "Patch", "path": "/Users/bulkId:u", "version": 'W/"1"', "data": {}},
        {"method": "DELETE", "path": "/Users/x"},
        failOnErrors=2), 10)
    assert parsed.fail_on_errors == 2
    assert [(o.index, o.method, o.references) for o in parsed.operations] == [
        (0, "POST", frozenset({"u"})), (1, "PATCH", frozenset({"u"})), (2, "DELETE", frozenset())]
    assert parsed.operations[1].version == 'W/"1"' and parsed.operations[2].data is None


def test_too_many_operations_is_413_before_looking_at_them():
    with pytest.raises(TooLarge) as caught:
        parse_bulk_request(request("junk", "junk", "junk"), 2)
    assert caught.value.status == 413 and caught.value.scim_type == "tooLarge"


@pytest.mark.parametrize("body", [
    None, "x", {"Operations": []}, request(failOnErrors=-1), {"schemas": [BULK_REQUEST_SCHEMA], "Operations": 1},
    request({"method": "POST", "path": "/Users", "data": {}}),
    request({"method": "TRACE", "path": "/Users"}),
    request({"method": "DELETE", "path": ""}),
    request({"method": "PATCH", "path": "/Users/x"}),
])
def test_malformed_envelope_is_invalid_syntax(body):
    with pytest.raises(InvalidSyntax):
        parse_bulk_request(body, 10)


def test_references_anywhere_in_data_and_in_quoted_filter_values():
    data = {"members": [{"value": "bulkId:a"}, {"value": "plain"}],
            "Operations": [{"op": "remove", "path": 'members[value eq "bulkId:b"]'}],
            "nested": {"deep": ["bulkId:c"]}, "n": 1, "flag": True, "none": None}
    assert references(data) == {"a", "b", "c"}
    assert references({"userName": "not bulkId:x"}) == set()


def test_substitute_replaces_only_known_references():
    data = {"members": [{"value": "bulkId:a"}, {"value": "bulkId:unknown"}],
            "path": 'members[value eq "bulkId:b"] or members[value eq "bulkId:zz"]'}
    assert substitute(data, {"a": "ID-A", "b": "ID-B"}) == {
        "members": [{"value": "ID-A"}, {"value": "bulkId:unknown"}],
        "path": 'members[value eq "ID-B"] or members[value eq "bulkId:zz"]'}
    assert data["members"][0]["value"] == "bulkId:a"  # a copy, the request is unchanged


def test_path_reference():
    assert path_reference("/Users/bulkId:qwerty") == "qwerty"
    assert path_reference("/Users/2819c223") is None and path_reference("/Users") is None


def test_response_is_in_request_order_with_string_status():
    results = [OperationResult(1, "DELETE", None, 404, "https://h/Users/x", error=NotFound("User x not found")),
               OperationResult(0, "POST", "q", 201, "https://h/Users/1", 'W/"1"')]
    body = bulk_response(results)
    assert body["schemas"] == [BULK_RESPONSE_SCHEMA]
    assert body["Operations"] == [
        {"method": "POST", "bulkId": "q", "version": 'W/"1"', "location": "https://h/Users/1", "status": "201"},
        {"method": "DELETE", "location": "https://h/Users/x", "status": "404",
         "response": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404",
                      "detail": "User x not found"}},
    ]
