"""The portal's routes take cross-origin calls from the portal's own pages (the documentation's
try-it panel calls the gateway from the browser): the portal writes a `cors` on each route a
version covers, for its origins (the control plane's address, its custom host name) and the
headers the product's calls send, merged into what the team set, and takes it back when no
version covers the route any more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_context
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from saas.gateways.models import ConfigSnapshot
from saas.gateways.snapshots import snapshot_document
from tenants.roles import Role
from tests.factories import CatalogWorld

PETSTORE = Path(__file__).resolve().parents[2] / "data" / "openapi" / "petstore-v3.yaml"
PUBLIC = "https://cloud.acme.test"
EXPOSED = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]
# The product's key header, a request body's type, and the header deletePet's document declares.
HEADERS = ["apikey", "Content-Type", "api_key"]
TEAMS = ("findPetsByStatus", "getInventory")  # the routes with the team's own cors


@pytest.fixture(autouse=True)
def public_url(settings: Settings) -> None:
    settings.PUBLIC_URL = PUBLIC


def portal_cors(*origins: str) -> dict[str, Any]:
    return {
        "allow_origins": list(origins or [PUBLIC]),
        "allow_headers": HEADERS,
        "expose_headers": EXPOSED,
        "max_age": 600,
    }


class Team:
    """The team's side through the API: the catalog of cluster A and its portal."""

    def __init__(self, cw: CatalogWorld) -> None:
        self.cw = cw
        self.client: APIClient = cw.client(Role.ADMIN)
        self.portal = f"/api/v1/orgs/{cw.world.a.org.slug}/portal/"

    def ok(self, answer: Any, status: int = 200) -> Any:
        assert answer.status_code == status, answer.content
        return answer.json() if answer.content else None

    def import_petstore(self) -> None:
        self.ok(
            self.client.post(
                self.cw.url("openapi-import/?service=petstore"),
                PETSTORE.read_text(),
                content_type="application/yaml",
            ),
            201,
        )

    def routes(self) -> dict[str, dict[str, Any]]:
        listed = self.ok(self.client.get(self.cw.url("routes/?page_size=200")))
        return {route["name"]: route for route in listed["results"]}

    def set_route_plugins(self, name: str, plugins: dict[str, Any]) -> None:
        route_id = self.routes()[name]["id"]
        self.ok(self.client.patch(self.cw.url(f"routes/{route_id}/"), {"plugins": plugins}, format="json"))

    def product(self, name: str = "Petstore", auth_type: str = "key-auth") -> int:
        made = self.client.post(
            f"{self.portal}products/",
            {"name": name, "auth_type": auth_type, "published": True},
            format="json",
        )
        return int(self.ok(made, 201)["id"])

    def version(self, product: int, name: str = "v1", **fields: Any) -> dict[str, Any]:
        body = {"name": name, "cluster_id": self.cw.cluster_id, **fields}
        return self.ok(
            self.client.post(f"{self.portal}products/{product}/versions/", body, format="json"), 201
        )

    def change_version(self, product: int, version: dict[str, Any], **fields: Any) -> None:
        body = {"name": version["name"], "cluster_id": self.cw.cluster_id, **fields}
        url = f"{self.portal}products/{product}/versions/{version['id']}/"
        self.ok(self.client.put(url, body, format="json"))

    def delete_version(self, product: int, version: dict[str, Any]) -> None:
        self.ok(self.client.delete(f"{self.portal}products/{product}/versions/{version['id']}/"), 204)

    def settings(self, **changes: Any) -> None:
        self.ok(self.client.patch(f"{self.portal}settings/", changes, format="json"))

    def served(self) -> dict[str, dict[str, Any]]:
        """Each route's plugins in the cluster's latest snapshot (what the gateways get)."""
        with schema_context(self.cw.world.a.org.schema_name):
            latest = ConfigSnapshot.objects.filter(cluster_id=self.cw.cluster_id).order_by("-version").first()
            document = snapshot_document(latest)
        return {
            route["name"]: {plugin["name"]: plugin["config"] for plugin in route["plugins"]}
            for route in document["routes"]
        }


