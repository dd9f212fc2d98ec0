"""SCIM schema definitions (RFC 7643 §4, §8.7) as data.

The same definitions drive request validation, response projection (``attributes`` /
``excludedAttributes``), filter attribute resolution and the ``/Schemas`` discovery endpoint,
so what the server advertises is what it enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# The project's own extensions: how a Group maps onto an Infinity organization, and what a User
# resolves to (org, orgs, role). Namespace: urn:scim-bridge:params:scim:schemas:extension:infinity.
INFINITY_GROUP_SCHEMA = "urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:Group"
INFINITY_USER_SCHEMA = "urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:User"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

# attribute types (RFC 7643 §2.3)
STRING = "string"
BOOLEAN = "boolean"
DECIMAL = "decimal"
INTEGER = "integer"
DATETIME = "dateTime"
BINARY = "binary"
REFERENCE = "reference"
COMPLEX = "complex"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute definition (RFC 7643 §7)."""

    name: str
    type: str = STRING
    multi_valued: bool = False
    description: str = ""
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()

    def sub(self, name: str) -> Attribute | None:
        """Return the sub-attribute called *name* (case-insensitive), if any."""
        lowered = name.lower()
        for attr in self.sub_attributes:
            if attr.name.lower() == lowered:
                return attr
        return None

    def to_scim(self) -> dict[str, Any]:
        """Render as an RFC 7643 §7 attribute definition."""
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            body["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            body["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            body["subAttributes"] = [a.to_scim() for a in self.sub_attributes]
        return body


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema: an id (URN), a name and its attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    _index: dict[str, Attribute] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for attr in self.attributes:
            self._index[attr.name.lower()] = attr

    def get(self, name: str) -> Attribute | None:
        """Return the top-level attribute called *name* (case-insensitive)."""
        return self._index.get(name.lower())

    def to_scim(self, location: str) -> dict[str, Any]:
        """Render as a ``/Schemas`` resource."""
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": location},
        }


def _multi(name: str, description: str, *, types: tuple[str, ...] = (), value_type: str = STRING,
           extra: tuple[Attribute, ...] = (), value_case_exact: bool = False) -> Attribute:
    """Build the usual ``value/display/type/primary`` multi-valued complex attribute."""
    subs = (
        Attribute("value", value_type, description=f"The value of the {name} entry.", case_exact=value_case_exact),
        Attribute("display", description="A human-readable name, primarily used for display purposes."),
        Attribute("type", description="A label indicating the attribute's function.", canonical_values=types),
        Attribute("primary", BOOLEAN, description="Indicates the primary or preferred value."),
    )
    return Attribute(name, COMPLEX, multi_valued=True, description=description, sub_attributes=subs + extra)


# Common attributes (RFC 7643 §3.1); not part of any schema's attribute list in /Schemas.
ID = Attribute("id", description="Unique identifier for the resource, assigned by the service provider.",
               case_exact=True, mutability="readOnly", returned="always", uniqueness="server")
EXTERNAL_ID = Attribute("externalId", description="Identifier of the resource as defined by the provisioning client.",
                        case_exact=True)
META = Attribute("meta", COMPLEX, description="Resource metadata.", mutability="readOnly", sub_attributes=(
    Attribute("resourceType", description="The name of the resource type.", case_exact=True, mutability="readOnly"),
    Attribute("created", DATETIME, description="When the resource was added.", mutability="readOnly"),
    Attribute("lastModified", DATETIME, description="When the resource was last updated.", mutability="readOnly"),
    Attribute("location", REFERENCE, description="The URI of the resource.", case_exact=True,
              mutability="readOnly", reference_types=("uri",)),
    Attribute("version", description="The version (weak ETag) of the resource.", case_exact=True,
              mutability="readOnly"),
))
COMMON_ATTRIBUTES = (ID, EXTERNAL_ID, META)

