// A real OpenID Provider for the single sign-on tests: oidc-provider (OpenID Certified), on a
// loopback port, with one confidential client. Everything comes from the test, by environment:
//
//   OIDC_PORT            the port to listen on (127.0.0.1)
//   OIDC_ISSUER          the issuer, http://127.0.0.1:<port> (plain HTTP on loopback: tests only)
//   OIDC_CLIENT_ID       the client the control plane is, with OIDC_CLIENT_SECRET
//   OIDC_REDIRECT_URIS   its redirect URIs, comma-separated
//   OIDC_ACCOUNTS_FILE   a JSON file {"<login>": {"email", "email_verified", "name", "groups"}},
//                        read again at every use: a test changes someone's groups between sign-ins
//   OIDC_SIGNING_KEY     a JSON file holding the private JWK the ID tokens are signed with, so a
//                        test can also sign tokens the provider would (to test each claim check)
//   OIDC_CLAIMS_IN_ID_TOKEN  "1": email and groups in the ID token too, as many providers do;
//                        otherwise only at the userinfo endpoint, as OpenID Connect Core says
//
// Sign-in is oidc-provider's development interaction (a login form taking any login, and no
// consent screen for this first-party client): a test types an account's login in Chromium.
// It prints "listening" once it serves.

import { readFileSync } from "node:fs";

import Provider from "oidc-provider";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
};

const port = Number(env("OIDC_PORT"));
const issuer = env("OIDC_ISSUER");
const clientId = env("OIDC_CLIENT_ID");
const accountsFile = env("OIDC_ACCOUNTS_FILE");
const signingKey = JSON.parse(readFileSync(env("OIDC_SIGNING_KEY"), "utf8"));

const readAccounts = () => JSON.parse(readFileSync(accountsFile, "utf8"));

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: env("OIDC_CLIENT_SECRET"),
      redirect_uris: env("OIDC_REDIRECT_URIS").split(","),
      grant_types: ["authorization_code"],
      response_types: ["code"],
    },
  ],
  jwks: { keys: [signingKey] },
  // Scopes by the claims they release; `groups` is the claim the tests map to roles.
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name"],
    groups: ["groups"],
  },
  conformIdTokenClaims: process.env.OIDC_CLAIMS_IN_ID_TOKEN !== "1",
  features: { devInteractions: { enabled: true } },
  // Signs the provider's own cookies (its sign-in session: a second sign-in in the same browser
  // does not ask again, as at a real provider).
  cookies: { keys: ["oidc-provider-for-tests-only"] },
  async findAccount(ctx, sub) {
    const account = readAccounts()[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, ...account };
      },
    };
  },
  // A first-party client, as an organization's own application is: no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid email profile groups");
    grant.addOIDCClaims(["email", "email_verified", "name", "groups"]);
    await grant.save();
    return grant;
  },
  async renderError(ctx, out) {
    ctx.type = "html";
    const text = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    ctx.body = `<!DOCTYPE html><title>Error</title><h1>${text(out.error)}</h1><p>${text(out.error_description)}</p>`;
  },
};

const provider = new Provider(issuer, configuration);
provider.on("server_error", (ctx, error) => console.error("server_error", error));

provider.listen(port, "127.0.0.1", () => {
  console.log("listening");
});
