import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { AwsPage } from "./AwsPage";

const BASE = "/api/v1/orgs/acme";
const ROLE = "arn:aws:iam::123456789012:role/gateway-cloud-deployer-x";
const CONNECTION = {
  external_id: "gwc-secret",
  role_arn: "",
  account_id: "",
  connected: false,
  status: "not_connected",
  requested_role_arn: "",
  attempts: 0,
  message: "",
  last_error: "",
  template_url: "http://testserver/aws/gateway-role.yaml",
  quick_create_url: "https://console.aws.amazon.com/cloudformation/home",
};
const VERIFIED = { ...CONNECTION, role_arn: ROLE, account_id: "123456789012", connected: true, status: "verified", requested_role_arn: ROLE, attempts: 1, message: "Assumed the role in account 123456789012; it may list EKS clusters." };
// Polling waits for the next poll (1.5 s).
const POLLED = { timeout: 4000 };

afterEach(() => vi.unstubAllGlobals());

function renderAws() {
  return renderPage(<AwsPage />, { url: "/orgs/acme/aws", route: "/orgs/:slug/aws" });
}

describe("connecting an AWS account", () => {
  it("answers at once, shows the verification running, then the account connected", async () => {
    let polls = 0;
    let connection: object = CONNECTION;
    const calls = answerApi({
      [`GET ${BASE}/aws/connection/`]: () => {
        polls += 1;
        // The task finishes after a poll or two.
        if ((connection as { status: string }).status === "verifying" && polls > 2) connection = VERIFIED;
        return [200, connection];
      },
      [`POST ${BASE}/aws/connection/`]: (body) => {
        connection = { ...CONNECTION, status: "verifying", requested_role_arn: (body as { role_arn: string }).role_arn, attempts: 1, message: "Assuming the role with the ExternalId (attempt 1)." };
        return [202, connection];
      },
      [`GET ${BASE}/clusters/`]: [200, { results: [] }],
    });
    renderAws();
    expect(await screen.findByText("gwc-secret")).toBeTruthy();
    await userEvent.type(screen.getByRole("textbox", { name: "Role ARN" }), ROLE);
    await userEvent.click(screen.getByRole("button", { name: "Verify and connect" }));

    expect(await screen.findByText(/Assuming the role with the ExternalId/)).toBeTruthy();
    expect(screen.getByText("not connected")).toBeTruthy();
    expect(await screen.findByText("connected to 123456789012", {}, POLLED)).toBeTruthy();
    expect(screen.getByText(/it may list EKS clusters/)).toBeTruthy();
    expect(calls.filter((c) => c.method === "POST")).toEqual([expect.objectContaining({ body: { role_arn: ROLE } })]);
  });

  it("shows why a role failed to verify, and a malformed ARN beside the field", async () => {
    answerApi({
      [`GET ${BASE}/aws/connection/`]: [200, { ...CONNECTION, status: "failed", requested_role_arn: ROLE, message: "The role lacks a permission it needs: AccessDenied" }],
      [`POST ${BASE}/aws/connection/`]: [400, { detail: "An IAM role ARN.", errors: { role_arn: ["An IAM role ARN."] } }],
    });
    renderAws();
    expect(await screen.findByText(/AccessDenied/)).toBeTruthy();
    expect(screen.getByText(`The role ${ROLE} could not be verified`)).toBeTruthy();
    await userEvent.type(screen.getByRole("textbox", { name: "Role ARN" }), "nope");
    await userEvent.click(screen.getByRole("button", { name: "Verify and connect" }));
    expect(await screen.findByText("An IAM role ARN.")).toBeTruthy();
  });
});

describe("the EKS clusters to deploy into", () => {
  it("asks for a listing when there is none, and offers the clusters once listed", async () => {
    let listing: object | null = null;
    let polls = 0;
    const calls = answerApi({
      [`GET ${BASE}/aws/connection/`]: [200, VERIFIED],
      [`GET ${BASE}/clusters/`]: [200, { results: [{ id: 7, name: "edge" }] }],
      [`GET ${BASE}/clusters/7/deployments/`]: [200, { results: [] }],
      [`GET ${BASE}/aws/eks-clusters/`]: () => {
        if (listing === null) return [404, { detail: "The EKS clusters in us-east-1 were not listed yet: POST to list them." }];
        polls += 1;
        if (polls > 1) listing = { ...listing, status: "listed", clusters: ["prod-eks"], message: "1 EKS cluster(s) in us-east-1." };
        return [200, listing];
      },
      [`POST ${BASE}/aws/eks-clusters/`]: (body) => {
        listing = { region: (body as { region: string }).region, status: "listing", clusters: [], message: "Waiting to list the EKS clusters in us-east-1.", attempts: 0 };
        return [202, listing];
      },
    });
    renderAws();
    await userEvent.click(await screen.findByRole("textbox", { name: "Gateway cluster" }));
    await userEvent.click(await screen.findByRole("option", { name: "edge" }));

    expect(await screen.findByText("Waiting to list the EKS clusters in us-east-1.")).toBeTruthy();
    await screen.findByRole("button", { name: "List again" });
    await vi.waitFor(() => expect(screen.getByRole("button", { name: "List again" }).hasAttribute("disabled")).toBe(false), POLLED);
    await userEvent.click(screen.getByRole("textbox", { name: "EKS cluster" }));
    expect(await screen.findByRole("option", { name: "prod-eks" })).toBeTruthy();
    expect(calls.filter((c) => c.method === "POST")).toEqual([expect.objectContaining({ path: `${BASE}/aws/eks-clusters/`, body: { region: "us-east-1" } })]);
  });
});