def test_covered_routes_take_calls_from_the_portals_origins_and_give_them_back(cw: CatalogWorld) -> None:
    team = Team(cw)
    team.import_petstore()
    # The team's own settings: cors on one route, one that lets any origin through on another.
    own = {
        "allow_origins": ["https://app.acme.test"],
        "allow_headers": ["X-Trace"],
        "allow_methods": ["POST"],
    }
    team.set_route_plugins("findPetsByStatus", {"cors": own})
    team.set_route_plugins("getInventory", {"cors": {"allow_origins": ["*"]}})
    product = team.product()
    version = team.version(product, service="petstore")

    served = team.served()
    assert served["getPetById"]["cors"] == portal_cors()
    assert served["getPetById"]["key-auth"] == {}  # the preflight is answered before it (gateway)
    # The team's cors stays theirs, with the portal's origin, headers and the route's method added.
    assert served["findPetsByStatus"]["cors"] == {
        "allow_origins": ["https://app.acme.test", PUBLIC],
        "allow_headers": ["X-Trace", *HEADERS],
        "allow_methods": ["POST", "GET"],
    }
    # Any origin, any header asked for: nothing to add.
    assert served["getInventory"]["cors"] == {"allow_origins": ["*"]}
    # Every other route of the version gets the same setting: they still share one backend.
    others = [plugins["cors"] for name, plugins in served.items() if name not in TEAMS]
    assert len(others) == len(served) - 2 and all(cors == portal_cors() for cors in others)

    # A custom host name: the portal's pages are served there too.
    team.settings(custom_host="developers.acme.test")
    served = team.served()
    assert served["getPetById"]["cors"] == portal_cors(PUBLIC, "https://developers.acme.test")
    assert served["findPetsByStatus"]["cors"]["allow_origins"] == [
        "https://app.acme.test",
        PUBLIC,
        "https://developers.acme.test",
    ]

    # A route the version leaves loses the portal's cors, and gets the team's own back.
    routes = team.routes()
    kept = [routes["getPetById"]["id"], routes["getInventory"]["id"]]
    team.change_version(product, version, route_ids=kept)
    served = team.served()
    assert "cors" not in served["addPet"]
    assert served["findPetsByStatus"]["cors"] == own
    assert served["getPetById"]["cors"] == portal_cors(PUBLIC, "https://developers.acme.test")

    # The last version gone, every route is as the team left it.
    team.delete_version(product, version)
    served = team.served()
    assert served["findPetsByStatus"]["cors"] == own
    assert served["getInventory"]["cors"] == {"allow_origins": ["*"]}
    assert not [name for name, plugins in served.items() if "cors" in plugins and name not in TEAMS]
    with schema_context(cw.world.a.org.schema_name):
        from saas.portal.models import RouteCors

        assert not RouteCors.objects.exists()


def test_a_route_two_versions_cover_keeps_the_cors_until_neither_does(cw: CatalogWorld) -> None:
    team = Team(cw)
    team.import_petstore()
    pet = team.routes()["getPetById"]["id"]
    keys = team.product("Keys")
    first = team.version(keys, route_ids=[pet])
    tokens = team.product("Tokens", auth_type="jwt-auth")
    second = team.version(tokens, route_ids=[pet, team.routes()["addPet"]["id"]])
    served = team.served()
    # The route authenticates with the first product's key-auth: that is the header it needs.
    assert served["getPetById"]["cors"]["allow_headers"] == ["apikey", "Content-Type"]
    assert served["addPet"]["cors"]["allow_headers"] == ["Authorization", "Content-Type"]

    team.delete_version(keys, first)
    assert team.served()["getPetById"]["cors"]["allow_origins"] == [PUBLIC]
    team.delete_version(tokens, second)
    assert "cors" not in team.served()["getPetById"]


def test_an_inherited_cors_is_kept_and_a_teams_edit_survives_the_portal(cw: CatalogWorld) -> None:
    team = Team(cw)
    team.import_petstore()
    services = team.ok(team.client.get(cw.url("services/")))["results"]
    inherited = {"allow_origins": ["https://app.acme.test"]}
    team.ok(
        team.client.patch(
            cw.url(f"services/{services[0]['id']}/"), {"plugins": {"cors": inherited}}, format="json"
        )
    )
    product = team.product()
    version = team.version(product, service="petstore")
    served = team.served()
    # The service's cors, which a route's own would replace whole, with the portal's origin.
    assert served["getPetById"]["cors"] == {"allow_origins": ["https://app.acme.test", PUBLIC]}

    # The team edits a covered route's cors: the edit is theirs, and stays when the route leaves.
    edited = {"allow_origins": ["https://other.acme.test"]}
    team.set_route_plugins("addPet", {**served["addPet"], "cors": edited})
    team.change_version(product, version, route_ids=[team.routes()["getPetById"]["id"]])
    served = team.served()
    assert served["addPet"]["cors"] == edited
    assert "cors" not in served["deletePet"]  # it inherits the service's again
    team.delete_version(product, version)
    assert "cors" not in team.served()["getPetById"]


def test_portal_sync_cors_writes_what_an_earlier_version_left_out(cw: CatalogWorld) -> None:
    """Routes a version covered before the portal wrote cors get it from the command, once."""
    from io import StringIO

    from django.core.management import call_command

    from saas.catalog import services as catalog
    from saas.gateways.services import Author, GatewayCluster
    from saas.portal.models import RouteCors
    from tenants.audit import Actor
    from tenants.roles import Role

    team = Team(cw)
    team.import_petstore()
    team.version(team.product(), service="petstore")
    author = Author(actor=Actor(user=cw.world.a.user(Role.OWNER)), organization=cw.world.a.org)
    route_ids = [route["id"] for route in team.routes().values()]
    with schema_context(cw.world.a.org.schema_name):  # as an earlier version left them
        cluster = GatewayCluster.objects.get(pk=cw.cluster_id)
        for route in catalog.routes_by_ids(cluster, route_ids):
            plugins = {name: config for name, config in route.plugins.items() if name != "cors"}
            catalog.save_route(author, cluster, {**catalog.route_spec(route), "plugins": plugins}, route)
        RouteCors.objects.all().delete()
    assert not [name for name, plugins in team.served().items() if "cors" in plugins]

    out = StringIO()
    call_command("portal_sync_cors", stdout=out)
    assert f"{cw.world.a.org.slug}: published production" in out.getvalue()
    served = team.served()
    assert all(plugins["cors"] == portal_cors() for plugins in served.values())
    out = StringIO()
    call_command("portal_sync_cors", stdout=out)
    assert out.getvalue().startswith("0 of ")
