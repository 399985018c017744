"""The served page against hostile pages and hostile input, on a real uvicorn server: only this
computer's page may ask, bodies are refused at their limit before they are read, and no input
(fuzzed from the app's OpenAPI schema by schemathesis) gives a 5xx or an answer outside the schema."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serving import local_server, page_image

from netscope.serve.app import create_app
from netscope.serve.schema import MAX_JSON_DEPTH, max_body_bytes


@pytest.fixture(scope="module")
def app(lecture_run, mnist):
    return create_app(lecture_run.path, mnist)


@pytest.fixture(scope="module")
def url(app) -> str:
    with local_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def port(url) -> int:
    return urlsplit(url).port


def test_host_must_name_this_server(url, port):
    def status(host: str, path: str = "api/info") -> int:
        return httpx.get(f"{url}{path}", headers={"Host": host}).status_code

    for evil in ["evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1"]:
        assert status(evil) == 400 and status(evil, "") == 400  # DNS rebinding reads nothing
    for host in [f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"]:
        assert status(host) == 200 and status(host, "") == 200
    refused = httpx.get(f"{url}api/test-image?index=0", headers={"Host": "evil.example"})
    assert "this server" in refused.json()["detail"] and "label" not in refused.text


def test_post_from_another_site_is_refused(url, port, mnist):
    body = {"image": page_image(mnist, 0), "layers": []}

    def status(origin: str | None) -> int:
        headers = {} if origin is None else {"Origin": origin}
        return httpx.post(f"{url}api/predict", json=body, headers=headers).status_code

    for evil in [
        "http://evil.example",
        "null",
        f"http://localhost:{port + 1}",
        "https://127.0.0.1",
    ]:
        assert status(evil) == 403
    for same in [f"http://127.0.0.1:{port}", f"http://localhost:{port}", None]:  # None: curl
        assert status(same) == 200
    assert httpx.get(f"{url}api/info", headers={"Origin": "http://evil.example"}).status_code == 200


def raw_reply(port: int, head: bytes, chunks: list[bytes]) -> bytes:
    """Returns the server's answer (status line to the end of its body) to a request sent as
    `head` then `chunks`, read without waiting for the connection to close."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < int(
            reply.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0]
        ):
            reply += sock.recv(4096) or b"(closed)"
        return reply


def test_bodies_over_the_limit_are_refused_before_they_end(app, port):
    limit = max_body_bytes(app.state.lab.run.image_shape)
    head = f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "Content-Type: application/json\r\n"
    # claims 100 MB and sends none of it: refused on the header alone
    reply = raw_reply(port, f"{head}Content-Length: 100000000\r\n\r\n".encode(), [])
    assert reply.startswith(b"HTTP/1.1 413")
    # chunked, no length: refused once the chunks pass the limit, though the body never ends
    chunk = b"0," * 8192
    chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (limit // len(chunk) + 1)
    reply = raw_reply(port, f"{head}Transfer-Encoding: chunked\r\n\r\n".encode(), chunks)
    assert reply.startswith(b"HTTP/1.1 413") and f"max {limit} bytes".encode() in reply


def test_deep_json_is_refused_before_it_is_parsed(url, mnist):
    deep = '{"image": ' + "[" * 20_000 + "]" * 20_000 + "}"  # beyond json's recursion limit
    response = httpx.post(f"{url}api/predict", content=deep)
    assert response.status_code == 422 and f"deeper than {MAX_JSON_DEPTH}" in response.text
    brackets_in_a_string = {"image": page_image(mnist, 0), "checkpoint": "[" * 100}
    response = httpx.post(f"{url}api/predict", json=brackets_in_a_string)
    assert response.status_code == 404 and "unknown checkpoint" in response.text
    assert httpx.get(f"{url}api/info").status_code == 200  # and the server carries on


def sharpen(openapi: dict, lab) -> dict:
    """Returns the app's OpenAPI schema with the run's image shape, checkpoints and layers in
    place of "any list" and "any string", so that valid requests (which reach the models) are
    generated too: a random list is never a 1×28×28 image."""
    c, h, w = lab.run.image_shape
    pixel = {"type": "number", "minimum": 0, "maximum": 1}
    row = {"type": "array", "items": pixel, "minItems": w, "maxItems": w}
    grey = {"type": "array", "items": row, "minItems": h, "maxItems": h}
    image = {"type": "array", "items": grey, "minItems": c, "maxItems": c}
    for model in openapi["components"]["schemas"].values():
        fields = model.get("properties", {})
        if "image" in fields and "checkpoint" in fields:  # the request bodies
            fields["image"] = {"anyOf": [image, grey] if c == 1 else [image]}
            fields["checkpoint"] = {"enum": lab.checkpoints}
        if "layers" in fields:
            fields["layers"] = {"type": "array", "items": {"enum": lab.layers}}
    return openapi


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzed_requests_get_no_5xx_and_answers_that_fit_the_schema(app, url, mode):
    schema = schemathesis.openapi.from_dict(sharpen(app.openapi(), app.state.lab))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6  # every endpoint: info, test-image, the models and growth

    for operation in operations:
        if mode == GenerationMode.NEGATIVE and not (operation.query or operation.body):
            continue  # nothing to send wrong

        @given(case=operation.as_strategy(mode))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_fit(case):
            case.call_and_validate(base_url=url.rstrip("/"), checks=CHECKS)

        answers_fit()
