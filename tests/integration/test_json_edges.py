"""Inputs at the edge of JSON: the parser refuses them with 400."""

import pytest


@pytest.mark.parametrize("raw", [b"Infinity", b"NaN", b"-Infinity", b'{"email": NaN}', b"[Infinity]"])
def test_non_standard_json_numbers_are_400(api, db, raw):
    response = api.generic("POST", "/api/v1/auth/signup/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
