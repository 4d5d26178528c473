// The banner every signed-in page shows until the account's address is verified, with a button
// that sends the link again. Loaded after the page itself (App.tsx): not in the first bundle.
import { Button, Group, Paper, Text } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, unwrap } from "../api/client";
import type { components } from "../api/schema";

export type Account = components["schemas"]["AccountOutput"];
export const ACCOUNT_KEY = ["account"];

/** The signed-in person's account: address, whether verified, a change under way. */
export function useAccount() {
  return useQuery({ queryKey: ACCOUNT_KEY, queryFn: () => unwrap(api.GET("/api/v1/auth/account/")) });
}

export function EmailVerificationBanner() {
  const account = useAccount();
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  if (!account.data || account.data.email_verified) return null;
  const resend = async () => {
    setBusy(true);
    const { data, error } = await api.POST("/api/v1/auth/email/verification/");
    setBusy(false);
    setNote(error ? { ok: false, text: errorMessage(error) } : { ok: true, text: data?.detail ?? "Sent." });
  };
  // Not an alert: it stays on every page until done, and must not be announced on each. Its name
  // avoids "email": the forms of other pages are found by their fields' labels.
  return (
    <Paper withBorder p="sm" mb="md" bg="var(--mantine-color-yellow-light)" role="region" aria-label="Account verification">
      <Group justify="space-between" gap="xs">
        <div>
          <Text size="sm" fw={600}>
            Confirm your email address
          </Text>
          {/* The address itself is on the account page: pages that list people's addresses stay unambiguous. */}
          <Text size="sm">Open the link we emailed you to confirm the address is yours: password resets go there.</Text>
        </div>
        <Button size="xs" variant="light" color="yellow" loading={busy} onClick={resend}>
          Resend the link
        </Button>
      </Group>
      {note && (
        <Text size="sm" mt="xs" c={note.ok ? "green" : "red"} role="status">
          {note.text}
        </Text>
      )}
    </Paper>
  );
}
