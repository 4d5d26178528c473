"""A real OpenID Provider for the single sign-on tests: oidc-provider (OpenID Certified), started
by provider.mjs on a loopback port with one client. `make test` installs its npm packages
(`npm ci` in this folder).

The test says who the provider's people are (`set_account`: email, email_verified, groups), and
may change them between sign-ins; it holds the provider's signing key too, so it can also sign ID
tokens as the provider would, with a claim changed, to prove each check refuses them."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from saas.launcher.services import free_port

HERE = Path(__file__).resolve().parent
SIGNING_KEY_ID = "test-signing-key"


@dataclass
class OidcProvider:
    """The provider process and what the test set it up with."""

    folder: Path
    redirect_uris: list[str]
    claims_in_id_token: bool = False
    client_id: str = "gateway-cloud"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": SIGNING_KEY_ID, "use": "sig", "alg": "RS256"}, private=True
        )
    )
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def _accounts_file(self) -> Path:
        return self.folder / "accounts.json"

    def set_account(
        self,
        login: str,
        email: str,
        *,
        groups: list[str] | None = None,
        email_verified: bool = True,
        name: str = "",
    ) -> None:
        """Someone who can sign in at the provider by typing `login` (their subject)."""
        self.accounts[login] = {
            "email": email,
            "email_verified": email_verified,
            "name": name or email.split("@")[0].title(),
            "groups": groups or [],
        }
        self._accounts_file.write_text(json.dumps(self.accounts))

    def start(self) -> None:
        if not (HERE / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(
                "The test provider's packages are missing: `make test` installs them (npm ci in tests/oidc_provider)."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._accounts_file.write_text(json.dumps(self.accounts))
        key_file = self.folder / "signing-key.json"
        key_file.write_text(json.dumps(self.key.as_dict(private=True)))
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_CLIENT_SECRET": self.client_secret,
            "OIDC_REDIRECT_URIS": ",".join(self.redirect_uris),
            "OIDC_ACCOUNTS_FILE": str(self._accounts_file),
            "OIDC_SIGNING_KEY": str(key_file),
            "OIDC_CLAIMS_IN_ID_TOKEN": "1" if self.claims_in_id_token else "0",
        }
        log = (self.folder / "provider.log").open("ab")
        self.process = subprocess.Popen(
            ["node", str(HERE / "provider.mjs")], cwd=HERE, env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the OpenID provider stopped: {(self.folder / 'provider.log').read_text()}"
                )
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the OpenID provider did not start in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None) -> str:
        """An ID token with these claims, signed with the provider's key (or another one)."""
        signing = key or self.key
        return jwt.encode({"alg": "RS256", "kid": signing.kid}, claims, signing)
