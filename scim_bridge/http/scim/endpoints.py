"""``/Users`` and ``/Groups``: the resource routes, bound to their services."""

from __future__ import annotations

from scim_bridge.domain.groups import GroupService
from scim_bridge.domain.groups import group_read
from scim_bridge.domain.users import UserService
from scim_bridge.domain.users import keyed_user_read
from scim_bridge.domain.users import rendered_user_read
from scim_bridge.http import context
from scim_bridge.http.scim import bp
from scim_bridge.http.scim.resources import ReadPlans
from scim_bridge.http.scim.resources import register_resource
from scim_bridge.scim.schema import GROUP_RESOURCE
from scim_bridge.scim.schema import USER_RESOURCE
from scim_bridge.storage.session import get_session


def user_service() -> UserService:
    """Return the user service of the current request's tenant, with its mapping profile."""
    token = context.tenant()
    return UserService(get_session(), token.tenant_id, context.scim_base_url(), context.resource_options(token),
                       profile=context.tenant_profile(token), request_id=context.current_request_id())


def group_service() -> GroupService:
    """Return the group service of the current request's tenant, with its mapping profile."""
    token = context.tenant()
    return GroupService(get_session(), token.tenant_id, context.scim_base_url(), context.resource_options(token),
                        profile=context.tenant_profile(token), request_id=context.current_request_id())


register_resource(bp, USER_RESOURCE, user_service,
                  ReadPlans(get=rendered_user_read, list=keyed_user_read),
                  creates_together=True)
# A group's PATCH answers 204 unless the client asks for the group (its answer would be every member).
register_resource(bp, GROUP_RESOURCE, group_service, ReadPlans(get=lambda group_id, *_: group_read(group_id)),
                  patch_answers_no_content=True)
