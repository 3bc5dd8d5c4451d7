"""The OpenAPI document (api/openapi.py): valid OpenAPI 3.1, every operation with examples
that match its own schemas, and a /docs page that renders bodies and examples without
loading anything from elsewhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from sessiontally import intake
from sessiontally.api.openapi import DOCS_HTML, openapi_document
from sessiontally.store import derived

METHODS = ("get", "post", "put", "patch", "delete")


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _media_examples(media: dict[str, Any]) -> list[Any]:
    if "examples" in media:
        return [example["value"] for example in media["examples"].values()]
    if "example" in media:
        return [media["example"]]
    return []


def test_the_document_is_valid_openapi_3_1() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validator.validate(document)
    json.dumps(document)  # served as JSON: nothing that does not serialise


def test_every_operation_has_examples() -> None:
    for method, path, operation in _operations():
        where = f"{method.upper()} {path}"
        assert operation.get("summary") and operation.get("description"), where
        for parameter in operation.get("parameters", []):
            assert "example" in parameter or "examples" in parameter, (where, parameter["name"])
        if "requestBody" in operation:
            media = operation["requestBody"]["content"]["application/json"]
            assert _media_examples(media), f"{where}: request body without examples"
        for status, response in operation["responses"].items():
            media = response.get("content", {}).get("application/json")
            assert media is not None, (where, status)
            assert _media_examples(media), f"{where} {status}: response without an example"


def _validator(schema: dict[str, Any]) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    # '#/components/...' references resolve against the whole document
    root = {**schema, "components": openapi_document()["components"]}
    return jsonschema.Draft202012Validator(root)


def test_examples_match_their_schemas() -> None:
    checked = 0
    for method, path, operation in _operations():
        where = f"{method.upper()} {path}"
        for parameter in operation.get("parameters", []):
            if "example" in parameter:
                _validator(parameter["schema"]).validate(parameter["example"])
                checked += 1
        media_types = []
        if "requestBody" in operation:
            media_types.append(("request", operation["requestBody"]["content"]["application/json"]))
        for status, response in operation["responses"].items():
            media_types.append((status, response["content"]["application/json"]))
        for label, media in media_types:
            validator = _validator(media["schema"])
            for example in _media_examples(media):
                errors = [error.message for error in validator.iter_errors(example)]
                assert not errors, (where, label, errors)
                checked += 1
    assert checked > 30


def test_the_documented_errors_are_the_service_messages() -> None:
    """The examples of the refusals every endpoint shares say what the service says, and
    the 403 names the permission that the operation's description names (for the tracking
    API's write-key operations: the write-key, origin and message-limit refusals)."""
    tracked = 0
    for method, path, operation in _operations():
        if not operation.get("security", openapi_document()["security"]):
            continue
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        example = {status: response["content"]["application/json"].get("example")
                   for status, response in responses.items()}
        if operation.get("security") == [{"writeKey": []}]:
            # the tracking API: write keys, the app's origins and its message limit
            assert example["401"] == {"message": intake.INVALID_WRITE_KEY}, where
            assert example["403"] == {"message": intake.ORIGIN_REFUSED}, where
            assert example["429"] == {"message": derived.OVER_MESSAGE_LIMIT}, where
            tracked += 1
            continue
        assert example["401"] == {"message": "Invalid API key"}, where
        assert example["429"] == {"message": "Over rate limit"}, where
        permission = re.search(r"Permission `([a-z_.]+)`", operation["description"])
        assert permission, f"{where}: the description does not name the permission"
        assert example["403"] == {
            "message": f"Access Denied: this API key does not have the {permission[1]} permission"
        }, where
    assert tracked == 14, "the tracking API's 14 paths are not all described"


def test_docs_page_loads_nothing_from_other_sites() -> None:
    assert "/openapi.json" in DOCS_HTML
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", DOCS_HTML, re.IGNORECASE)
    assert not re.search(r"""fetch\(\s*["'](?:https?:)?//""", DOCS_HTML)


_RENDER = r"""
const fs = require('fs');
const html = fs.readFileSync(0, 'utf8');
const doc = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
const script = html.slice(html.indexOf('<script>') + 8, html.lastIndexOf('</script>'));
const element = {innerHTML: '', textContent: ''};
global.document = {getElementById: () => element};
global.location = {origin: 'http://127.0.0.1:8000'};
global.fetch = () => Promise.resolve({json: () => Promise.resolve(doc)});
eval(script);
setTimeout(() => { process.stdout.write(element.innerHTML || ('ERROR ' + element.textContent)); }, 50);
"""


def test_docs_page_renders_bodies_and_examples(tmp_path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the /docs script cannot be run here")
    document = openapi_document()
    # (in a file: the document is over the 128 KiB a single command-line argument may hold)
    (tmp_path / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    result = subprocess.run(
        [node, "-e", _RENDER, str(tmp_path / "openapi.json")],
        input=DOCS_HTML, capture_output=True, text=True, timeout=60, check=True,
    )
    page = result.stdout
    assert not page.startswith("ERROR"), page
    for method, path, operation in _operations():
        assert f"{method.upper()} {path}" in page
        for parameter in operation.get("parameters", []):
            assert f"<code>{parameter['name']}</code>" in page
    assert page.count("<h3>Request body</h3>") == sum(1 for *_, op in _operations() if "requestBody" in op)
    # request and response examples, as formatted JSON (escaped for HTML)
    assert "&quot;session_id&quot;: &quot;8f14e45f-ceea-4e7a-9b1c-3f1d2a7c0001&quot;" in page
    assert "&quot;sessions_processed&quot;: 1" in page
    assert "&quot;attributes_processed&quot;: 1" in page
    assert "Access Denied: this API key does not have the sessions.track permission" in page
    # nested fields of the request bodies, with their limits
    assert "<code>sessions[].started_at</code>" in page
    assert "<code>attributes[].external_id</code>" in page
    # a ready-to-paste command
    assert "curl -s -X POST &#39;http://127.0.0.1:8000/sessions/track&#39;" in page
    assert "curl -s &#39;http://127.0.0.1:8000/sessions/data_series?length=7&#39;" in page
