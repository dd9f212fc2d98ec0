"""Discovery endpoints tell the truth and come from the validating schema definitions."""

from __future__ import annotations

from scim_bridge.app import create_app
from scim_bridge.scim import schema as s


def test_service_provider_config(scim, settings):
    body = scim.get("/ServiceProviderConfig").get_json()
    assert body["schemas"] == [s.SPC_SCHEMA]
    assert body["filter"] == {"supported": True, "maxResults": settings.max_page_size}
    assert body["patch"]["supported"] is True
    assert body["sort"]["supported"] is True and body["etag"]["supported"] is True
    assert body["bulk"] == {"supported": True, "maxOperations": settings.bulk_max_operations,
                            "maxPayloadSize": min(settings.bulk_max_payload_bytes, settings.max_request_bytes)}
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types(scim):
    body = scim.get("/ResourceTypes").get_json()
    assert body["totalResults"] == 2
    by_id = {r["id"]: r for r in body["Resources"]}
    assert by_id["User"]["endpoint"] == "/Users" and by_id["User"]["schema"] == s.USER_SCHEMA
    assert by_id["User"]["schemaExtensions"] == [{"schema": s.ENTERPRISE_USER_SCHEMA, "required": False},
                                                 {"schema": s.INFINITY_USER_SCHEMA, "required": False}]
    assert by_id["Group"]["schema"] == s.GROUP_SCHEMA
    assert by_id["Group"]["schemaExtensions"] == [{"schema": s.INFINITY_GROUP_SCHEMA, "required": False}]
    assert scim.get("/ResourceTypes/Group").get_json()["id"] == "Group"
    assert scim.get("/ResourceTypes/Nope").status_code == 404


def test_schemas(scim):
    body = scim.get("/Schemas").get_json()
    ids = {r["id"] for r in body["Resources"]}
    assert ids == {s.USER_SCHEMA, s.GROUP_SCHEMA, s.ENTERPRISE_USER_SCHEMA, s.INFINITY_USER_SCHEMA,
                   s.INFINITY_GROUP_SCHEMA}
    user = scim.get(f"/Schemas/{s.USER_SCHEMA}").get_json()
    attrs = {a["name"]: a for a in user["attributes"]}
    assert attrs["userName"]["uniqueness"] == "server" and attrs["userName"]["caseExact"] is False
    assert attrs["password"]["returned"] == "never" and attrs["password"]["mutability"] == "writeOnly"
    assert attrs["groups"]["mutability"] == "readOnly"
    assert {a["name"] for a in attrs["emails"]["subAttributes"]} == {"value", "display", "type", "primary"}
    assert scim.get("/Schemas/urn:nope").status_code == 404


def test_discovery_requires_token_by_default(client):
    assert client.get("/scim/v2/ServiceProviderConfig").status_code == 401


def test_discovery_public_when_configured(settings, storage):
    app = create_app(settings.replace(discovery_public=True), storage=storage)
    client = app.test_client()
    for path in ("/scim/v2/ServiceProviderConfig", "/scim/v2/ResourceTypes", "/scim/v2/Schemas"):
        assert client.get(path).status_code == 200
    assert client.get("/scim/v2/Users").status_code == 401


def test_unknown_route_and_wrong_method_are_scim_errors(scim):
    response = scim.get("/Nope")
    assert response.status_code == 404 and response.get_json()["status"] == "404"
    response = scim.request("DELETE", "/ServiceProviderConfig")
    assert response.status_code == 405 and response.get_json()["status"] == "405"
    response = scim.request("PATCH", "/Users")
    assert response.status_code == 405 and response.mimetype == "application/scim+json"
