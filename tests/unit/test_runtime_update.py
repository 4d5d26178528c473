"""Which changes HAProxy takes at runtime (map swaps, server weights) and which need a reload."""

import copy

from gateway_agent.protocol import Snapshot
from gateway_agent.renderer import RenderOptions, render
from gateway_agent.runtime_update import plan_runtime_update
from tests.unit.test_renderer import route_document, snapshot_document

OLD_DIR, NEW_DIR = "/var/lib/gw/versions/v1-aaa", "/var/lib/gw/versions/v2-bbb"


def rendered(document: dict, folder: str) -> dict[str, str]:
    return render(Snapshot.model_validate(document), RenderOptions(config_dir=folder))


def plan(change, before: dict | None = None) -> object:
    before = before or snapshot_document()
    after = copy.deepcopy(before)
    change(after)
    return plan_runtime_update(rendered(before, OLD_DIR), OLD_DIR, rendered(after, NEW_DIR), NEW_DIR)


def test_a_new_consumer_key_is_one_map_swap_on_the_loaded_folder():
    def add_consumer(doc):
        doc["consumers"].append(
            {
                "id": 2,
                "username": "late",
                "credentials": [{"type": "key-auth", "id": 2, "key_sha256": "cd" * 32}],
            }
        )

    update = plan(add_consumer)
    assert update is not None and update.weights == []
    [swap] = update.map_swaps
    assert swap.name == "maps/keys.map"
    assert sorted(swap.entries) == [f"{'ab' * 32} app", f"{'cd' * 32} late"]


def test_a_simple_route_fills_the_maps_it_points_into_before_the_routing_map():
    base = snapshot_document()
    base["routes"].append(route_document(3, "shop", "/shop", kind="exact", service_id=2))

    def add_route(doc):
        doc["routes"].append(route_document(4, "cart", "/cart", kind="exact", service_id=2))

    def remove_beta(doc):
        doc["routes"] = [r for r in doc["routes"] if r["id"] != 2]

    update = plan(add_route, base)
    assert update is not None
    names = [swap.name for swap in update.map_swaps]
    # Old and new backends first, then the routing map, then the backends exactly.
    assert names == ["maps/route_backend.map", "maps/routes_p0_exact.map", "maps/route_backend.map"]
    assert {"3 plain_up_2", "4 plain_up_2"} <= set(update.map_swaps[0].entries)
    assert update.map_swaps[1].entries == ["/shop 3", "/cart 4"]
    # The beta route (with a header condition) is a rule: removing it changes the configuration.
    assert plan(remove_beta, base) is None
    # The first simple route brings a new map file: a reload.
    assert plan(add_route) is None


def test_server_weights_change_at_runtime_other_settings_reload():
    def drain(doc):
        doc["upstreams"][0]["targets"][0]["weight"] = 0

    def move(doc):
        doc["upstreams"][0]["targets"][0]["port"] = 9002

    update = plan(drain)
    assert update is not None and update.map_swaps == []
    # Every backend sending to the upstream; up_1 holds its health checks, which theirs track.
    assert sorted(update.weights) == [(backend, "t0", 0) for backend in sorted(backends_to(1))] + [
        ("up_1", "t0", 0)
    ]
    assert plan(move) is None


def backends_to(upstream_id: int) -> list[str]:
    config = rendered(snapshot_document(), OLD_DIR)["haproxy.cfg"]
    return [
        line.split()[1]
        for line in config.splitlines()
        if line.startswith("backend ") and line.endswith(f"_up_{upstream_id}")
    ]


def test_plugin_and_certificate_changes_need_a_reload():
    def new_setting(doc):
        doc["services"][1]["plugins"] = [{"name": "key-auth", "config": {"header": "x-key"}}]

    def renew(doc):
        doc["certificates"][0]["not_after"] = "2031-01-01T00:00:00+00:00"
        doc["certificates"][0]["snis"] = ["api.example.com", "www.example.com"]

    assert plan(new_setting) is None
    assert plan(renew) is None


def test_nothing_changed_is_an_empty_update():
    update = plan(lambda doc: None)
    assert update is not None and update.map_swaps == [] and update.weights == []


def test_a_consumer_change_that_changes_whom_consumer_restriction_lets_through_reloads():
    """consumer-restriction's allowed names are pattern files (acl/), which HAProxy reads at start
    only: a consumers-only change that changes one goes through a reload; one that changes maps
    alone (a consumer outside every restriction) still goes through the runtime API."""
    base = snapshot_document()
    restriction = {"name": "consumer-restriction", "config": {"labels": {"portal-v1": "subscribed"}}}
    base["routes"].append(route_document(3, "portal", "/portal", plugins=[restriction]))

    def subscribe(doc):
        doc["consumers"][0]["labels"] = {"portal-v1": "subscribed"}

    def add_consumer(doc, labels: dict[str, str]):
        key = {"type": "key-auth", "id": 2, "key_sha256": "cd" * 32}
        doc["consumers"].append({"id": 2, "username": "late", "labels": labels, "credentials": [key]})

    before, after = rendered(base, OLD_DIR), copy.deepcopy(base)
    subscribe(after)
    new = rendered(after, NEW_DIR)
    # Only the allowed names changed: the configuration and every map are the same.
    assert [name for name in new if new[name] != before[name].replace(OLD_DIR, NEW_DIR)] == ["acl/cr_g0.lst"]
    assert (before["acl/cr_g0.lst"], new["acl/cr_g0.lst"]) == ("", "app\n")
    assert plan(subscribe, base) is None
    assert plan(lambda doc: add_consumer(doc, {"portal-v1": "subscribed"}), base) is None

    update = plan(lambda doc: add_consumer(doc, {"portal-v1": "trial"}), base)
    assert update is not None and [swap.name for swap in update.map_swaps] == ["maps/keys.map"]