USER = Schema(USER_SCHEMA, "User", "User Account", (
    Attribute("userName", description="Unique identifier for the User, used to authenticate.",
              required=True, uniqueness="server"),
    Attribute("name", COMPLEX, description="The components of the user's real name.", sub_attributes=(
        Attribute("formatted", description="The full name, formatted for display."),
        Attribute("familyName", description="The family name (last name)."),
        Attribute("givenName", description="The given name (first name)."),
        Attribute("middleName", description="The middle name(s)."),
        Attribute("honorificPrefix", description="The honorific prefix(es), e.g. 'Ms.'."),
        Attribute("honorificSuffix", description="The honorific suffix(es), e.g. 'III'."),
    )),
    Attribute("displayName", description="The name of the User, suitable for display to end-users."),
    Attribute("nickName", description="The casual way to address the user."),
    Attribute("profileUrl", REFERENCE, description="A URI of the user's online profile.",
              reference_types=("external",)),
    Attribute("title", description="The user's title, such as 'Vice President'."),
    Attribute("userType", description="The relationship between the organization and the user."),
    Attribute("preferredLanguage", description="Preferred written or spoken language (RFC 7231 §5.3.5)."),
    Attribute("locale", description="Default location for localization (e.g. 'en-US')."),
    Attribute("timezone", description="Time zone in IANA format, e.g. 'America/Los_Angeles'."),
    Attribute("active", BOOLEAN, description="The user's administrative status."),
    Attribute("password", description="The user's cleartext password; write-only, stored hashed.",
              mutability="writeOnly", returned="never"),
    _multi("emails", "Email addresses for the user.", types=("work", "home", "other")),
    _multi("phoneNumbers", "Phone numbers for the user.", types=("work", "home", "mobile", "fax", "pager", "other")),
    _multi("ims", "Instant messaging addresses for the user.",
           types=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
    _multi("photos", "URLs of photos of the user.", types=("photo", "thumbnail"), value_type=REFERENCE,
           value_case_exact=True),
    Attribute("addresses", COMPLEX, multi_valued=True, description="A physical mailing address for this user.",
              sub_attributes=(
                  Attribute("formatted", description="The full mailing address, formatted for display."),
                  Attribute("streetAddress", description="The full street address component."),
                  Attribute("locality", description="The city or locality component."),
                  Attribute("region", description="The state or region component."),
                  Attribute("postalCode", description="The zip code or postal code component."),
                  Attribute("country", description="The country name component (ISO 3166-1 alpha-2)."),
                  Attribute("type", description="A label indicating the attribute's function.",
                            canonical_values=("work", "home", "other")),
                  Attribute("primary", BOOLEAN, description="Indicates the primary or preferred address."),
              )),
    Attribute("groups", COMPLEX, multi_valued=True, mutability="readOnly",
              description="Groups to which the user belongs, computed from group memberships.", sub_attributes=(
                  Attribute("value", description="The id of the Group.", mutability="readOnly", case_exact=True),
                  Attribute("$ref", REFERENCE, description="The URI of the Group.", mutability="readOnly",
                            reference_types=("Group",), case_exact=True),
                  Attribute("display", description="The displayName of the Group.", mutability="readOnly"),
                  Attribute("type", description="'direct' or 'indirect'.", mutability="readOnly",
                            canonical_values=("direct", "indirect")),
              )),
    _multi("entitlements", "Entitlements of the user."),
    _multi("roles", "Roles of the user."),
    _multi("x509Certificates", "X.509 certificates issued to the user (DER, base64).", value_type=BINARY,
           value_case_exact=True),
))

ENTERPRISE_USER = Schema(ENTERPRISE_USER_SCHEMA, "EnterpriseUser", "Enterprise User", (
    Attribute("employeeNumber", description="Numeric or alphanumeric identifier assigned to a person."),
    Attribute("costCenter", description="Identifies the name of a cost center."),
    Attribute("organization", description="Identifies the name of an organization."),
    Attribute("division", description="Identifies the name of a division."),
    Attribute("department", description="Identifies the name of a department."),
    Attribute("manager", COMPLEX, description="The user's manager.", sub_attributes=(
        Attribute("value", description="The id of the manager's User resource.", case_exact=True),
        Attribute("$ref", REFERENCE, description="The URI of the manager's User resource.",
                  reference_types=("User",), case_exact=True),
        # Computed from the referenced user; returned only on request so that a client which
        # wrote manager.value reads back exactly what it wrote (RFC 7643 §7 "returned").
        Attribute("displayName", description="The displayName of the manager (computed).", mutability="readOnly",
                  returned="request"),
    )),
))

GROUP = Schema(GROUP_SCHEMA, "Group", "Group", (
    Attribute("displayName", description="A human-readable name for the Group.", required=True,
              uniqueness="server"),
    Attribute("members", COMPLEX, multi_valued=True, description="A list of members of the Group.",
              sub_attributes=(
                  Attribute("value", description="Identifier of the member.", mutability="immutable",
                            case_exact=True),
                  Attribute("$ref", REFERENCE, description="The URI of the member resource.",
                            mutability="immutable", reference_types=("User", "Group"), case_exact=True),
                  Attribute("display", description="The member's display name, as the client sent it.",
                            mutability="immutable"),
                  Attribute("type", description="'User' or 'Group'.", mutability="immutable",
                            canonical_values=("User", "Group")),
              )),
))


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type (RFC 7643 §6): a core schema plus extensions, served at an endpoint."""

    id: str
    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()

    def schema_ids(self) -> list[str]:
        """Return the core schema URN followed by every extension URN."""
        return [self.schema.id, *(ext.id for ext, _ in self.extensions)]

    def extension(self, urn: str) -> Schema | None:
        """Return the extension schema with URN *urn* (case-insensitive), if declared."""
        for ext, _required in self.extensions:
            if ext.id.lower() == urn.lower():
                return ext
        return None

    def to_scim(self, location: str, schema_location: str) -> dict[str, Any]:
        """Render as a ``/ResourceTypes`` resource."""
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": [{"schema": ext.id, "required": req} for ext, req in self.extensions],
            "meta": {"resourceType": "ResourceType", "location": location},
        }


INFINITY_GROUP = Schema(INFINITY_GROUP_SCHEMA, "InfinityGroup", "The Infinity organization a Group maps onto", (
    # The one writable attribute: an input an identity provider may push (e.g. an Entra custom
    # attribute mapping), from which a mapping profile may take the org's orgId.
    Attribute("iamOrgId", description="The IAM org ID as the identity provider sends it; a mapping profile may "
                                      "derive the organization's orgId from it.", case_exact=True),
    Attribute("orgId", description="The Org ID of the Infinity organization this group is linked to.",
              case_exact=True, mutability="readOnly", returned="request"),
    Attribute("orgName", description="The name of the linked Infinity organization.", mutability="readOnly",
              returned="request"),
    Attribute("managed", BOOLEAN, mutability="readOnly", returned="request",
              description="True when the organization was created from this group by the identity provider; "
                          "false when the group was linked to an organization an admin created."),
    Attribute("orphaned", BOOLEAN, mutability="readOnly", returned="request",
              description="True when the group no longer maps onto the organization under the tenant's mapping "
                          "profile; the organization was kept (detached)."),
))

INFINITY_USER = Schema(INFINITY_USER_SCHEMA, "InfinityUser", "What a User resolves to in Infinity", (
    # The one writable attribute: the IAM org ID an identity provider may push on the user itself
    # (e.g. an Okta or Entra custom attribute); stored verbatim, filterable, and a variable.
    Attribute("iamOrgId", description="The IAM org ID as the identity provider sends it on the user; offered "
                                      "to Infinity as the variable iam_org_id.", case_exact=True),
    Attribute("orgId", description="The Org ID of the user's primary Infinity organization.", case_exact=True,
              mutability="readOnly", returned="request"),
    Attribute("orgIds", multi_valued=True, description="The Org IDs of every organization the user is in.",
              case_exact=True, mutability="readOnly", returned="request"),
    Attribute("role", description="The user's Infinity role (Owner, Admin, Editor, Viewer or a custom role).",
              case_exact=True, mutability="readOnly", returned="request"),
    Attribute("primaryOrgConflict", BOOLEAN, mutability="readOnly", returned="request",
              description="True when the user is in several mapped groups but may have only one organization; "
                          "orgId is then the one the mapping profile's precedence picked."),
))

USER_RESOURCE = ResourceType("User", "User", "/Users", "User Account", USER,
                             ((ENTERPRISE_USER, False), (INFINITY_USER, False)))
GROUP_RESOURCE = ResourceType("Group", "Group", "/Groups", "Group (an Infinity organization when mapped)", GROUP,
                              ((INFINITY_GROUP, False),))
RESOURCE_TYPES: tuple[ResourceType, ...] = (USER_RESOURCE, GROUP_RESOURCE)
SCHEMAS: tuple[Schema, ...] = (USER, GROUP, ENTERPRISE_USER, INFINITY_USER, INFINITY_GROUP)


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """An attribute path resolved against a resource type.

    ``schema`` is the URN that owns the attribute, ``attribute`` the top-level definition, and
    ``sub`` the sub-attribute (for ``name.givenName``) or ``None``.
    """

    schema: str
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def leaf(self) -> Attribute:
        """Return the definition the path ends at."""
        return self.sub or self.attribute

    @property
    def dotted(self) -> str:
        """Return the canonical ``attr.sub`` spelling (without the schema URN)."""
        return f"{self.attribute.name}.{self.sub.name}" if self.sub else self.attribute.name


def resolve(resource_type: ResourceType, schema_urn: str | None, attr: str, sub: str | None) -> ResolvedPath | None:
    """Resolve ``[urn:]attr[.sub]`` against *resource_type*, case-insensitively; ``None`` if unknown."""
    if schema_urn:
        if schema_urn.lower() == resource_type.schema.id.lower():
            owner = resource_type.schema
        else:
            ext = resource_type.extension(schema_urn)
            if ext is None:
                return None
            owner = ext
        definition = owner.get(attr)
        if definition is None and owner is resource_type.schema:
            definition = _common(attr)
    else:
        owner = resource_type.schema
        definition = _common(attr) or owner.get(attr)
    if definition is None:
        return None
    if sub is None:
        return ResolvedPath(owner.id, definition, None)
    sub_def = definition.sub(sub)
    if sub_def is None:
        return None
    return ResolvedPath(owner.id, definition, sub_def)


def _common(name: str) -> Attribute | None:
    lowered = name.lower()
    for attr in COMMON_ATTRIBUTES:
        if attr.name.lower() == lowered:
            return attr
    return None
