"""What the dashboard shows of a member's workspace besides its series: the apps with
their write keys and install snippets, the segments that can be charted, and whether
anything has been recorded yet (the page's empty state)."""

from __future__ import annotations

import html
from typing import Any

from .members import SignedIn
from .store.base import App, Store

TRACKER_PATH = "/js/sessiontally.js"
MAX_SEGMENTS = 1000


def install_snippet(app: App, base_url: str) -> str:
    """The tag a web page embeds to send its pages and events to ``app``."""
    source = html.escape(base_url.rstrip("/") + TRACKER_PATH)
    return f'<script src="{source}" data-write-key="{html.escape(app.write_key)}"></script>'


def context(store: Store, signed: SignedIn, base_url: str) -> dict[str, Any]:
    workspace = signed.workspace
    apps = store.list_apps(workspace.workspace_id)
    segments = store.list_segments(workspace.workspace_id, 0, MAX_SEGMENTS, False)
    return {
        "workspace": {"name": workspace.name, "time_zone": workspace.time_zone},
        "member": {"email": signed.member.email},
        "apps": [
            {"app_id": app.app_id, "name": app.name, "platform": app.platform,
             "write_key": app.write_key, "snippet": install_snippet(app, base_url)}
            for app in apps
        ],
        "segments": [
            {"segment_id": segment.segment_id, "name": segment.name,
             "tracked": segment.analytics_enabled}
            for segment in segments
        ],
        "has_data": store.has_sessions(workspace.workspace_id),
    }
