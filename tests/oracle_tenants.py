"""The workspace every replaying oracle records into: a fresh workspace with one app per
session timeout (and, where asked, tracked segments), read back as stored."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sessiontally import admin
from sessiontally.store.base import App, Store, Workspace


@dataclass
class Tenant:
    workspace: Workspace
    apps: list[App]


def new_tenant(store: Store, zone: str, timeouts_s: Sequence[int],
               tracked_filters: Sequence[str] = ()) -> Tenant:
    """A workspace in ``zone``, app ``i`` cutting sessions after ``timeouts_s[i]``, and a
    tracked segment per filter."""
    ws = admin.create_workspace(store, f"ws-{uuid.uuid4().hex[:12]}", zone)
    apps = [admin.create_app(store, ws, f"app{i}") for i in range(len(timeouts_s))]
    for app, timeout in zip(apps, timeouts_s, strict=True):
        if app.session_timeout_s != timeout:
            store.update_app(ws.workspace_id, app.app_key, session_timeout_s=timeout)
    for i, filter_json in enumerate(tracked_filters):
        admin.create_segment(store, ws, f"segment {i}", filter_json, "", (), True)
    found = [store.find_app(ws.workspace_id, app.app_id) for app in apps]
    return Tenant(ws, [app for app in found if app is not None])
