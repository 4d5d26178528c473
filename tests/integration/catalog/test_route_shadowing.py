"""A route's `shadowed_by` (read only): the paths of it no request reaches, because a route the
gateways try first (a higher priority; in one priority, a route matched as a rule with a lower
id) matches every one of those requests by a prefix of the path and the same or wider hosts,
methods and headers. The console warns with it."""

import pytest

from tests.factories import build_catalog

pytestmark = pytest.mark.django_db


def _route(cw, name: str, *paths: str, **fields) -> dict:
    body = {
        "name": name,
        "service": "orders-api",
        "paths": [
            {"type": kind, "value": value}
            for kind, value in (p.split(" ", 1) if " " in p else ("prefix", p) for p in paths)
        ],
        **fields,
    }
    answer = cw.client().post(cw.url("routes/"), body, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _shadowed(cw) -> dict[str, list[tuple[str, str, str]]]:
    listed = cw.client().get(cw.url("routes/?page_size=200")).json()["results"]
    return {
        route["name"]: [(s["path"], s["route"], s["by_path"]) for s in route["shadowed_by"]]
        for route in listed
    }


def test_a_higher_priority_prefix_hides_the_paths_it_covers(cw):
    build_catalog(cw.client(), cw.url)  # list-orders: GET /orders, priority 0
    catch_all = _route(cw, "catch-all", "/", priority=10)
    narrow = _route(cw, "order-items", "/orders/items", "exact /orders/export", methods=["GET"], priority=5)
    found = _shadowed(cw)
    assert found["catch-all"] == []
    assert found["order-items"] == [
        ("/orders/items", "catch-all", "/"),
        ("/orders/export", "catch-all", "/"),
    ]
    assert found["list-orders"] == [("/orders", "catch-all", "/")]
    # The field comes with one route too, and with what a write answers.
    one = cw.client().get(cw.url(f"routes/{narrow['id']}/")).json()
    assert one["shadowed_by"][0] == {
        "path": "/orders/items",
        "path_type": "prefix",
        "route_id": catch_all["id"],
        "route": "catch-all",
        "priority": 10,
        "by_path": "/",
        "by_path_type": "prefix",
    }
    assert catch_all["shadowed_by"] == []


def test_narrower_hosts_methods_or_headers_hide_nothing(cw):
    build_catalog(cw.client(), cw.url)  # list-orders: GET /orders, any host, priority 0
    _route(cw, "host-only", "/orders", hosts=["api.example.com"], priority=5)
    _route(cw, "post-only", "/orders", methods=["POST"], priority=6)
    _route(cw, "tenant-only", "/", headers=[{"name": "X-Tenant", "value": "acme"}], priority=7)
    _route(cw, "regex", "regex ^/.*$", priority=8)  # regexes are not analysed
    assert _shadowed(cw)["list-orders"] == []

    # Wider ones do: any method over GET, a wildcard over a host it covers, fewer header conditions.
    _route(cw, "shop", "/shop", hosts=["*.example.com"], methods=["GET", "POST"], priority=3)
    _route(
        cw,
        "shop-cart",
        "/shop/cart",
        hosts=["eu.example.com"],
        methods=["GET"],
        headers=[{"name": "X-Tenant", "value": "acme"}],
    )
    _route(cw, "shop-apex", "/shop/cart", hosts=["example.com"], methods=["GET"])
    found = _shadowed(cw)
    assert found["shop-cart"] == [("/shop/cart", "shop", "/shop")]
    assert found["shop-apex"] == []  # *.example.com does not match example.com itself


def test_in_one_priority_only_rules_tried_in_id_order_hide_each_other(cw):
    build_catalog(cw.client(), cw.url)
    # Both without hosts or headers: maps, the longest prefix wins, nothing is hidden.
    _route(cw, "shorter", "/api")
    _route(cw, "longer", "/api/v2")
    # Both with hosts: rules tried by id, the first one's prefix wins.
    _route(cw, "first-rule", "/admin", hosts=["api.example.com"])
    _route(cw, "second-rule", "/admin/users", hosts=["api.example.com"])
    found = _shadowed(cw)
    assert found["longer"] == []
    assert found["second-rule"] == [("/admin/users", "first-rule", "/admin")]
    assert found["first-rule"] == []
