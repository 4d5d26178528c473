"""Log in and out with a session (CSRF enforced), brute force throttled."""

import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD, make_org, make_user


def test_login_logout_and_csrf_on_session_writes(db):
    user = make_user("grace@example.com")
    org = make_org(user, slug="navy")
    client = APIClient(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/auth/login/", {"email": "GRACE@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    csrf = response.json()["csrf_token"]
    assert response.json()["organizations"][0]["slug"] == "navy"

    # A session write without the CSRF token is refused; with it, it goes through.
    assert client.patch(f"/api/v1/orgs/{org.slug}/", {"name": "Navy"}, format="json").status_code == 403
    ok = client.patch(f"/api/v1/orgs/{org.slug}/", {"name": "Navy"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert ok.status_code == 200

    assert client.post("/api/v1/auth/logout/", HTTP_X_CSRFTOKEN=csrf).status_code == 204
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_wrong_password_is_400_with_a_clear_message(api, db):
    make_user("alan@example.com")
    response = api.post(
        "/api/v1/auth/login/", {"email": "alan@example.com", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Email or password is wrong."


def test_login_is_throttled_against_brute_force(api, db):
    make_user("target@example.com")
    statuses = [
        api.post(
            "/api/v1/auth/login/", {"email": "target@example.com", "password": f"guess{i}"}, format="json"
        ).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [400] * 10
    assert statuses[10:] == [429, 429]
    # Even the right password waits until the window passes, and is told how long, in words.
    answer = api.post(
        "/api/v1/auth/login/", {"email": "target@example.com", "password": PASSWORD}, format="json"
    )
    assert answer.status_code == 429
    assert answer.json()["detail"].startswith("Too many"), answer.json()
    assert int(answer["Retry-After"]) > 0


def test_login_throttle_counts_per_account_across_addresses(db):
    make_user("victim@example.com")
    for i in range(10):
        client = APIClient(REMOTE_ADDR=f"10.0.0.{i + 1}")
        client.post("/api/v1/auth/login/", {"email": "victim@example.com", "password": "x"}, format="json")
    fresh = APIClient(REMOTE_ADDR="10.0.1.1")
    response = fresh.post(
        "/api/v1/auth/login/", {"email": "victim@example.com", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429


def test_signup_is_throttled(api, db, settings):
    statuses = []
    for i in range(21):
        statuses.append(
            api.post(
                "/api/v1/auth/signup/",
                {"email": f"bot{i}@example.com", "password": "weak"},
                format="json",
            ).status_code
        )
    assert statuses[-1] == 429
    assert set(statuses[:20]) == {400}
    refused = api.post(
        "/api/v1/auth/signup/", {"email": "bot@example.com", "password": "weak"}, format="json"
    )
    assert refused.json()["detail"].startswith(
        f"Too many requests: try again in {refused['Retry-After']} second"
    )


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("1234567890123", "This password is entirely numeric."),
    ],
)
def test_signup_validates_passwords_with_djangos_validators(api, db, password, message):
    response = api.post(
        "/api/v1/auth/signup/", {"email": "p@example.com", "password": password}, format="json"
    )
    assert response.status_code == 400
    assert message in response.json()["errors"]["password"]


def test_signup_without_org_name_gets_a_default(api, db):
    response = api.post(
        "/api/v1/auth/signup/", {"email": "lin@example.com", "password": "a long passphrase"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["organizations"][0]["name"] == "lin's organization"
