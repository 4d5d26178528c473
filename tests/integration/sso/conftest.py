"""The single sign-on tests' provider: a real OpenID provider (oidc-provider) on loopback, for
the module, whose redirect URI is the control plane's (the console's sign-in page)."""

from collections.abc import Iterator

import pytest

from sso.services import callback_url
from tests.oidc_provider import OidcProvider


@pytest.fixture(autouse=True)
def _http_issuer_on_loopback(settings) -> None:
    # The test provider speaks plain HTTP on 127.0.0.1: allowed only where a setting says so.
    settings.SSO_ALLOW_HTTP_ISSUER = True


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    started = OidcProvider(folder=tmp_path_factory.mktemp("oidc-provider"), redirect_uris=[callback_url()])
    started.start()
    yield started
    started.stop()
