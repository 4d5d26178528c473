// Whether the signed-in person has two-factor sign-in, and whether an organization of theirs
// requires it first (App.tsx sends them to its setup). Small: the first bundle holds it.
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";

export type MfaStatus = components["schemas"]["MfaStatusOutput"];
// Under ["me"]: signing in or out, which refreshes ["me"], refreshes it too.
export const MFA_KEY = ["me", "mfa"];

/** Signed out it fails at once (no retries): the console then holds nobody to the setup; the API
 * does, whatever the console shows. */
export function useMfaStatus() {
  return useQuery({ queryKey: MFA_KEY, queryFn: () => unwrap(api.GET("/api/v1/auth/mfa/")), retry: false });
}
