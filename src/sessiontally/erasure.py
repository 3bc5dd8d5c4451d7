"""Erasing users on request (issue 20 item 2): ``POST /users/delete`` in Braze's shape and
``sessiontally user delete``. Each user goes in one store transaction with every count it
contributed (``Store.erase_user``; docs/architecture.md, "Erasing a user"). Knows nothing
of HTTP."""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput
from .store.base import Classifier, Store, Workspace

MAX_IDS = 50  # external ids per request, as Braze's /users/delete
MAX_EXTERNAL_ID = 997  # the length POST /sessions/track accepts
UNSUPPORTED = ("user_aliases", "braze_ids")


def check_external_id(value: Any) -> str:
    """An external id as recording accepts one; InvalidInput otherwise."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_EXTERNAL_ID:
        raise InvalidInput(f"an external id must be a string of 1 to {MAX_EXTERNAL_ID} characters")
    if "\x00" in value:
        raise InvalidInput("an external id must not contain NUL (U+0000) characters")
    return value


def external_ids_of(body: Any) -> list[str]:
    """The ids of a ``/users/delete`` body, in order, once each; InvalidInput naming what
    is wrong (the request then erases nobody)."""
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object with 'external_ids'")
    for part in UNSUPPORTED:
        if part in body:
            raise InvalidInput(f"'{part}' is not supported: name users by 'external_ids'")
    ids = body.get("external_ids")
    if not isinstance(ids, list) or not ids:
        raise InvalidInput("'external_ids' must be a non-empty array of strings")
    if len(ids) > MAX_IDS:
        raise InvalidInput(f"'external_ids' may hold at most {MAX_IDS} ids")
    try:
        checked = [check_external_id(value) for value in ids]
    except InvalidInput as exc:
        raise InvalidInput(f"'external_ids': {exc}") from None
    return list(dict.fromkeys(checked))


def erase(store: Store, workspace: Workspace, external_id: str, classify: Classifier | None) -> bool:
    """Erase one user of the workspace; whether anything of it was stored."""
    return store.erase_user(workspace.workspace_id, check_external_id(external_id), classify)


def delete_users(
    store: Store, workspace: Workspace, body: Any, classify: Classifier | None
) -> dict[str, Any]:
    """Apply a ``/users/delete`` body; the 201 body. ``deleted`` counts the users of which
    something was stored (a second request for the same ids deletes 0)."""
    deleted = sum(erase(store, workspace, external_id, classify) for external_id in external_ids_of(body))
    return {"deleted": deleted, "message": "success"}
