import { configure, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { MfaRequirement } from "./MfaOrganization";

configure({ asyncUtilTimeout: 5000 });
afterEach(() => vi.unstubAllGlobals());

const POLICY = "/api/v1/orgs/acme/mfa-policy/";
const NOT_YOURS = "Turn on two-factor sign-in for your own account first (Account page).";

describe("the owner's switch", () => {
  it("requires two-factor sign-in, and says how many members have not turned it on", async () => {
    let policy = { require_mfa: false, members_without_mfa: 3 };
    const calls = answerApi({
      [`GET ${POLICY}`]: () => [200, policy],
      [`PUT ${POLICY}`]: (body) => {
        policy = { require_mfa: (body as { require_mfa: boolean }).require_mfa, members_without_mfa: 3 };
        return [200, policy];
      },
    });
    renderPage(<MfaRequirement slug="acme" />, { url: "/orgs/acme/settings" });
    const region = await screen.findByRole("region", { name: "Two-factor sign-in" });
    expect(await within(region).findByText("3 members have not turned on two-factor sign-in yet.")).toBeTruthy();
    const toggle = within(region).getByRole("switch", { name: "Require two-factor sign-in" }) as HTMLInputElement;
    expect(toggle.checked).toBe(false);
    await userEvent.click(toggle);
    await vi.waitFor(() => expect(toggle.checked).toBe(true));
    expect(calls.find((c) => c.method === "PUT")?.body).toEqual({ require_mfa: true });
  });

  it("says why an owner without it cannot require it", async () => {
    answerApi({
      [`GET ${POLICY}`]: [200, { require_mfa: false, members_without_mfa: 2 }],
      [`PUT ${POLICY}`]: [400, { detail: NOT_YOURS, errors: { require_mfa: [NOT_YOURS] } }],
    });
    renderPage(<MfaRequirement slug="acme" />, { url: "/orgs/acme/settings" });
    const toggle = (await screen.findByRole("switch", { name: "Require two-factor sign-in" })) as HTMLInputElement;
    await vi.waitFor(() => expect(toggle.disabled).toBe(false));
    await userEvent.click(toggle);
    expect(await screen.findByText(NOT_YOURS)).toBeTruthy();
    expect(toggle.checked).toBe(false);
  });
});
